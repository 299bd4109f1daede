"""The quantile transform of continuous table columns (vaekit.data.quantiles): values to normal
scores and back, ties, tails, holes, constant columns, and specs without it."""

from __future__ import annotations

import numpy as np
import torch

from vaekit.data.columns import Column, decode, encode, infer_columns
from vaekit.data.quantiles import MAX_QUANTILES, fit_quantiles, from_scores, to_scores


def column_of(values: np.ndarray) -> Column:
    return infer_columns(values[:, None].astype(object), ["x"], transform="quantile")[0]


def test_scores_round_trip_within_the_range_and_are_monotone() -> None:
    x = np.random.default_rng(0).lognormal(0.0, 1.0, 500)  # skewed
    column = column_of(x)
    scores = encode([column], x[:, None].astype(object)).double().numpy()[:, 0]
    assert np.allclose(decode([column], torch.from_numpy(scores[:, None]))[:, 0], x, rtol=1e-4)  # float32 scores
    order = np.argsort(x)
    assert np.all(np.diff(scores[order]) > 0)
    assert abs(scores.mean()) < 0.05 and abs(scores.std() - 1.0) < 0.05  # normal scores, skew gone


def test_ties_share_one_score_and_the_stored_points_are_capped() -> None:
    x = np.array([1.0, 2.0, 2.0, 2.0, 3.0])
    values, probs = fit_quantiles(x)
    assert values == [1.0, 2.0, 3.0] and np.allclose(probs, [0.1, 0.5, 0.9])
    scores = to_scores(x, values, probs, 1.0)
    assert scores[1] == scores[2] == scores[3] == 0.0
    many = np.random.default_rng(1).normal(size=5000)
    values, probs = fit_quantiles(many)
    assert len(values) == len(probs) == MAX_QUANTILES and values[0] == many.min() and values[-1] == many.max()


def test_values_beyond_the_range_keep_their_order_and_come_back() -> None:
    values, probs = fit_quantiles(np.arange(10.0))
    x = np.array([-100.0, -1.0, 0.0, 9.0, 10.0, 1e6])
    scores = to_scores(x, values, probs, 3.0)
    assert np.all(np.isfinite(scores)) and np.all(np.diff(scores) > 0)
    assert np.allclose(from_scores(scores, values, probs, 3.0), x)


def test_holes_stay_holes_and_constant_columns_stay_constant() -> None:
    x = np.array([[1.5, 4.0], [None, 4.0], [2.5, 4.0], [0.5, None]], dtype=object)
    columns = infer_columns(x, ["a", "b"], transform="quantile")
    assert columns[1].constant and columns[1].quantiles is None
    coded = encode(columns, x)
    assert torch.isnan(coded[1, 0]) and torch.isnan(coded[3, 1])
    back = decode(columns, coded)
    assert np.isnan(back[1, 0]) and np.allclose(back[[0, 2], 0], [1.5, 2.5]) and back[0, 1] == 4.0


def test_standardised_columns_have_no_quantiles() -> None:
    column = infer_columns(np.array([[1.0], [2.0], [4.0]]), None)[0]
    assert column.quantiles is None and column.quantile_probs is None
    assert column.to_dict()["quantiles"] is None  # plain JSON; specs from before load with the default
