"""Synthetic tables: what a column records at fit time for them (decimal places, range, share of
holes; old columns load without), how model-space draws become rows, and VAESynthesizer: kinds,
ranges, holes and seeding of its rows, its DataFrames and arrays, conditional rows, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from vaekit.data.columns import Column, infer_columns, synthetic_rows, value_type
from vaekit.errors import ConfigError, DataError
from vaekit.estimators import NotFittedError, VAESynthesizer

QUICK = {"n_components": 4, "hidden": (32,), "max_epochs": 20, "random_state": 0}
HOLES = {"alcohol": 0.2, "magnesium": 0.1}


def test_columns_record_decimal_places_range_and_share_of_holes() -> None:
    x = np.array([[1.25, 3.0, "a", 2.0], [2.5, 5.0, None, 0.0], [np.nan, 7.0, "b", 4.0], [0.1, np.nan, "a", 9.0]],
                 dtype=object)
    size, whole, letter, count = infer_columns(x, ["size", "whole", "letter", "count"], {"count": "count"})
    assert (size.kind, size.decimals, size.low, size.high, size.missing) == ("continuous", 2, 0.1, 2.5, 0.25)
    assert (whole.decimals, whole.low, whole.high, whole.missing) == (0, 3.0, 7.0, 0.25)
    assert (letter.kind, letter.missing, letter.low) == ("binary", 0.25, None)
    assert (count.kind, count.low, count.high, count.missing) == ("count", 0.0, 9.0, 0.0)
    assert [value_type(c) for c in (size, whole, letter, count)] == ["number", "integer", "text", "integer"]
    noisy = infer_columns(np.array([[0.1234567], [1.0]]), ["noisy"])[0]
    assert noisy.decimals is None  # beyond 6 places: not rounded


def test_a_column_saved_before_synthesis_loads_and_gives_rows_unrounded_unclipped_without_holes() -> None:
    old = Column(**{"name": "size", "kind": "continuous", "categories": None, "loc": 10.0, "std": 2.0,
                    "constant": False})
    assert (old.decimals, old.low, old.high, old.missing) == (None, None, None, 0.0)
    rows = synthetic_rows([old], torch.tensor([[100.0], [0.123456789]]), np.zeros((2, 1), dtype=bool))
    assert rows[:, 0].tolist() == [210.0, 10.24691]  # far beyond anything seen, to 7 significant digits


def test_draws_become_rows_of_the_training_kinds() -> None:
    columns = [Column("price", "continuous", loc=10.0, std=2.0, decimals=2, low=5.0, high=15.0),
               Column("rooms", "continuous", loc=3.0, std=1.0, decimals=0, low=1.0, high=6.0),
               Column("smoker", "binary", categories=["no", "yes"]),
               Column("grade", "categorical", categories=["1", "2", "3"]),
               Column("visits", "count", low=0.0, high=4.0)]
    values = torch.tensor([[0.1234, 0.6, 1.0, 2.0, 7.0], [9.0, -9.0, 0.0, 0.0, 2.0]])  # model space
    holes = np.array([[False] * 5, [False, False, False, True, False]])
    rows = synthetic_rows(columns, values, holes)
    assert rows.tolist() == [[10.25, 4, "yes", 3, 4], [15.0, 1, "no", None, 2]]
    assert [type(v) for v in rows[0]] == [float, int, str, int, int]
    assert synthetic_rows(columns, values, holes, clip=False)[1, :2].tolist() == [28.0, -6]


@pytest.fixture(scope="module")
def wine():
    """sklearn's wine as a DataFrame: the cultivar by name, magnesium as int64, a yes/no column, and
    holes punched (seeded) in alcohol (20%) and magnesium (10%, so nullable Int64)."""
    pandas = pytest.importorskip("pandas")
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    rng = np.random.default_rng(0)
    frame["target"] = frame["target"].map(dict(enumerate(["barolo", "grignolino", "barbera"])))
    frame.insert(3, "sparkling", np.where(rng.random(len(frame)) < 0.3, "yes", "no"))
    frame["magnesium"] = frame["magnesium"].astype("Int64")
    for name, share in HOLES.items():
        frame.loc[rng.random(len(frame)) < share, name] = pandas.NA if name == "magnesium" else np.nan
    return frame


@pytest.fixture(scope="module")
def synthesizer(wine) -> VAESynthesizer:
    return VAESynthesizer(**QUICK).fit(wine)


@pytest.fixture(scope="module")
def rows(synthesizer):
    return synthesizer.sample(3000, random_state=1)


def test_rows_come_back_in_the_frames_columns_and_dtypes(wine, rows) -> None:
    assert list(rows.columns) == list(wine.columns) and len(rows) == 3000
    assert dict(rows.dtypes) == dict(wine.dtypes)  # float64, Int64 and object as fitted
    assert set(rows["target"]) == {"barolo", "grignolino", "barbera"}
    assert set(rows["sparkling"]) == {"yes", "no"}


def test_numbers_stay_within_the_training_range(wine, rows) -> None:
    for name in wine.columns:
        if wine[name].dtype.kind in "fi":
            assert wine[name].min() <= rows[name].min() and rows[name].max() <= wine[name].max(), name


def test_each_column_is_about_as_often_empty_as_in_training(wine, rows) -> None:
    for name in wine.columns:
        assert abs(rows[name].isna().mean() - wine[name].isna().mean()) < 0.03, name
    assert rows["alcohol"].isna().mean() > 0.15 and rows["magnesium"].isna().mean() > 0.05


def test_seeded_rows(synthesizer) -> None:
    first = synthesizer.sample(50, random_state=3)
    assert first.equals(synthesizer.sample(50, random_state=3))
    assert not first.equals(synthesizer.sample(50, random_state=4))


def test_options_turn_off_clipping_and_holes(wine, synthesizer) -> None:
    free = synthesizer.sample(3000, random_state=1, clip=False, missing=False)
    assert not free.isna().any().any()
    numeric = [name for name in wine.columns if wine[name].dtype.kind in "fi"]
    assert ((free[numeric] < wine[numeric].min()) | (free[numeric] > wine[numeric].max())).any().any()


def test_an_array_gives_an_array(wine) -> None:
    numbers = wine.drop(columns=["target", "sparkling"]).astype("float64").to_numpy()
    fitted = VAESynthesizer(**{**QUICK, "max_epochs": 2}).fit(numbers)
    rows = fitted.sample(20, random_state=0)
    assert isinstance(rows, np.ndarray) and rows.dtype == np.float64 and rows.shape == (20, numbers.shape[1])
    with_text = VAESynthesizer(**{**QUICK, "max_epochs": 2}).fit(wine.to_numpy())
    assert with_text.sample(5, random_state=0).dtype == object


def test_params_and_clone(synthesizer) -> None:
    params = synthesizer.get_params()
    assert params["label_column"] is None and params["n_components"] == 4
    copy = clone(synthesizer).set_params(label_column="target", max_epochs=3)
    assert copy.get_params()["label_column"] == "target" and not hasattr(copy, "run_")


def test_a_label_column_gives_rows_of_a_class_or_in_the_training_shares(wine) -> None:
    fitted = VAESynthesizer(**QUICK, label_column="target").fit(wine)
    rows = fitted.sample(3000, random_state=0)
    assert list(rows.columns) == list(wine.columns)  # the label column where it was
    shares = wine["target"].value_counts(normalize=True)
    drawn = rows["target"].value_counts(normalize=True)
    assert (abs(drawn - shares) < 0.03).all(), (drawn, shares)
    assert set(fitted.sample(20, random_state=0, label="barbera")["target"]) == {"barbera"}
    scores = fitted.score_samples(wine.head(5))
    assert scores.shape == (5,) and np.isfinite(scores).all()


def test_errors_are_one_line(wine, synthesizer) -> None:
    with pytest.raises(NotFittedError):
        VAESynthesizer().sample(5)
    with pytest.raises(ConfigError, match="n_samples"):
        synthesizer.sample(0)
    with pytest.raises(ConfigError, match="not conditional"):
        synthesizer.sample(5, label="barolo")
    with pytest.raises(ConfigError, match="label_column='cultivar'"):
        VAESynthesizer(**QUICK, label_column="cultivar").fit(wine)
    conditional = VAESynthesizer(**{**QUICK, "max_epochs": 2}, label_column="target").fit(wine)
    with pytest.raises(ConfigError, match="chianti"):
        conditional.sample(5, label="chianti")
    with pytest.raises(DataError, match="unknown classes chianti"):
        conditional.score_samples(wine.head(2).assign(target="chianti"))


def test_a_class_column_of_whole_numbers_gives_the_training_classes_in_their_shares(caplog) -> None:
    """wine's class as 0/1/2 was a Gaussian around 0.94 (a continuous column): synthetic classes in
    the wrong shares, and ML efficacy 0.0 when drawn unrounded. Few whole-number levels are categories."""
    rng = np.random.default_rng(0)
    label = rng.choice([0, 1, 2], 300, p=[0.45, 0.1, 0.45])
    x = np.column_stack([label, rng.normal(label * 2.0, 0.5), rng.normal(size=300)])
    assert [c.kind for c in infer_columns(x, ["label", "a", "b"])] == ["categorical", "continuous", "continuous"]
    rows = VAESynthesizer(**QUICK).fit(x).sample(2000, random_state=0)
    shares = np.bincount(rows[:, 0].astype(int), minlength=3) / len(rows)
    assert set(np.unique(rows[:, 0])) == {0.0, 1.0, 2.0}
    assert np.allclose(shares, [0.45, 0.1, 0.45], atol=0.08)


def test_a_column_of_one_synthetic_value_is_warned_of(caplog) -> None:
    from vaekit.applications.synthesize import warn_degenerate

    columns = [Column("class", "categorical", categories=["0", "1", "2"]), Column("x", "continuous")]
    rows = np.array([[1, float(i)] for i in range(30)], dtype=object)
    with caplog.at_level("WARNING", logger="vaekit"):
        warn_degenerate(columns, rows)
    assert "column class holds one value in every row" in caplog.text and "x" not in caplog.text.split(":")[1]
