"""The command line on a CSV with text and empty cells: train, info, sample to CSV with column and
category names (synthetic rows, holes included), reconstruct and encode, and the one-line error for
a likelihood that cannot fit it."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_support import TINY

import vaekit
from vaekit.distributions.tabular import TableFamily

HEADER = ["height", "smoker", "colour", "visits"]
COLOURS = {"red", "green", "blue"}


def write_table_csv(path: Path, n: int = 300, holes: float = 0.2, seed: int = 0) -> Path:
    """height (continuous), smoker (0/1), colour (text), visits (counts); a fraction ``holes`` of
    the cells is empty."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for _ in range(n):
            row = [f"{rng.normal(170, 10):.2f}", str(int(rng.random() < 0.3)), str(rng.choice(sorted(COLOURS))),
                   str(rng.poisson(3.0))]
            writer.writerow(["" if rng.random() < holes else cell for cell in row])
    return path


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_table_csv(tmp_path_factory.mktemp("table") / "people.csv")


@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory, invoke, table_csv: Path) -> Path:
    """A 2-epoch run on the table, visits declared a count. Read it; never write into it."""
    out = tmp_path_factory.mktemp("table-run") / "run"
    invoke(["train", "--data", table_csv, "--epochs", "2", *TINY, "--set", "data.column_types={visits: count}",
            "--out", out])
    return out


def test_train_on_a_table_with_text_and_holes(table_run: Path) -> None:
    spec = json.loads((table_run / "data_spec.json").read_text())
    assert [(c["name"], c["kind"]) for c in spec["columns"]] == [
        ("height", "continuous"), ("smoker", "binary"), ("colour", "categorical"), ("visits", "count")]
    assert spec["has_missing"] is True
    assert spec["columns"][2]["categories"] == ["blue", "green", "red"]
    run = vaekit.load(table_run)
    assert isinstance(run.model.likelihood, TableFamily)
    assert len(run.history) == 2


def test_train_without_declared_types(invoke, table_csv: Path, tmp_path: Path) -> None:
    invoke(["train", "--data", table_csv, "--epochs", "1", *TINY, "--set", "eval.enabled=false",
            "--out", tmp_path / "run"])
    assert vaekit.load(tmp_path / "run").spec.columns[3].kind == "continuous"


def test_info_describes_the_table_run(invoke, table_run: Path) -> None:
    output = invoke(["info", table_run]).output
    assert "table" in output and "table likelihood" in output


def test_sample_to_csv_names_columns_and_categories(invoke, table_run: Path, tmp_path: Path) -> None:
    """A table run's samples are synthetic rows (vaekit synthesize's): a fifth of the cells empty, as
    in training; the others named and typed as the training table's."""
    out = tmp_path / "s.csv"
    invoke(["sample", table_run, "--n", "50", "--out", out])
    header, *body = read_csv(out)
    assert header == HEADER
    assert len(body) == 50
    assert 0 < sum(cell == "" for row in body for cell in row) < 0.4 * 50 * 4
    for height, smoker, colour, visits in body:
        assert height == "" or 100 < float(height) < 250
        assert smoker in ("0", "1", "")
        assert colour in COLOURS | {""}, f"a category name, not a code: {colour!r}"
        assert visits == "" or visits.isdigit()


def test_sample_is_seeded(invoke, table_run: Path, tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv"):
        invoke(["sample", table_run, "--n", "5", "--seed", "3", "--out", tmp_path / name])
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_gaussian_likelihood_on_a_text_table_is_a_clean_error(run_main, table_csv: Path, tmp_path: Path) -> None:
    code, _, err = run_main("train", "--data", table_csv, "--epochs", "1", *TINY,
                            "--set", "model.likelihood=gaussian", "--out", tmp_path / "run")
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("vaekit:")]
    assert len(errors) == 1 and "model.likelihood=auto" in errors[0] and "colour" in errors[0], err
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_reconstruct_a_table_to_csv(invoke, table_run: Path, table_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    invoke(["reconstruct", table_run, "--data", table_csv, "--n", "4", "--out", out])
    _, *body = read_csv(out)
    assert len(body) == 4 and all(len(row) == 4 for row in body)


def test_reconstruct_a_table_to_npy(invoke, table_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.npy"
    invoke(["reconstruct", table_run, "--n", "4", "--out", out])
    values = np.load(out)
    assert values.shape == (4, 4) and np.isfinite(values).all()


def test_reconstruct_csv_names_columns_and_categories(invoke, table_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    invoke(["reconstruct", table_run, "--n", "4", "--out", out])
    header, *body = read_csv(out)
    assert header == HEADER
    assert all(row[2] in COLOURS for row in body)


def test_reconstruct_a_table_to_png_is_a_clean_error(run_main, table_run: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(table_run, tmp_path / "run"))
    code, _, err = run_main("reconstruct", run, "--n", "4")
    assert code == 2 and "internal error" not in err, err


def test_encode_a_table(invoke, table_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "codes.npy"
    invoke(["encode", table_run, "--out", out])
    codes = np.load(out)
    assert codes.shape == (300, 2, 4)  # every row of the file, holes included: means and log-variances
    assert np.isfinite(codes).all()


def test_impute_writes_observed_values_with_every_digit(invoke, table_run: Path, tmp_path: Path) -> None:
    source = tmp_path / "big.csv"
    source.write_text("height,smoker,colour,visits\n181.123456789,,red,123456789\n170.25,1,,\n")
    out = tmp_path / "filled.csv"
    invoke(["impute", table_run, "--data", source, "--out", out, "--k", "5"])
    rows = read_csv(out)
    assert rows[1][0] == "181.123456789" and rows[1][2] == "red" and rows[1][3] == "123456789"
    assert rows[2][0] == "170.25" and rows[2][1] == "1"
    assert all(cell != "" for row in rows[1:] for cell in row)


def test_new_input_columns_are_matched_by_name(invoke, run_main, table_run: Path, tmp_path: Path, caplog) -> None:
    """A file with the columns in another order (and one extra) is read by name and written back in
    its own order, the extra column included; a missing column is one line naming it, with nothing
    written."""
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("visits,note,colour,height,smoker\n4,hello,blue,,0\n")
    out = tmp_path / "filled.csv"
    with caplog.at_level("WARNING", logger="vaekit"):
        invoke(["impute", table_run, "--data", shuffled, "--out", out, "--k", "5"])
    assert "note" in caplog.text and "left out" in caplog.text
    header, row = read_csv(out)
    assert header == ["visits", "note", "colour", "height", "smoker"]
    assert row[:3] + row[4:] == ["4", "hello", "blue", "0"] and float(row[3]) > 100  # height filled
    short = tmp_path / "short.csv"
    short.write_text("height,colour,visits\n170,red,3\n")
    code, _, err = run_main("impute", table_run, "--data", short, "--out", tmp_path / "no.csv")
    assert code == 2 and "missing column 'smoker'" in err, err
    assert not (tmp_path / "no.csv").exists()


def test_new_input_may_lack_the_label_column_of_an_unconditional_run(invoke, tmp_path: Path) -> None:
    labelled = tmp_path / "labelled.csv"
    rows = ["a,b,kind"] + [f"{i / 10:.1f},{(i % 7) / 3:.3f},{'xy'[i % 2]}" for i in range(60)]
    labelled.write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    invoke(["train", "--data", labelled, "--epochs", "1", *TINY, "--set", "data.label_column=kind", "--out", run])
    unlabelled = tmp_path / "new.csv"
    unlabelled.write_text("a,b\n0.5,\n,1.0\n")
    invoke(["impute", run, "--data", unlabelled, "--out", tmp_path / "filled.csv", "--k", "5"])
    header, *body = read_csv(tmp_path / "filled.csv")
    assert header == ["a", "b"] and len(body) == 2 and all(cell for row in body for cell in row)


def test_impute_gives_back_every_column_of_the_file_the_label_included(invoke, tmp_path: Path) -> None:
    """sklearn's breast cancer as a CSV, its label column among the features and a fifth of the
    cells empty: 31 columns in, 31 out in their order (the label column was dropped), observed
    cells as written, every digit, the label's empty cell left empty."""
    from sklearn.datasets import load_breast_cancer

    cancer = load_breast_cancer()
    names = [name.replace(" ", "_") for name in cancer.feature_names]
    header = names[:3] + ["label"] + names[3:]
    rng = np.random.default_rng(0)
    source = tmp_path / "cancer.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for values, label in zip(cancer.data[:150], cancer.target[:150], strict=True):
            cells = ["" if rng.random() < 0.2 else repr(float(v)) for v in values]
            writer.writerow(cells[:3] + [str(label)] + cells[3:])
    run = tmp_path / "run"
    invoke(["train", "--data", source, "--epochs", "1", *TINY, "--set", "data.label_column=label", "--out", run])
    given = read_csv(source)
    given[5][3] = ""  # a row without its label: this run does not need it
    source.write_text("\n".join(",".join(row) for row in given) + "\n")
    out = tmp_path / "filled.csv"
    invoke(["impute", run, "--data", source, "--out", out, "--k", "5"])
    filled = read_csv(out)
    assert filled[0] == header and all(len(row) == 31 for row in filled)
    assert [row[3] for row in filled] == [row[3] for row in given]  # the label column, its hole included
    for before, after in zip(given[1:], filled[1:], strict=True):
        assert all(a == b for a, b in zip(after, before, strict=True) if b)  # observed cells untouched
        assert all(cell for j, cell in enumerate(after) if j != 3)  # every feature hole filled


def test_a_two_valued_column_is_imputed_as_one_of_its_two_values(invoke, tmp_path: Path) -> None:
    """diabetes' sex (-0.0446/0.0507) was imputed as 0.000435; now as one of its values, exactly."""
    from sklearn.datasets import load_diabetes

    diabetes = load_diabetes()
    rng = np.random.default_rng(1)
    source = tmp_path / "diabetes.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(diabetes.feature_names)
        writer.writerows([["" if rng.random() < 0.2 else repr(float(v)) for v in row] for row in diabetes.data])
    run = tmp_path / "run"
    invoke(["train", "--data", source, "--epochs", "1", *TINY, "--out", run])
    invoke(["impute", run, "--data", source, "--out", tmp_path / "filled.csv", "--k", "5"])
    sex = {row[1] for row in read_csv(tmp_path / "filled.csv")[1:]}
    assert sex == {repr(float(v)) for v in np.unique(diabetes.data[:, 1])}
