"""The quantile transform of a continuous table column: values -> normal scores, and back.

A Gaussian copula beats a VAE's standardised columns on small tables because each column's marginal
is mapped exactly: a value goes through the training column's empirical CDF and then the standard
normal's inverse CDF (its normal score), so a skewed, bounded or lumpy column is a standard normal
to the model, and a normal draw maps back onto the training values' own distribution.

Stored per column (``Column.quantiles`` and ``Column.quantile_probs``, plain numbers in
data_spec.json): the distinct training values, sorted, and the empirical CDF at each (its mid-rank:
the share of values below it plus half the share equal to it, so tied values share one score), at
most :data:`MAX_QUANTILES` of them (evenly spaced ranks, the least and greatest kept). Between them
the map interpolates linearly; beyond the training range it goes on as a line of slope 1 / std (the
column's training standard deviation) in score per unit, so a value far outside the training data
stays far outside (anomaly scores keep their order) and every value has a finite score.

The model's Gaussian likelihood of a quantile-transformed column is then a density of its normal
score, not of the value in its units: log p(x) leaves out log |d score / d x|, a term that is the
same for every model of the column but differs from row to row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from vaekit.data.columns import Column

MAX_QUANTILES = 1000  # stored points per column: 2 x 1000 floats at most in data_spec.json


def fit_quantiles(finite: np.ndarray, most: int = MAX_QUANTILES) -> tuple[list[float], list[float]]:
    """(values, probabilities): a column's distinct training values (more than one, no NaN), sorted,
    and the empirical CDF's mid-rank at each, thinned to ``most`` points."""
    values, counts = np.unique(finite.astype(np.float64), return_counts=True)
    below = np.concatenate([[0], np.cumsum(counts)[:-1]])
    probs = (below + counts / 2.0) / counts.sum()
    if len(values) > most:
        keep = np.unique(np.round(np.linspace(0, len(values) - 1, most)).astype(np.int64))
        values, probs = values[keep], probs[keep]
    return values.tolist(), probs.tolist()


def _ndtri(p: np.ndarray) -> np.ndarray:
    return torch.special.ndtri(torch.from_numpy(np.asarray(p, dtype=np.float64))).numpy()


def _ndtr(z: np.ndarray) -> np.ndarray:
    return torch.special.ndtr(torch.from_numpy(np.asarray(z, dtype=np.float64))).numpy()


def to_scores(numbers: np.ndarray, values: list[float], probs: list[float], std: float) -> np.ndarray:
    """Values (any shape, NaN kept) -> normal scores through the stored quantiles, extended beyond
    the training range by lines of slope 1 / ``std``."""
    q, p = np.asarray(values), np.asarray(probs)
    scores = _ndtri(p)
    x = np.asarray(numbers, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        out = _ndtri(np.interp(x, q, p))
        out = np.where(x < q[0], scores[0] + (x - q[0]) / std, out)
        out = np.where(x > q[-1], scores[-1] + (x - q[-1]) / std, out)
    return out


def from_scores(scores: np.ndarray, values: list[float], probs: list[float], std: float) -> np.ndarray:
    """Normal scores (any shape, NaN kept) -> values: the inverse of :func:`to_scores`."""
    q, p = np.asarray(values), np.asarray(probs)
    ends = _ndtri(p[[0, -1]])
    z = np.asarray(scores, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        out = np.interp(_ndtr(z), p, q)
        out = np.where(z < ends[0], q[0] + (z - ends[0]) * std, out)
        out = np.where(z > ends[1], q[-1] + (z - ends[1]) * std, out)
    return out


def to_model(column: Column, numbers: np.ndarray) -> np.ndarray:
    """A continuous column's values in their units -> model space (standardised or normal scores)."""
    if column.quantiles is not None:
        return to_scores(numbers, column.quantiles, column.quantile_probs, column.std)
    return (numbers - column.loc) / column.std


def from_model(column: Column, values: np.ndarray) -> np.ndarray:
    """A continuous column's model-space values -> its units: the inverse of :func:`to_model`."""
    if column.quantiles is not None:
        return from_scores(values, column.quantiles, column.quantile_probs, column.std)
    return values * column.std + column.loc
