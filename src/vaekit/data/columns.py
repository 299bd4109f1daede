"""Columns of a table: what kind each one is, and how its raw values map to model space and back.

A table's raw values (N, D) are numbers (float, NaN = missing) or, when any column holds text, an
object array of strings, numbers and None. Each column gets a kind, inferred from the training data
and overridable per column (``data.column_types``):

- ``continuous``: numbers; standardised with the training mean and standard deviation, or with
  ``data.continuous_transform=quantile`` (the default) mapped to normal scores through the training
  values' empirical CDF (:mod:`vaekit.data.quantiles`). A column
  that holds one value throughout the training data is a constant (``Column.constant``): it has no
  spread to standardise by, and the model gives its value back rather than learning it.
- ``binary``: exactly two distinct values (0/1, True/False, "yes"/"no", -0.0446/0.0507); coded 0
  and 1 in the sorted order of the values, and decoded as one of the two values, exactly.
- ``categorical``: text, numbers declared categorical, or whole numbers of at most
  :data:`MAX_LEVELS` values that are not counts (a class 0/1/2, a year 2007..2009); coded 0..K-1 by
  the sorted training values.
- ``count``: non-negative integers spread at least as a Poisson's (variance >= mean), more than two
  values (a negative binomial likelihood); kept as they are.

Model space is float32 (N, D), one value per column (a category's code, not a one-hot vector), with
NaN where a value is missing: the encoder's input layer expands codes and masks the holes, and the
table likelihood skips them (:mod:`vaekit.distributions.tabular`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from vaekit.data.column_shapes import MAX_LEVELS, looks_like_counts, looks_like_identifier, looks_like_levels
from vaekit.data.quantiles import fit_quantiles, from_model, to_model
from vaekit.errors import ConfigError, DataError

log = logging.getLogger("vaekit")
Kind = Literal["continuous", "binary", "categorical", "count"]
KINDS: tuple[str, ...] = ("continuous", "binary", "categorical", "count")
MISSING_TEXT = frozenset({"", "na", "nan", "null", "none", "?"})


@dataclass
class Column:
    """One column: its name, kind, and what its training values fixed (categories, mean, spread)."""

    name: str
    kind: Kind
    categories: list[str] | None = None  # binary / categorical: the raw values, in code order
    loc: float = 0.0  # continuous: subtracted; count: the training mean (the decoder's log-mean starts there)
    std: float = 1.0  # continuous: divided by
    # continuous: one value (``loc``) throughout the training data. Standardised by its spread
    # (floored at 1e-8), a constant pixel that is 255 in one test row came out 2.5e10 and the
    # validation loss 1e23; it has no likelihood term and no input to the encoder instead.
    constant: bool = False
    # What synthetic rows keep of the training values (vaekit synthesize); run folders from before
    # these were recorded load with the defaults (no rounding, no clipping, no holes).
    # continuous: the most decimal places of a training value (0: whole numbers, given back as
    # integers), None beyond MAX_DECIMALS
    decimals: int | None = None
    low: float | None = None  # continuous and count: the least and greatest training values
    high: float | None = None
    missing: float = 0.0  # the share of training rows where the column is empty
    # continuous, quantile transform (vaekit.data.quantiles): the distinct training values (at most
    # 1000) and the empirical CDF at each; None: standardised by loc and std (run folders from before)
    quantiles: list[float] | None = None
    quantile_probs: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_missing(value: Any) -> bool:
    """None, NaN, pandas' NA and NaT, and the usual missing markers in text ("", "NA", "?"...)."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return isinstance(value, str) and value.strip().lower() in MISSING_TEXT


def _as_number(value: Any) -> float | None:
    """The value as a float, NaN when missing, None when it is not a number."""
    if is_missing(value):
        return math.nan
    if isinstance(value, bool | np.bool_):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    """How a category value is named: integral floats without their '.0'."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def category_name(value: Any) -> str | None:
    """How a category (or class) value is named, None when it is missing."""
    return None if is_missing(value) else _text(value)


def _sort_key(value: str) -> tuple[int, float, str]:
    number = _as_number(value)
    return (0, number, "") if number is not None and not math.isnan(number) else (1, 0.0, value)


def infer_columns(x: np.ndarray, names: list[str] | None, overrides: dict[str, str] | None = None,
                  what: str = "table", others: list[np.ndarray] | None = None,
                  scale: str = "standardize", transform: str = "standardize") -> list[Column]:
    """One :class:`Column` per column of the training table x (N, D), kinds inferred unless
    ``overrides`` (column name -> kind) says otherwise. ``others`` (the held-out splits of the same
    source) add categories seen only there: a category is a name, not a statistic. ``scale`` sets a
    continuous column's loc and std: "standardize" (mean, std), "unit" (min, max - min) or "none"
    (0, 1). ``transform`` "quantile" maps continuous columns to normal scores instead
    (:mod:`vaekit.data.quantiles`; ``scale`` is then not used)."""
    n, width = x.shape
    names = list(names) if names else [f"x{j}" for j in range(width)]
    overrides = dict(overrides or {})
    for name, kind in overrides.items():
        if name not in names:
            raise ConfigError(f"data.column_types: no column {name!r} in {what}; columns: {', '.join(names[:20])}")
        if kind not in KINDS:
            raise ConfigError(f"data.column_types[{name!r}] = {kind!r}: expected one of {', '.join(KINDS)}")
    columns, levels, identifiers = [], [], []
    for j, name in enumerate(names):
        values = x[:, j]
        numbers = _numbers(values)
        _check_finite(numbers, name, what)
        present = [v for v in values if not is_missing(v)]
        if not present:
            raise DataError(f"{what}: column {name!r} has no values in the training data")
        kind = overrides.get(name)
        with_held_out = np.concatenate([values, *[o[:, j] for o in others or []]])
        if kind is None:
            if numbers is None or any(isinstance(v, bool | np.bool_) for v in present[:1]):
                kind = "binary" if len(_categories(with_held_out)) == 2 else "categorical"
            else:
                finite = numbers[~np.isnan(numbers)]
                distinct = np.unique(finite)
                # Two values are two categories, whatever they are (diabetes' sex is -0.0446 and
                # 0.0507): as a continuous column it was imputed as 0.000435, neither of them.
                kind = "binary" if len(distinct) == 2 and len(_categories(with_held_out)) == 2 else (
                    "count" if looks_like_counts(finite, distinct) else
                    "categorical" if looks_like_levels(finite, distinct) else "continuous")
                if kind == "categorical":
                    levels.append(name)
        share = (len(values) - len(present)) / len(values)
        if kind in ("binary", "categorical"):
            values = with_held_out
        columns.append(replace(_fit_column(name, kind, values, numbers, what, scale, transform), missing=share))
        if name not in overrides and looks_like_identifier(columns[-1], numbers, len(present)):
            identifiers.append(name)
    if identifiers:
        log.warning("%s: column%s %s hold%s a different value in (nearly) every row, as an identifier, a date or "
                    "free text does; modelled as %s, a new row's value will be unknown or out of range (drop "
                    "the column, or declare its kind in data.column_types)", what,
                    "s" if len(identifiers) > 1 else "", _some(identifiers), "" if len(identifiers) > 1 else "s",
                    "they are" if len(identifiers) > 1 else "it is")
    if levels:
        log.info("%s: whole-number columns of at most %d values modelled as categories: %s (data.column_types "
                 "declares them continuous)", what, MAX_LEVELS, _some(levels))
    constant = [c.name for c in columns if c.constant]
    if len(constant) == width:
        raise DataError(f"{what}: every column holds one value throughout the training data ({n} rows): nothing "
                        "to learn; a model needs more than one sample, with values that differ")
    if constant:
        log.warning("%s: %d column%s hold one value throughout the training data (%s); modelled as constants: "
                    "that value is given back, not learned", what, len(constant), "s" if len(constant) > 1 else "",
                    _some(constant))
    return columns


def _numbers(values: np.ndarray) -> np.ndarray | None:
    """A column's values as float64 (NaN where missing), None when one of them is not a number."""
    if values.dtype != object:
        return values.astype(np.float64)
    parsed = [_as_number(v) for v in values]
    return np.array(parsed, dtype=np.float64) if all(p is not None for p in parsed) else None


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_finite(numbers: np.ndarray | None, name: str, what: str) -> None:
    """Refuse a training column holding an infinity or a number beyond float32 (the model's
    precision), naming its first such row, before any statistic is taken of it (which would print
    numpy's overflow warnings and fit a scale of inf)."""
    if numbers is None:
        return
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(np.isinf(numbers) | (np.abs(numbers) > FLOAT32_MAX))
    if bad.size:  # no row number: x is the training split, its rows are not the file's
        value = float(numbers[bad[0]])
        raise DataError(f"{what}: column {name!r} holds {value!r}, "
                        f"{'an infinity' if math.isinf(value) else 'beyond float32 (|x| <= 3.4e38)'}; expected finite "
                        "numbers (leave a value empty where it is missing)")


def _categories(values: np.ndarray) -> list[str]:
    """The distinct values present, named as :func:`_text` names them, in sorted order."""
    return sorted({_text(v) for v in values if not is_missing(v)}, key=_sort_key)


def _some(names: list[str], shown: int = 10) -> str:
    """The first names, and how many more."""
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _fit_column(name: str, kind: str, values: np.ndarray, numbers: np.ndarray | None, what: str,
                scale: str = "standardize", transform: str = "standardize") -> Column:
    if kind in ("binary", "categorical"):
        categories = _categories(values)
        if kind == "binary" and len(categories) != 2:
            raise DataError(f"{what}: column {name!r} is declared binary but has {len(categories)} distinct values")
        return Column(name, kind, categories=categories)
    if numbers is None:
        raise DataError(f"{what}: column {name!r} holds text; it cannot be {kind} (declare it categorical)")
    finite = numbers[~np.isnan(numbers)]
    bounds = {"low": float(finite.min()), "high": float(finite.max())} if finite.size else {}
    if kind == "count":
        if (finite < 0).any() or (np.mod(finite, 1) != 0).any():
            raise DataError(f"{what}: column {name!r} is declared a count but holds negative or fractional values")
        return Column(name, "count", loc=float(finite.mean()) if finite.size else 0.0, **bounds)
    bounds["decimals"] = decimals(finite)
    if finite.size and finite.min() == finite.max():
        return Column(name, "continuous", loc=float(finite[0]), constant=True, **bounds)
    if transform == "quantile":
        values, probs = fit_quantiles(finite)
        return Column(name, "continuous", loc=float(finite.mean()), std=float(max(finite.std(), 1e-8)),
                      quantiles=values, quantile_probs=probs, **bounds)
    if scale == "none":
        return Column(name, "continuous", **bounds)
    if scale == "unit":
        return Column(name, "continuous", loc=float(finite.min()), std=float(max(np.ptp(finite), 1e-8)), **bounds)
    return Column(name, "continuous", loc=float(finite.mean()), std=float(max(finite.std(), 1e-8)), **bounds)


MAX_DECIMALS = 6


def decimals(finite: np.ndarray) -> int | None:
    """The fewest decimal places that write every value (2 for 14.23 and 1.5), None beyond
    :data:`MAX_DECIMALS` (measurements in float noise)."""
    for places in range(MAX_DECIMALS + 1):
        scaled = finite * 10.0**places
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-9 * np.maximum(1.0, np.abs(scaled))):
            return places
    return None


def encode(columns: list[Column], x: np.ndarray, what: str = "input") -> Tensor:
    """Raw table (N, D) -> model space float32 (N, D), NaN where missing; unknown categories and
    text in numeric columns are errors that name the column and the value."""
    if x.ndim != 2 or x.shape[1] != len(columns):
        raise DataError(f"{what}: {x.shape[1] if x.ndim == 2 else 'no'} columns, the model expects "
                        f"{len(columns)} ({', '.join(c.name for c in columns[:20])})")
    out = np.empty(x.shape, dtype=np.float32)
    departed: list[str] = []  # constant columns holding another value here
    for j, column in enumerate(columns):
        values = x[:, j]
        if column.kind in ("binary", "categorical"):
            code = {name: k for k, name in enumerate(column.categories)}
            coded = np.empty(len(values), dtype=np.float32)
            for i, value in enumerate(values):
                if is_missing(value):
                    coded[i] = np.nan
                    continue
                k = code.get(_text(value))
                if k is None:
                    raise DataError(f"{what}: row {i}, column {column.name!r}: unknown category {_text(value)!r}; "
                                    f"expected one of {', '.join(column.categories[:12])}")
                coded[i] = k
            out[:, j] = coded
            continue
        numbers = values.astype(np.float64) if values.dtype != object else None
        if numbers is None:
            parsed = [_as_number(v) for v in values]
            bad = next((i for i, p in enumerate(parsed) if p is None), None)
            if bad is not None:
                raise DataError(f"{what}: row {bad}, column {column.name!r}: {values[bad]!r} is not a number")
            numbers = np.array(parsed, dtype=np.float64)
        if np.isinf(numbers).any():
            raise DataError(f"{what}: column {column.name!r} holds infinite values")
        if column.kind == "count":
            finite = numbers[~np.isnan(numbers)]
            if (finite < 0).any() or (np.mod(finite, 1) != 0).any():
                raise DataError(f"{what}: column {column.name!r} is a count: expected non-negative integers")
            out[:, j] = numbers
        else:
            with np.errstate(over="ignore"):
                out[:, j] = to_model(column, numbers)
            if np.isinf(out[:, j]).any():  # beyond float32 once standardised: the model would give NaN
                row = int(np.flatnonzero(np.isinf(out[:, j]))[0])
                raise DataError(f"{what}: row {row}, column {column.name!r}: {numbers[row]!r} lies too far outside "
                                f"the training data (mean {column.loc:.4g}, std {column.std:.4g}) to be modelled")
            if column.constant and (rows := int(np.sum(numbers[~np.isnan(numbers)] != column.loc))):
                departed.append(f"{column.name} in {rows} row{'s' if rows > 1 else ''}")
    if departed:
        log.warning("%s: columns that held one value throughout the training data hold others here (%s); the "
                    "model cannot represent them and gives the training value back; anomaly scores count each "
                    "departure as a large penalty", what, _some(departed))
    return torch.from_numpy(out)


def decode(columns: list[Column], values: Tensor, model_space: bool = True) -> np.ndarray:
    """Values (N, D) -> raw table: numbers back in their units (already in them unless
    ``model_space``), codes back to category values (an object array when any column is
    categorical or binary with text values)."""
    array = values.detach().cpu().double().numpy()
    numeric = np.empty(array.shape, dtype=np.float64)
    text = any(c.kind in ("binary", "categorical") and not _numeric_categories(c) for c in columns)
    out = np.empty(array.shape, dtype=object) if text else numeric
    for j, column in enumerate(columns):
        col = array[:, j]
        if column.kind == "continuous":
            result = from_model(column, col) if model_space else col
        elif column.kind == "count":
            result = np.round(np.maximum(col, 0.0))
        else:
            codes = np.clip(np.round(np.nan_to_num(col)), 0, len(column.categories) - 1).astype(int)
            names = np.array(column.categories, dtype=object)[codes]
            result = names.astype(np.float64) if _numeric_categories(column) else names
            result = np.where(np.isnan(col), np.nan if not text else None, result)
        out[:, j] = result
    return out


def _numeric_categories(column: Column) -> bool:
    return all(_as_number(c) is not None for c in column.categories or [])


def is_numeric(column: Column) -> bool:
    """Whether a column's values are numbers (a binary or categorical one's included)."""
    return column.kind in ("continuous", "count") or _numeric_categories(column)


def value_type(column: Column) -> str:
    """How a column's values are given back: "integer" (counts, whole-number columns and categories),
    "number" or "text"."""
    if column.kind == "count" or (column.kind == "continuous" and column.decimals == 0):
        return "integer"
    if column.kind == "continuous":
        return "number"
    if not _numeric_categories(column):
        return "text"
    return "integer" if all(float(c).is_integer() for c in column.categories) else "number"


# A synthetic column with this share of its draws outside the training range (clipped to its ends) is
# named in a warning: the ends then hold a point mass the training data did not have.
CLIPPED_SHARE = 0.02


def synthetic_rows(columns: list[Column], values: Tensor, holes: np.ndarray, clip: bool = True) -> np.ndarray:
    """Draws of p(x|z) in model space (N, D) -> rows as the training table held them, an object
    array: numbers rounded to their column's decimal places (whole numbers as ints; 7 significant
    digits where the places were not recorded), categories by name, None where ``holes`` (N, D) is
    True; with ``clip``, numbers within the training range (``Column.low``, ``Column.high``; not
    recorded in run folders from before them)."""
    table = decode(columns, values)
    out = np.empty(table.shape, dtype=object)
    clipped = []  # (share, name) of columns with many draws set to a bound
    for j, column in enumerate(columns):
        kind, cells, gaps = value_type(column), table[:, j], holes[:, j]
        if column.kind in ("continuous", "count"):
            cells = cells.astype(np.float64)
            gaps = gaps | ~np.isfinite(cells)  # a draw that overflowed float32 is no value to give
            places = 0 if kind == "integer" else column.decimals
            cells = np.round(cells, places) if places is not None else np.array([float(f"{v:.7g}") for v in cells])
            if clip and column.low is not None:  # after rounding: the bounds are training values
                outside = ((cells < column.low) | (cells > column.high))[~gaps]
                if outside.size >= 50 and outside.mean() >= CLIPPED_SHARE:
                    clipped.append((float(outside.mean()), column.name))
                cells = np.clip(cells, column.low, column.high)
        as_value = {"integer": int, "number": float, "text": str}[kind]
        out[:, j] = [None if gap else as_value(cell) for cell, gap in zip(cells, gaps, strict=True)]
    if clipped:
        shown = ", ".join(f"{name} {share:.1%}" for share, name in sorted(clipped, reverse=True)[:8])
        log.warning("synthetic rows: drawn values outside the training range were set to its ends (%s of a "
                    "column's values): those ends now hold more rows than in training; the model's tails are "
                    "wider than the data's (train longer, or --no-clip to keep the draws)", shown)
    return out
