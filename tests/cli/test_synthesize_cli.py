"""vaekit synthesize on sklearn's wine as a CSV with holes punched in two columns (20% and 10%), a
text class column and a yes/no column: the rows come back in the training table's columns, order and
kinds, within its ranges and about as often empty per column; the same seed writes the same bytes;
a conditional run gives rows of the class asked for, or classes in their training shares;
``vaekit sample`` on a table run writes the same file; bad requests are one line, exit 2, no file."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from cli_support import TINY

HOLES = {"alcohol": 0.2, "magnesium": 0.1}
CULTIVARS = ("barolo", "grignolino", "barbera")


def write_wine_csv(path: Path, seed: int = 0) -> Path:
    """The 178 wines: 13 measurements (magnesium and proline whole numbers), a 'sparkling' yes/no
    column and the cultivar by name; cells of alcohol and magnesium emptied at random (HOLES)."""
    from sklearn.datasets import load_wine

    wine = load_wine()
    rng = np.random.default_rng(seed)
    names = [name.replace("/", "_") for name in wine.feature_names]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, "sparkling", "cultivar"])
        for values, target in zip(wine.data, wine.target, strict=True):
            cells = [f"{v:g}" for v in values]
            for name, share in HOLES.items():
                if rng.random() < share:
                    cells[names.index(name)] = ""
            writer.writerow([*cells, "yes" if rng.random() < 0.3 else "no", CULTIVARS[target]])
    return path


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


def column(rows: list[list[str]], header: list[str], name: str) -> list[str]:
    return [row[header.index(name)] for row in rows]


def assert_one_line_error(result: tuple[int, str, str], *names: str) -> None:
    code, out, err = result
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in out + err, err
    assert len(lines) == 1 and all(name in lines[0] for name in names), err


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
def cultivar_run(tmp_path_factory: pytest.TempPathFactory, invoke, wine_csv: Path) -> Path:
    """A conditional run (cvae) on the same table, the cultivar its label. Read it only."""
    out = tmp_path_factory.mktemp("cultivar-run") / "run"
    invoke(["train", "--data", wine_csv, "--preset", "cvae", "--epochs", "20", *TINY,
            "--set", "data.label_column=cultivar", "--out", out])
    return out


@pytest.fixture(scope="module")
def synthetic(wine_run: Path, invoke, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "synthetic.csv"
    invoke(["synthesize", wine_run, "--n", "3000", "--seed", "1", "--out", out])
    return out


def test_rows_have_the_training_columns_and_kinds(wine_csv: Path, synthetic: Path) -> None:
    header, real = read_table(wine_csv)
    names, rows = read_table(synthetic)
    assert names == header and len(rows) == 3000
    assert set(column(rows, names, "cultivar")) == set(CULTIVARS)  # categories by name
    assert set(column(rows, names, "sparkling")) == {"yes", "no"}  # a binary column as its two values
    for name in ("magnesium", "proline"):  # whole numbers in training: integers, written without a '.'
        assert all(cell.isdigit() for cell in column(rows, names, name) if cell), name
    decimals = {len(cell.split(".")[1]) for cell in column(rows, names, "hue") if "." in cell}
    assert decimals <= {1, 2, 3}, "hue has up to 3 decimal places in training, and so in the synthetic rows"


def test_numbers_stay_within_the_training_range(wine_csv: Path, synthetic: Path) -> None:
    header, real = read_table(wine_csv)
    names, rows = read_table(synthetic)
    for name in header[:13]:
        seen = [float(cell) for cell in column(real, header, name) if cell]
        drawn = [float(cell) for cell in column(rows, names, name) if cell]
        assert min(seen) <= min(drawn) and max(drawn) <= max(seen), name


def test_each_column_is_about_as_often_empty_as_in_training(wine_csv: Path, synthetic: Path) -> None:
    header, real = read_table(wine_csv)
    names, rows = read_table(synthetic)
    for name in header:
        trained = np.mean([cell == "" for cell in column(real, header, name)])
        drawn = np.mean([cell == "" for cell in column(rows, names, name)])
        assert abs(drawn - trained) < 0.03, (name, trained, drawn)
    assert np.mean([cell == "" for cell in column(rows, names, "alcohol")]) > 0.15


def test_the_same_seed_writes_the_same_bytes(invoke, wine_run: Path, tmp_path: Path) -> None:
    files = {}
    for name, seed in (("a", "4"), ("b", "4"), ("c", "5")):
        for suffix in (".csv", ".parquet"):
            if suffix == ".parquet" and not _has_pyarrow():
                continue
            files[name + suffix] = tmp_path / (name + suffix)
            invoke(["synthesize", wine_run, "--n", "200", "--seed", seed, "--out", files[name + suffix]])
    for suffix in {path.suffix for path in files.values()}:
        first, again, other = (files[name + suffix].read_bytes() for name in "abc")
        assert first == again and first != other, suffix


def test_parquet_columns_are_typed(invoke, wine_run: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "synthetic.parquet"
    invoke(["synthesize", wine_run, "--n", "300", "--out", out])
    table = pq.read_table(out)
    types = {name: str(table.schema.field(name).type) for name in table.column_names}
    assert types["proline"] == "int64" and types["hue"] == "double" and types["cultivar"] == "string"
    alcohol = table.column("alcohol")
    assert 0.1 < alcohol.null_count / len(alcohol) < 0.3  # holes are nulls


def test_sample_on_a_table_run_writes_the_rows_synthesize_writes(invoke, wine_run: Path, tmp_path: Path) -> None:
    invoke(["synthesize", wine_run, "--n", "50", "--seed", "2", "--out", tmp_path / "a.csv"])
    invoke(["sample", wine_run, "--n", "50", "--seed", "2", "--out", tmp_path / "b.csv"])
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_no_clip_and_no_missing(invoke, wine_csv: Path, wine_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "free.csv"
    invoke(["synthesize", wine_run, "--n", "3000", "--no-clip", "--no-missing", "--out", out])
    header, real = read_table(wine_csv)
    names, rows = read_table(out)
    assert all(cell != "" for row in rows for cell in row)
    outside = 0
    for name in header[:13]:
        seen = [float(cell) for cell in column(real, header, name) if cell]
        drawn = [float(cell) for cell in column(rows, names, name)]
        outside += sum(not min(seen) <= value <= max(seen) for value in drawn)
    assert outside > 0, "without clipping, some of 3,000 draws leave the training range"


def test_latent_mixture_sampler(invoke, wine_run: Path, tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv"):
        invoke(["synthesize", wine_run, "--n", "100", "--sampler", "gmm", "--components", "3", "--out",
                tmp_path / name])
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert len(read_table(tmp_path / "a.csv")[1]) == 100


def test_a_conditional_run_gives_the_class_asked_for(invoke, cultivar_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "barbera.csv"
    invoke(["synthesize", cultivar_run, "--n", "40", "--label", "barbera", "--out", out])
    names, rows = read_table(out)
    assert names[-1] == "cultivar" and len(names) == 15  # the label column last
    assert set(column(rows, names, "cultivar")) == {"barbera"}


def test_a_conditional_run_draws_classes_in_their_training_shares(invoke, cultivar_run: Path, wine_csv: Path,
                                                                   tmp_path: Path) -> None:
    import vaekit

    out = tmp_path / "all.csv"
    invoke(["synthesize", cultivar_run, "--n", "3000", "--out", out])
    names, rows = read_table(out)
    run = vaekit.load(cultivar_run)
    drawn = column(rows, names, "cultivar")
    for name, share in zip(run.spec.class_names, run.spec.class_shares, strict=True):
        assert abs(drawn.count(name) / len(drawn) - share) < 0.03, name
    assert abs(run.spec.class_shares[run.spec.class_names.index("grignolino")] - 71 / 178) < 0.05


def test_an_image_run_is_refused(run_main, pristine_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    assert_one_line_error(run_main("synthesize", pristine_run, "--n", "5", "--out", out), "table", "vaekit sample")
    assert not out.exists()


@pytest.mark.parametrize(("args", "names"), [
    (["--n", "5", "--out", "{tmp}/s.txt"], ["s.txt", ".csv or .parquet"]),
    (["--n", "0", "--out", "{tmp}/s.csv"], ["--n"]),
    (["--n", "5", "--label", "barolo", "--out", "{tmp}/s.csv"], ["--label", "not conditional"]),
    (["--n", "5", "--sampler", "nope", "--out", "{tmp}/s.csv"], ["--sampler", "nope"]),
])
def test_bad_requests_are_one_line_and_write_nothing(run_main, wine_run: Path, tmp_path: Path, args, names) -> None:
    words = [arg.format(tmp=tmp_path) for arg in args]
    assert_one_line_error(run_main("synthesize", wine_run, *words), *names)
    assert not list(tmp_path.glob("s.*"))


def test_an_unknown_class_is_one_line(run_main, cultivar_run: Path, tmp_path: Path) -> None:
    assert_one_line_error(run_main("synthesize", cultivar_run, "--n", "5", "--label", "chianti", "--out",
                                   tmp_path / "s.csv"), "--label", "chianti", "barolo")
    assert not (tmp_path / "s.csv").exists()


def test_numbers_only_for_npy(run_main, wine_run: Path, tmp_path: Path) -> None:
    assert_one_line_error(run_main("sample", wine_run, "--n", "5", "--out", tmp_path / "s.npy"), "cultivar", ".csv")
    assert not (tmp_path / "s.npy").exists()


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True
