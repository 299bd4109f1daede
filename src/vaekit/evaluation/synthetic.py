"""A synthetic table against the real one: the quality report's metrics (column shapes, column pair
trends, overall score), and the coding of tables they share with :mod:`vaekit.evaluation.synthetic_holdout`
(machine-learning efficacy and privacy).

Tables are (N, D) arrays, numbers or objects (text, numbers, None), one
:class:`~vaekit.data.columns.Column` per column (a run's ``spec.columns``; inferred from the real table
when not given): continuous and count columns are numbers, binary and categorical ones categories
(named as the table kind names them, so 1, 1.0 and "1" are one category). Missing: None, NaN or a
missing marker (:func:`~vaekit.data.columns.is_missing`).

Column shapes, pair trends and the overall score are SDMetrics 0.32's ``QualityReport``
(``sdmetrics/reports/single_table/_properties/column_shapes.py``, ``column_pair_trends.py``, the metrics
in ``single_column/statistical/`` and ``column_pairs/statistical/``), equal to it to 1e-9 on the tables of
``tests/unit/test_synthetic_metrics.py``:

- **Shapes**: numbers 1 - the two-sample KS statistic (values rounded to 14 decimals), categories
  1 - the total variation distance of their frequencies; missing values are dropped (their shares are
  reported beside, real and synthetic). SDMetrics adds 1e-6 to the real count of a category only the
  synthetic table has; not here (the scores differ by under 1e-6 / N).
- **Pair trends**: two numbers, 1 - |r_real - r_synth| / 2 (Pearson, each table on its rows where both
  are present); otherwise 1 - the total variation distance of the joint frequencies over all rows, a
  missing value a category of its own. A number paired with a category is binned as SDMetrics bins it:
  10 equal-width bins (``np.histogram_bin_edges``) over *its own table's* present values (the real and
  the synthetic column each get their own edges), ``np.digitize`` to 1..10, the largest value and the
  missing ones both to 11.
- **Which pairs count**: the report averages only pairs related in the real table: |r_real| > 0.5
  for two numbers, Cramér's V (no continuity correction, missing a category) > 0.3 for the others
  (``DEFAULT_REAL_CORRELATION_THRESHOLD``, ``DEFAULT_REAL_ASSOCIATION_THRESHOLD``); 0 counts every pair.
- **Overall**: the mean of the two property scores, or the shapes' alone when no pair counts.
- ContingencySimilarity called on its own with ``continuous_column_names`` bins otherwise (the real
  column's edges for both tables, the outer ones at -inf and inf): the report does not call it so.
- Unlike SDMetrics, nothing is subsampled (its contingency metric samples 50,000 rows of larger tables).

A score that does not exist (no values left, a constant column, one class) is never a NaN: the
:class:`Score` has ``value=None``, ``counted=False`` and the reason, and averages leave it out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from vaekit.data.columns import Column, encode, infer_columns, is_missing
from vaekit.errors import DataError

NUMBERS = ("continuous", "count")  # the column kinds scored as numbers; the others are categories
CORRELATION_THRESHOLD = 0.5  # sdmetrics.reports.utils.DEFAULT_REAL_CORRELATION_THRESHOLD
ASSOCIATION_THRESHOLD = 0.3  # sdmetrics.reports.utils.DEFAULT_REAL_ASSOCIATION_THRESHOLD
KS_DECIMALS = 14  # KSComplement rounds to sys.float_info.dig - 1 decimals
MISSING = -1.0  # a missing category's code in a contingency table


class Incomputable(ValueError):
    """A metric that has no value on these data; the message says why."""


@dataclass(frozen=True)
class Score:
    """One metric on one column or pair. ``value`` None: it has none; ``counted``: it is in the average;
    ``reason``: why not. ``real``: a pair's correlation (two numbers) or Cramér's V in the real table."""

    what: str
    metric: str
    value: float | None
    counted: bool
    reason: str = ""
    real: float | None = None


@dataclass
class Coded:
    """Tables coded alike: a number as float64, a category as its code (float), NaN where missing."""

    names: list[str]
    numeric: list[bool]
    levels: list[int]  # categories per category column (over all the tables), 0 for numbers
    tables: list[np.ndarray]


def code_tables(columns: Sequence[Column] | None, *tables: Any) -> Coded:
    """Code the tables alike: categories by the names the table kind gives them, over all the tables
    (a category only one table has is still a category). ``columns`` None: inferred from the first."""
    arrays = [_two_dimensional(np.asarray(t)) for t in tables]
    columns = list(columns) if columns is not None else infer_columns(arrays[0], None, what="real table")
    for t in arrays:
        if t.shape[1] != len(columns):
            raise DataError(f"a table has {t.shape[1]} columns, expected {len(columns)} "
                            f"({', '.join(c.name for c in columns[:10])})")
    numeric = [c.kind in NUMBERS for c in columns]
    coded = [np.full(t.shape, np.nan) for t in arrays]
    for j in np.flatnonzero(numeric):
        for out, t in zip(coded, arrays, strict=True):
            out[:, j] = _numbers(t[:, j], columns[j].name)
    levels = [0] * len(columns)
    stacked = np.concatenate([t.astype(object) for t in arrays])
    present = [j for j, n in enumerate(numeric) if not n and not all(is_missing(v) for v in stacked[:, j])]
    if present:
        names = [columns[j].name for j in present]
        fitted = infer_columns(stacked[:, present], names, dict.fromkeys(names, "categorical"))
        for out, t in zip(coded, arrays, strict=True):
            out[:, present] = encode(fitted, t[:, present].astype(object)).numpy()
        for j, column in zip(present, fitted, strict=True):
            levels[j] = len(column.categories or [])
    return Coded([c.name for c in columns], numeric, levels, coded)


def _two_dimensional(array: np.ndarray) -> np.ndarray:
    if array.ndim != 2 or not len(array):
        raise DataError(f"a table must be 2-D (rows, columns) with at least one row, got shape {array.shape}")
    return array


def _numbers(values: np.ndarray, name: str) -> np.ndarray:
    """A number column as float64, NaN where missing."""
    try:
        numbers = values.astype(np.float64) if values.dtype.kind in "biuf" else np.array(
            [np.nan if is_missing(v) else float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise DataError(f"column {name!r} holds numbers, but also something else ({error})") from None
    if np.isinf(numbers).any():
        raise DataError(f"column {name!r} holds an infinity; expected finite numbers (NaN where missing)")
    return numbers


def _present(values: np.ndarray, table: str) -> np.ndarray:
    kept = values[~np.isnan(values)]
    if not kept.size:
        raise Incomputable(f"no values in the {table} table")
    return kept


def ks_complement(real: np.ndarray, synthetic: np.ndarray) -> float:
    """1 - the two-sample Kolmogorov-Smirnov statistic of two number columns, missing values dropped
    (SDMetrics' KSComplement)."""
    real = np.sort(np.round(_present(np.asarray(real, dtype=np.float64), "real"), KS_DECIMALS))
    synthetic = np.sort(np.round(_present(np.asarray(synthetic, dtype=np.float64), "synthetic"), KS_DECIMALS))
    both = np.concatenate([real, synthetic])
    gap = np.searchsorted(real, both, "right") / real.size - np.searchsorted(synthetic, both, "right") / synthetic.size
    return 1.0 - float(np.max(np.abs(gap)))


def _frequencies(real: np.ndarray, synthetic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each table's share of every value (row, for 2-D codes) either table holds."""
    _, cell = np.unique(np.concatenate([real, synthetic]), axis=0, return_inverse=True)
    cell = cell.reshape(-1)
    size = int(cell.max()) + 1
    return (np.bincount(cell[:len(real)], minlength=size) / len(real),
            np.bincount(cell[len(real):], minlength=size) / len(synthetic))


def _tv_complement(real: np.ndarray, synthetic: np.ndarray) -> float:
    p, q = _frequencies(real, synthetic)
    return 1.0 - 0.5 * float(np.abs(p - q).sum())


def tv_complement(real: np.ndarray, synthetic: np.ndarray) -> float:
    """1 - the total variation distance of two category columns (codes), missing values dropped
    (SDMetrics' TVComplement)."""
    return _tv_complement(_present(np.asarray(real, dtype=np.float64), "real"),
                          _present(np.asarray(synthetic, dtype=np.float64), "synthetic"))


def contingency_similarity(real: np.ndarray, synthetic: np.ndarray) -> float:
    """1 - the total variation distance of two tables' (N, 2) joint frequencies of codes, a missing value
    a category of its own (SDMetrics' ContingencySimilarity on discrete columns)."""
    return _tv_complement(np.nan_to_num(real, nan=MISSING), np.nan_to_num(synthetic, nan=MISSING))


def pearson(pair: np.ndarray, table: str = "real") -> float:
    """Pearson's r of an (N, 2) pair of number columns on the rows where both are present."""
    pair = pair[~np.isnan(pair).any(axis=1)]
    if len(pair) < 2:
        raise Incomputable(f"fewer than 2 rows with both values in the {table} table")
    centred = pair - pair.mean(axis=0)
    spread = np.sqrt((centred**2).sum(axis=0))
    if not spread.all():
        raise Incomputable(f"a column is constant in the {table} table: no correlation")
    return float(np.clip(centred[:, 0] @ centred[:, 1] / (spread[0] * spread[1]), -1.0, 1.0))


def correlation_similarity(real: np.ndarray, synthetic: np.ndarray) -> float:
    """1 - |r_real - r_synth| / 2 of two tables' (N, 2) number pairs (SDMetrics' CorrelationSimilarity)."""
    return 1.0 - abs(pearson(real, "real") - pearson(synthetic, "synthetic")) / 2.0


def cramers_v(pair: np.ndarray) -> float:
    """Cramér's V of an (N, 2) pair of codes (missing a category of its own), without continuity
    correction, as ``scipy.stats.contingency.association``."""
    pair = np.nan_to_num(pair, nan=MISSING)
    _, rows = np.unique(pair[:, 0], return_inverse=True)
    _, cols = np.unique(pair[:, 1], return_inverse=True)
    shape = (int(rows.max()) + 1, int(cols.max()) + 1)
    if min(shape) < 2:
        raise Incomputable("a column holds one value in the real table: no association")
    observed = np.bincount(rows * shape[1] + cols, minlength=shape[0] * shape[1]).reshape(shape)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / len(pair)
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / len(pair) / (min(shape) - 1)))


MAX_PAIRS = 5000  # column pairs scored for pair trends; more are sampled (chosen_pairs)
SAMPLED = "pair trends sampled"  # the note that says so


def histogram_bins(values: np.ndarray) -> np.ndarray:
    """A number column as pair trends bin it against a category: ten equal-width bins over its present
    values, 1..10, the largest value and the missing ones 11 (SDMetrics 0.32's ``_discretize_column``)."""
    return np.digitize(values, np.histogram_bin_edges(values[~np.isnan(values)])).astype(np.float64)


def _mean(scores: Sequence[Score]) -> float | None:
    values = [s.value for s in scores if s.counted and s.value is not None]
    return float(np.mean(values)) if values else None


def _scored(what: str, metric: str, compute: Callable[[], float]) -> Score:
    try:
        return Score(what, metric, compute(), True)
    except Incomputable as why:
        return Score(what, metric, None, False, str(why))


def column_shapes(coded: Coded) -> list[Score]:
    """KSComplement for each number column, TVComplement for each category column (real = table 0)."""
    real, synthetic = coded.tables[:2]
    return [_scored(name, "KSComplement" if numeric else "TVComplement",
                    lambda j=j, f=ks_complement if numeric else tv_complement: f(real[:, j], synthetic[:, j]))
            for j, (name, numeric) in enumerate(zip(coded.names, coded.numeric, strict=True))]


def _pair_trend(coded: Coded, i: int, j: int, binned: list[np.ndarray], threshold: float) -> Score:
    """One pair's score, and whether its real relation passes ``threshold`` (see the module's notes)."""
    what = f"{coded.names[i]} / {coded.names[j]}"
    real, synthetic = (t[:, [i, j]] for t in coded.tables[:2])
    if coded.numeric[i] and coded.numeric[j]:
        metric, similarity = "CorrelationSimilarity", correlation_similarity
        strength: Callable[[np.ndarray], float] = pearson
    else:
        metric, similarity, strength = "ContingencySimilarity", contingency_similarity, cramers_v
        real, synthetic = (b[:, [i, j]] for b in binned)  # a number binned, a category as it is
    try:
        score = similarity(real, synthetic)
    except Incomputable as why:
        return Score(what, metric, None, False, str(why))
    if threshold <= 0 and metric == "ContingencySimilarity":
        return Score(what, metric, score, True)
    try:  # SDMetrics leaves out a pair whose real relation it cannot measure, or that is at most the threshold
        relation = strength(real)
    except Incomputable as why:
        return Score(what, metric, score, False, str(why))
    if abs(relation) <= threshold:
        return Score(what, metric, score, False, f"real relation {relation:.3g} within the threshold {threshold:g}",
                     relation)
    return Score(what, metric, score, True, real=relation)


def chosen_pairs(n_columns: int, max_pairs: int | None = MAX_PAIRS, seed: int = 0) -> list[tuple[int, int]]:
    """Every pair of ``n_columns`` columns, or ``max_pairs`` of them drawn at random (seeded, in order)
    when there are more: a 784-column pixel table has 306,936 pairs, minutes of work for a mean that
    5,000 pairs pin down to about 0.005 (the scores lie in [0, 1])."""
    pairs = list(combinations(range(n_columns), 2))
    if max_pairs is None or len(pairs) <= max_pairs:
        return pairs
    keep = np.sort(np.random.default_rng(seed).choice(len(pairs), max_pairs, replace=False))
    return [pairs[k] for k in keep]


def pair_trends(coded: Coded, correlation_threshold: float = CORRELATION_THRESHOLD,
                association_threshold: float = ASSOCIATION_THRESHOLD, max_pairs: int | None = MAX_PAIRS) -> list[Score]:
    """Every pair of columns (at most ``max_pairs``, see :func:`chosen_pairs`): CorrelationSimilarity for
    two numbers, ContingencySimilarity otherwise; a pair counts when its real relation passes its
    threshold (0: every computable pair counts)."""
    binned = [np.column_stack([histogram_bins(t[:, j]) if n else t[:, j] for j, n in enumerate(coded.numeric)])
              for t in coded.tables[:2]]
    return [_pair_trend(coded, i, j, binned, correlation_threshold if coded.numeric[i] and coded.numeric[j]
                        else association_threshold)
            for i, j in chosen_pairs(len(coded.names), max_pairs)]


@dataclass
class Quality:
    """SDMetrics' quality report: the two property scores (None: nothing counted, see ``notes``), their
    mean, each column's and pair's :class:`Score`, and each column's missing share (real, synthetic)."""

    column_shapes: float | None
    pair_trends: float | None
    overall: float | None
    shapes: list[Score]
    pairs: list[Score]
    missing: dict[str, tuple[float, float]]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quality_report(columns: Sequence[Column] | None, real: Any, synthetic: Any,
                   correlation_threshold: float = CORRELATION_THRESHOLD,
                   association_threshold: float = ASSOCIATION_THRESHOLD) -> Quality:
    """Column shapes, column pair trends and their mean, as SDMetrics 0.32's QualityReport scores them."""
    coded = code_tables(columns, real, synthetic)
    shapes, pairs = column_shapes(coded), pair_trends(coded, correlation_threshold, association_threshold)
    properties = {"column shapes": _mean(shapes), "pair trends": _mean(pairs)}
    notes = [f"{name}: no {'pair' if name == 'pair trends' else 'column'} counted"
             for name, value in properties.items() if value is None]
    n_pairs = len(coded.names) * (len(coded.names) - 1) // 2
    if len(pairs) < n_pairs:
        notes.append(f"{SAMPLED}: {len(pairs):,} of the {n_pairs:,} column pairs, drawn at random (seed 0)")
    kept = [value for value in properties.values() if value is not None]
    missing = {name: (float(np.isnan(coded.tables[0][:, j]).mean()), float(np.isnan(coded.tables[1][:, j]).mean()))
               for j, name in enumerate(coded.names)}
    return Quality(properties["column shapes"], properties["pair trends"], float(np.mean(kept)) if kept else None,
                   shapes, pairs, missing, notes)
