"""vaekit evaluate --synthetic on the wine table of test_synthesize_cli.py: the report's JSON (quality
against the training split, ML efficacy and privacy against the run's test split) with its scores in
range; the training rows themselves are all exact copies; a metric that has no value is said, never a
NaN; a conditional run predicts its label by default; bad input is one line, exit 2, no file; vaekit
report shows the section when the run folder holds the report; and the same report from Python."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from cli_support import TINY
from test_synthesize_cli import assert_one_line_error, write_wine_csv

WINE_COLUMNS = 15  # 13 measurements, sparkling, cultivar


@pytest.fixture(scope="module")
def wine_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wine_csv(tmp_path_factory.mktemp("wine") / "wine.csv")


@pytest.fixture(scope="module")
def wine_run(tmp_path_factory: pytest.TempPathFactory, invoke, wine_csv: Path) -> Path:
    """An unconditional 20-epoch run on the wine table (the cultivar an ordinary column). Read it only."""
    out = tmp_path_factory.mktemp("wine-run") / "run"
    invoke(["train", "--data", wine_csv, "--epochs", "20", *TINY, "--out", out])
    return out


@pytest.fixture(scope="module")
def synthetic(wine_run: Path, invoke, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "synthetic.csv"
    invoke(["synthesize", wine_run, "--n", "400", "--seed", "1", "--out", out])
    return out


@pytest.fixture(scope="module")
def report(wine_run: Path, synthetic: Path, invoke, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("report") / "report.json"
    result = invoke(["evaluate", wine_run, "--synthetic", synthetic, "--target", "cultivar", "--out", out])
    return json.loads(out.read_text()), result.stdout


def training_rows(run: Path, out: Path) -> Path:
    """The run's training split as a CSV, written as vaekit synthesize writes rows."""
    import vaekit
    from vaekit.data.loaders import prepare_data

    train = prepare_data(vaekit.load(run).config.data).train
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(train.feature_names)
        for row in train.x:
            writer.writerow(["" if v is None or v != v else repr(v) if isinstance(v, float) else v for v in row])
    return out


def unit(value: float) -> bool:
    return isinstance(value, float) and 0.0 <= value <= 1.0


def test_the_report_has_every_part_in_range(report: tuple[dict, str]) -> None:
    tree, printed = report
    assert set(tree) == {"tables", "compared", "quality", "ml_efficacy", "privacy", "skipped"}
    assert tree["tables"]["synthetic"]["rows"] == 400
    assert tree["tables"]["train"]["rows"] == 128 and tree["tables"]["holdout"]["rows"] == 36  # the run's splits
    assert tree["tables"]["holdout"]["source"] == "the run's test split"
    quality = tree["quality"]
    assert all(unit(quality[key]) for key in ("overall", "column_shapes", "pair_trends"))
    assert len(quality["shapes"]) == WINE_COLUMNS and all(unit(s["value"]) for s in quality["shapes"])
    assert len(quality["pairs"]) == WINE_COLUMNS * (WINE_COLUMNS - 1) // 2
    efficacy = tree["ml_efficacy"]
    assert efficacy["target"] == "cultivar" and efficacy["task"] == "classification"
    assert all(unit(efficacy[side][m]) for side in ("real", "synthetic") for m in ("accuracy", "f1"))
    assert efficacy["real"]["accuracy"] > 0.8  # a forest on the real wines
    privacy = tree["privacy"]
    assert all(unit(privacy[key]) for key in privacy)
    assert privacy["exact_copies"] < 0.05 and tree["skipped"] == {}
    for words in ("overall", "worst column shapes", "ML efficacy", "predicting cultivar", "median DCR"):
        assert words in printed, words


def test_the_training_rows_are_all_exact_copies(invoke, wine_run: Path, tmp_path: Path) -> None:
    copies = training_rows(wine_run, tmp_path / "train.csv")
    invoke(["evaluate", wine_run, "--synthetic", copies, "--out", tmp_path / "r.json"])
    tree = json.loads((tmp_path / "r.json").read_text())
    assert tree["privacy"]["exact_copies"] == 1.0 and tree["privacy"]["dcr_synthetic"] == 0.0
    assert tree["privacy"]["dcr_holdout"] > 0 and tree["privacy"]["holdout_exact_copies"] < 1.0
    assert tree["quality"]["column_shapes"] == pytest.approx(1.0)


def test_a_holdout_that_is_the_training_split_is_said(run_main, wine_run: Path, synthetic: Path,
                                                      tmp_path: Path) -> None:
    copies = training_rows(wine_run, tmp_path / "train.csv")
    code, _, err = run_main("evaluate", wine_run, "--synthetic", synthetic, "--data", copies,
                            "--out", tmp_path / "r.json")
    assert code == 0, err
    assert "100% of the holdout's rows are rows of the training split" in err
    code, _, err = run_main("evaluate", wine_run, "--synthetic", synthetic, "--out", tmp_path / "r2.json")
    assert code == 0 and "rows of the training split" not in err  # the run's own test split


def test_what_has_no_value_is_said(run_main, wine_run: Path, synthetic: Path, tmp_path: Path) -> None:
    with synthetic.open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    for row in rows:
        row[header.index("alcohol")] = ""  # no alcohol in any synthetic row: no shape to compare
    empty = tmp_path / "empty.csv"
    with empty.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    code, out, err = run_main("evaluate", wine_run, "--synthetic", empty, "--out", tmp_path / "r.json")
    assert code == 0, err
    tree = json.loads((tmp_path / "r.json").read_text())
    shape = next(s for s in tree["quality"]["shapes"] if s["what"] == "alcohol")
    assert shape["value"] is None and "no values in the synthetic table" in shape["reason"]
    assert tree["ml_efficacy"] is None and "--target" in tree["skipped"]["ml_efficacy"]  # no label column
    assert "not computed: shape alcohol: KSComplement: no values in the synthetic table" in out
    assert "not computed: ml_efficacy: no target" in out and "nan" not in (tmp_path / "r.json").read_text().lower()


def test_a_conditional_run_predicts_its_label(invoke, wine_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "cvae"
    invoke(["train", "--data", wine_csv, "--preset", "cvae", "--epochs", "5", *TINY, "--set",
            "data.label_column=cultivar", "--out", run])
    invoke(["synthesize", run, "--n", "200", "--out", tmp_path / "s.csv"])
    printed = invoke(["evaluate", run, "--synthetic", tmp_path / "s.csv"]).stdout
    tree = json.loads((run / "synthetic_report.json").read_text())
    assert tree["ml_efficacy"]["target"] == "cultivar" and "predicting cultivar" in printed
    assert len(tree["quality"]["shapes"]) == WINE_COLUMNS  # the label column is one of the compared columns


@pytest.mark.parametrize(("make", "args", "names"), [
    (None, ["--synthetic", "{tmp}/none.csv"], ["none.csv", "no such file"]),
    ("drop", ["--synthetic", "{tmp}/bad.csv"], ["bad.csv", "missing column", "cultivar"]),
    ("text", ["--synthetic", "{tmp}/bad.csv"], ["synthetic table", "alcohol", "numbers"]),
    ("text", ["--synthetic", "{synthetic}", "--data", "{tmp}/bad.csv"], ["holdout", "alcohol", "numbers"]),
    (None, ["--synthetic", "{synthetic}", "--target", "vintage"], ["--target", "vintage", "cultivar"]),
    (None, ["--synthetic", "{tmp}/s.txt"], ["--synthetic", ".csv or .parquet"]),
    (None, ["--synthetic", "{synthetic}", "--fid"], ["--synthetic", "--fid"]),
    (None, ["--target", "cultivar"], ["--target", "--synthetic"]),
])
def test_bad_input_is_one_line_and_writes_nothing(run_main, wine_run: Path, synthetic: Path, tmp_path: Path,
                                                  make, args, names) -> None:
    with synthetic.open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    if make == "drop":
        header, rows = header[:-1], [row[:-1] for row in rows]
    if make == "text":
        rows[3][header.index("alcohol")] = "plenty"
    if make:
        with (tmp_path / "bad.csv").open("w", newline="") as handle:
            csv.writer(handle).writerows([header, *rows])
    words = [arg.format(tmp=tmp_path, synthetic=synthetic) for arg in args]
    assert_one_line_error(run_main("evaluate", wine_run, *words, "--out", tmp_path / "r.json"), *names)
    assert not (tmp_path / "r.json").exists() and not (wine_run / "synthetic_report.json").exists()


def test_an_image_run_is_refused(run_main, pristine_run: Path, synthetic: Path, tmp_path: Path) -> None:
    assert_one_line_error(run_main("evaluate", pristine_run, "--synthetic", synthetic, "--out", tmp_path / "r.json"),
                          "--synthetic", "table")
    assert not (tmp_path / "r.json").exists()


def test_the_run_report_shows_the_synthetic_section(invoke, wine_run: Path, synthetic: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(wine_run, tmp_path / "run"))
    invoke(["report", run, "--out", tmp_path / "before.html"])
    assert "Synthetic data" not in (tmp_path / "before.html").read_text()
    invoke(["evaluate", run, "--synthetic", synthetic, "--target", "cultivar"])
    invoke(["report", run, "--out", tmp_path / "after.html"])
    page = (tmp_path / "after.html").read_text()
    for words in ("<h2>Synthetic data</h2>", "Column shapes, worst first", "Pair trends", "ML efficacy", "Privacy",
                  "median DCR"):
        assert words in page, words
    tree = json.loads((run / "synthetic_report.json").read_text())
    worst = min(tree["quality"]["shapes"], key=lambda s: s["value"])["what"]
    table = page[page.index("Column shapes, worst first"):]
    assert table.index(f"<td>{worst}</td>") < min(table.index(f"<td>{s['what']}</td>")
                                                    for s in tree["quality"]["shapes"] if s["what"] != worst)


def test_the_same_report_from_python(wine_run: Path, synthetic: Path, report: tuple[dict, str]) -> None:
    import pandas as pd

    import vaekit
    from vaekit.applications.synthetic_report import synthetic_report

    tree = synthetic_report(vaekit.load(wine_run), pd.read_csv(synthetic), target="cultivar")
    assert tree["quality"] == report[0]["quality"]
    assert tree["privacy"] == report[0]["privacy"] and tree["ml_efficacy"] == report[0]["ml_efficacy"]
