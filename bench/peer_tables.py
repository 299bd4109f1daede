"""Tables for the side-by-side benchmarks (bench/tables_peers.py): all offline, as pandas frames.

Each table is a frame plus the name of its target column and what the target is ("class" or
"value"). Numbers stay numbers (integers as integer dtypes where every value is whole), text stays
text, missing values are NaN / None, as a user's CSV would give them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine

HOLES = {"alcohol": 0.25, "magnesium": 0.10}  # wine_holes: share of each column emptied (fixed mask, seed 20)


@dataclass
class Table:
    name: str
    frame: pd.DataFrame
    target: str
    task: str  # "class" or "value"


def _wholes(frame: pd.DataFrame) -> pd.DataFrame:
    """Float columns whose values are all whole (and none missing) as int64."""
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind == "f" and column.notna().all() and np.all(np.mod(column, 1) == 0):
            frame[name] = column.astype(np.int64)
    return frame


def breast_cancer() -> Table:
    frame = load_breast_cancer(as_frame=True).frame  # target 0 = malignant, 1 = benign
    return Table("breast_cancer", frame, "target", "class")


def wine() -> Table:
    return Table("wine", _wholes(load_wine(as_frame=True).frame), "target", "class")


def wine_text() -> Table:
    frame = _wholes(load_wine(as_frame=True).frame)
    frame["target"] = frame["target"].map(lambda c: f"class_{c}").astype(object)
    return Table("wine_text", frame, "target", "class")


def wine_holes() -> Table:
    """wine_text with 25% of alcohol and 10% of magnesium (of all rows, exactly) emptied completely at random."""
    frame = wine_text().frame
    rng = np.random.default_rng(20)
    for name, share in HOLES.items():
        frame[name] = frame[name].astype(np.float64)
        frame.loc[rng.choice(len(frame), round(share * len(frame)), replace=False), name] = np.nan
    return Table("wine_holes", frame, "target", "class")


def diabetes() -> Table:
    """The raw diabetes table (ages in years, sex 1/2, ...), disease progression as the target."""
    return Table("diabetes", _wholes(load_diabetes(as_frame=True, scaled=False).frame), "target", "value")


def iris() -> Table:
    data = load_iris(as_frame=True)
    frame = data.frame.copy()
    frame["target"] = [str(data.target_names[t]) for t in frame["target"]]
    frame = frame.rename(columns={"target": "species"}).astype({"species": object})
    return Table("iris", frame, "species", "class")


def penguins() -> Table:
    """palmerpenguins: species, island, sex as text, 4 measurements and year, with missing values."""
    import palmerpenguins

    frame = palmerpenguins.load_penguins()
    frame = frame.astype({c: object for c in ("species", "island", "sex")})
    frame["sex"] = frame["sex"].where(frame["sex"].notna(), None)
    return Table("penguins", frame, "species", "class")


def digits() -> Table:
    frame = load_digits(as_frame=True).frame
    return Table("digits", frame, "target", "class")


def mixed5k(rows: int = 5000, seed: int = 7) -> Table:
    """A generated table of the size the issue names (thousands of rows, dozens of columns): 5,000 rows
    of 48 columns driven by 4 hidden factors and a 4-valued text class: 16 continuous (some skewed),
    8 two-valued, 12 text categories of 3 to 10 values, 12 counts (negative binomial), 5% of four
    columns empty. Not real data: it measures speed at that size and checks every kind at once."""
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, 4, rows)
    factors = rng.normal(size=(rows, 4)) + np.eye(4)[cls] * 1.5
    frame = {}
    for j in range(16):
        value = factors @ rng.normal(size=4) + 0.5 * rng.normal(size=rows)
        frame[f"num{j}"] = np.round(np.exp(value / 3) if j % 4 == 0 else 10 + 3 * value, 3)
    for j in range(8):
        frame[f"flag{j}"] = (factors @ rng.normal(size=4) + rng.normal(size=rows) > 0).astype(np.int64)
    for j in range(12):
        levels = 3 + j % 8
        logits = factors @ rng.normal(size=(4, levels))
        drawn = (logits + rng.gumbel(size=logits.shape)).argmax(1)
        frame[f"cat{j}"] = np.array([f"c{j}_{v}" for v in range(levels)], dtype=object)[drawn]
    for j in range(12):
        mean = np.exp(1 + 0.4 * (factors @ rng.normal(size=4)))
        frame[f"count{j}"] = rng.negative_binomial(2, 2 / (2 + mean)).astype(np.int64)
    frame = pd.DataFrame(frame)
    for name in ("num1", "num5", "cat2", "count3"):
        frame[name] = frame[name].astype(np.float64 if name != "cat2" else object)
        frame.loc[rng.random(rows) < 0.05, name] = np.nan if name != "cat2" else None
    frame["target"] = np.array(["a", "b", "c", "d"], dtype=object)[cls]
    return Table("mixed5k", frame, "target", "class")


TABLES = {t.__name__: t for t in (breast_cancer, wine, wine_text, wine_holes, diabetes, iris, penguins, digits,
                                  mixed5k)}

# anomaly: (table, the target values that are normal, columns left out); the other classes are the anomalies
ANOMALY = {
    "breast_cancer": ("breast_cancer", [1], []),  # benign normal, malignant anomalies
    "wine": ("wine", [0, 1], []),  # class 2 (the third) held out
    "digits": ("digits", [0], []),  # digit 0 normal, every other digit an anomaly
    "iris": ("iris", ["setosa", "versicolor"], []),  # virginica held out
    "penguins": ("penguins", ["Adelie", "Gentoo"], ["year"]),  # Chinstrap held out; the 4 measurements
}


def numeric_features(table: Table, leave_out: list[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """The table's number columns (target and ``leave_out`` left out) as float64, rows with a
    missing value dropped, and the target of those rows."""
    frame = table.frame.drop(columns=[table.target, *leave_out])
    frame = frame.select_dtypes("number")
    keep = frame.notna().all(axis=1).to_numpy()
    return frame.to_numpy(np.float64)[keep], table.frame[table.target].to_numpy()[keep]
