"""Sample-quality metrics on feature arrays: FID against closed forms and scipy, KID near 0 for equal
distributions and unbiased, precision/recall on identical, disjoint and mode-dropping sets, and bad input
raising DataError."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch

from vaekit.errors import ConfigError, DataError
from vaekit.evaluation.quality import (
    QualityReport,
    frechet_distance,
    kernel_inception_distance,
    precision_recall,
    sample_quality,
)


def whitened(n: int, dim: int, seed: int) -> np.ndarray:
    """Gaussian draws transformed so that the sample mean is exactly 0 and the sample covariance exactly I."""
    draws = np.random.default_rng(seed).standard_normal((n, dim))  # (n, D)
    centred = draws - draws.mean(axis=0)
    cholesky = np.linalg.cholesky(np.cov(centred, rowvar=False))  # (D, D)
    return np.linalg.solve(cholesky, centred.T).T  # (n, D)


def fid_with_sqrtm(real: np.ndarray, fake: np.ndarray) -> float:
    """The textbook computation (as in pytorch-fid): scipy's sqrtm of the covariance product."""
    cov_real, cov_fake = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = scipy.linalg.sqrtm(cov_real @ cov_fake).real
    shift = real.mean(axis=0) - fake.mean(axis=0)
    return float(shift @ shift + np.trace(cov_real + cov_fake - 2 * root))


def mmd_unbiased_by_loops(x: np.ndarray, y: np.ndarray) -> float:
    """Bińkowski et al.'s unbiased MMD^2 with the cubic kernel, written out pair by pair."""
    m, dim = len(x), x.shape[1]

    def kernel(a: np.ndarray, b: np.ndarray) -> float:
        return (a @ b / dim + 1) ** 3

    within = sum(kernel(x[i], x[j]) + kernel(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    across = sum(kernel(x[i], y[j]) for i in range(m) for j in range(m))
    return within / (m * (m - 1)) - 2 * across / m**2


def precision_recall_brute_force(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Kynkäänniemi et al.'s definition with full distance matrices and sorted rows."""

    def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))  # (A, B)

    radius_real = np.sort(distances(real, real), axis=1)[:, k]  # (N,)
    radius_fake = np.sort(distances(fake, fake), axis=1)[:, k]  # (M,)
    precision = (distances(fake, real) <= radius_real[None, :]).any(axis=1).mean()
    recall = (distances(real, fake) <= radius_fake[None, :]).any(axis=1).mean()
    return float(precision), float(recall)


# ---------------------------------------------------------------- FID
def test_fid_of_a_set_with_itself_is_zero() -> None:
    features = np.random.default_rng(0).standard_normal((300, 16))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)


def test_fid_with_identity_covariances_is_the_squared_shift() -> None:
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    real, fake = whitened(200, 5, seed=1), whitened(250, 5, seed=2) + shift
    assert frechet_distance(real, fake) == pytest.approx(shift @ shift, rel=1e-9)


def test_fid_with_diagonal_covariances_matches_the_closed_form() -> None:
    mean_real, mean_fake = np.array([0.0, 1.0, -1.0, 2.0]), np.array([1.0, 1.0, 0.0, -2.0])
    std_real, std_fake = np.array([1.0, 2.0, 0.5, 3.0]), np.array([2.0, 1.0, 0.5, 1.0])
    real = whitened(400, 4, seed=3) * std_real + mean_real
    fake = whitened(300, 4, seed=4) * std_fake + mean_fake
    # For commuting covariances Tr(S_r + S_f - 2 (S_r S_f)^{1/2}) = sum (sigma_r - sigma_f)^2.
    expected = np.sum((mean_real - mean_fake) ** 2) + np.sum((std_real - std_fake) ** 2)
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-9)


def test_fid_matches_scipy_sqrtm_on_correlated_data() -> None:
    rng = np.random.default_rng(5)
    real = rng.standard_normal((500, 12)) @ rng.standard_normal((12, 12))  # (500, 12), full covariance
    fake = rng.standard_normal((400, 12)) @ rng.standard_normal((12, 12)) + 0.3
    assert frechet_distance(real, fake) == pytest.approx(fid_with_sqrtm(real, fake), rel=1e-8)


def test_fid_is_symmetric_and_grows_with_the_shift() -> None:
    rng = np.random.default_rng(6)
    real, fake = rng.standard_normal((300, 8)), rng.standard_normal((300, 8)) * 1.5
    assert frechet_distance(real, fake) == pytest.approx(frechet_distance(fake, real), rel=1e-9)
    distances = [frechet_distance(real, fake + shift) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert all(near < far for near, far in zip(distances, distances[1:], strict=False))


def test_fid_is_real_and_finite_with_more_dimensions_than_samples() -> None:
    rng = np.random.default_rng(7)
    real, fake = rng.standard_normal((20, 64)), rng.standard_normal((30, 64))  # singular covariances
    distance = frechet_distance(real, fake)
    assert isinstance(distance, float)
    assert np.isfinite(distance) and distance > 0


def test_fid_accepts_torch_tensors_of_any_float_dtype() -> None:
    rng = np.random.default_rng(8)
    real, fake = rng.standard_normal((100, 6)), rng.standard_normal((100, 6)) + 1
    expected = frechet_distance(real, fake)
    assert frechet_distance(torch.from_numpy(real), torch.from_numpy(fake)) == pytest.approx(expected, rel=1e-12)
    as_float32 = frechet_distance(torch.from_numpy(real).float(), fake.astype(np.float32))
    assert as_float32 == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------- KID
def test_kid_is_near_zero_for_one_distribution_and_large_for_shifted_ones() -> None:
    rng = np.random.default_rng(9)
    real, same, shifted = (rng.standard_normal((400, 8)) for _ in range(3))
    mean_same, _ = kernel_inception_distance(real, same, subsets=10, subset_size=200)
    mean_near, _ = kernel_inception_distance(real, shifted + 0.5, subsets=10, subset_size=200)
    mean_far, std_far = kernel_inception_distance(real, shifted + 1.0, subsets=10, subset_size=200)
    assert abs(mean_same) < 0.05
    assert 0.5 < mean_near < mean_far
    assert mean_far > 10 * std_far


def test_kid_is_unbiased_so_equal_distributions_can_score_below_zero() -> None:
    means = []
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        real, fake = rng.standard_normal((300, 8)), rng.standard_normal((300, 8))
        means.append(kernel_inception_distance(real, fake, subsets=5, subset_size=150, seed=seed)[0])
    assert min(means) < 0 < max(means)  # a clipped or biased (V-statistic) estimator stays above 0
    assert abs(np.mean(means)) < 0.02


def test_kid_matches_the_pairwise_definition() -> None:
    rng = np.random.default_rng(10)
    real, fake = rng.standard_normal((7, 3)), rng.standard_normal((7, 3)) + 0.4
    # One subset of all the points: only their order is random, and MMD^2 does not depend on it.
    mean, std = kernel_inception_distance(real, fake, subsets=1, subset_size=7)
    assert mean == pytest.approx(mmd_unbiased_by_loops(real, fake), rel=1e-10)
    assert std == 0.0


def test_kid_is_seeded_and_clips_the_subset_size() -> None:
    rng = np.random.default_rng(11)
    real, fake = rng.standard_normal((60, 4)), rng.standard_normal((40, 4)) + 0.2
    first = kernel_inception_distance(real, fake, subsets=4, subset_size=20, seed=3)
    assert kernel_inception_distance(real, fake, subsets=4, subset_size=20, seed=3) == first
    assert kernel_inception_distance(real, fake, subsets=4, subset_size=20, seed=4) != first
    clipped = kernel_inception_distance(real, fake, subsets=4, subset_size=10_000, seed=3)  # m = 40
    assert np.isfinite(clipped).all()


# ---------------------------------------------------------------- precision and recall
def test_identical_sets_have_full_precision_and_recall() -> None:
    features = np.random.default_rng(12).standard_normal((200, 5))
    assert precision_recall(features, features.copy()) == (1.0, 1.0)


def test_far_apart_sets_have_zero_precision_and_recall() -> None:
    features = np.random.default_rng(13).standard_normal((200, 5))
    assert precision_recall(features, features + 100.0) == (0.0, 0.0)


def test_dropping_one_of_two_modes_keeps_precision_and_halves_recall() -> None:
    rng = np.random.default_rng(14)
    left, right = np.array([-10.0, 0.0]), np.array([10.0, 0.0])
    real = np.concatenate([rng.standard_normal((300, 2)) + left, rng.standard_normal((300, 2)) + right])
    fake = rng.standard_normal((300, 2)) + right  # only the right mode
    precision, recall = precision_recall(real, fake, k=3)
    assert precision > 0.95
    assert 0.45 < recall <= 0.5  # the left half of the real points can never be covered


def test_precision_recall_matches_brute_force_and_does_not_depend_on_the_batch_size() -> None:
    rng = np.random.default_rng(15)
    real, fake = rng.standard_normal((150, 4)), 1.5 * rng.standard_normal((120, 4)) + 1.5
    expected = precision_recall_brute_force(real, fake, k=4)
    assert 0.1 < expected[0] < 0.9 and 0.1 < expected[1] < 0.9  # a case where the manifolds overlap partly
    assert precision_recall(real, fake, k=4) == pytest.approx(expected, abs=1e-12)
    assert precision_recall(real, fake, k=4, batch_size=7) == pytest.approx(expected, abs=1e-12)


def test_a_point_on_the_boundary_of_a_ball_is_inside() -> None:
    real, fake = np.arange(4.0)[:, None], np.arange(4.0, 8.0)[:, None]  # (4, 1): 0..3 and 4..7 on a line
    # With k=1 every radius is 1, so only 4 (1 from the real 3) and 3 (1 from the fake 4) lie in the other set.
    assert precision_recall(real, fake, k=1) == (0.25, 0.25)


# ---------------------------------------------------------------- the report
def test_sample_quality_collects_every_metric_with_the_feature_network() -> None:
    rng = np.random.default_rng(16)
    real, fake = rng.standard_normal((120, 6)), torch.from_numpy(rng.standard_normal((90, 6)) + 0.3)
    report = sample_quality(real, fake, features="toy gaussian (6)", k=3, seed=2)
    assert isinstance(report, QualityReport)
    assert report.fid == pytest.approx(frechet_distance(real, fake))
    assert (report.kid_mean, report.kid_std) == kernel_inception_distance(real, fake, seed=2)
    assert (report.precision, report.recall) == precision_recall(real, fake, k=3)
    assert (report.n_real, report.n_fake, report.features) == (120, 90, "toy gaussian (6)")
    record = json.loads(json.dumps(report.to_dict()))
    assert set(record) == {"fid", "kid_mean", "kid_std", "precision", "recall", "n_real", "n_fake", "features"}


def test_sample_quality_needs_a_feature_network_name() -> None:
    features = np.zeros((5, 2)) + np.arange(5)[:, None]
    with pytest.raises(ConfigError, match="features must name"):
        sample_quality(features, features, features=" ")


# ---------------------------------------------------------------- bad input
METRICS = [frechet_distance, kernel_inception_distance, precision_recall]
GOOD = np.random.default_rng(17).standard_normal((10, 3))
BAD_FAKES = {
    "dimension": (np.zeros((10, 4)), "same dimension D, got 3 and 4"),
    "one sample": (np.zeros((1, 3)), "fake features need at least 2 samples"),
    "1-D": (np.zeros(10), r"fake features must be a 2-D .* got shape \(10,\)"),
    "3-D": (np.zeros((10, 3, 1)), r"fake features must be a 2-D .* got shape \(10, 3, 1\)"),
    "NaN": (np.where(np.eye(10, 3) > 0, np.nan, 0.0), "fake features contain NaN or infinite"),
    "inf": (np.where(np.eye(10, 3) > 0, np.inf, 0.0), "fake features contain NaN or infinite"),
    "strings": (np.full((10, 3), "a"), "fake features must be a real-valued numeric array"),
}


@pytest.mark.parametrize("metric", METRICS, ids=lambda metric: metric.__name__)
@pytest.mark.parametrize("case", BAD_FAKES, ids=str)
def test_bad_features_raise_a_one_line_data_error(metric, case: str) -> None:
    fake, message = BAD_FAKES[case]
    with pytest.raises(DataError, match=message) as caught:
        metric(GOOD, fake)
    assert "\n" not in str(caught.value)


def test_bad_real_features_are_named_as_real() -> None:
    with pytest.raises(DataError, match="real features contain NaN"):
        frechet_distance(torch.full((10, 3), float("nan")), GOOD)


def test_precision_recall_needs_more_samples_than_k() -> None:
    with pytest.raises(DataError, match="fake features: precision_recall with k=3 needs more than 3 samples"):
        precision_recall(GOOD, GOOD[:3], k=3)


@pytest.mark.parametrize(
    ("metric", "setting"),
    [
        (kernel_inception_distance, {"subsets": 0}),
        (kernel_inception_distance, {"subset_size": 1.5}),
        (kernel_inception_distance, {"subsets": None}),
        (precision_recall, {"k": 0}),
        (precision_recall, {"k": float("nan")}),
        (precision_recall, {"batch_size": -1}),
    ],
    ids=["subsets", "subset_size", "subsets-None", "k", "k-NaN", "batch_size"],
)
def test_bad_settings_raise_a_config_error(metric, setting: dict) -> None:
    (name,) = setting
    with pytest.raises(ConfigError, match=f"{name} must be a positive integer"):
        metric(GOOD, GOOD, **setting)


def test_kid_needs_subsets_of_at_least_two() -> None:
    """m = 1 leaves the within-set sums empty: the estimate would be 0 / 0, a silent NaN."""
    with pytest.raises(ConfigError, match="subset_size must be at least 2"):
        kernel_inception_distance(GOOD, GOOD, subset_size=1)


def test_untrustworthy_features_are_said() -> None:
    from vaekit.evaluation.quality import feature_warnings

    rng = np.random.default_rng(0)
    assert feature_warnings(rng.normal(size=(200, 8))) == []
    few = feature_warnings(rng.normal(size=(6, 8)))
    assert len(few) == 1 and "from 6 real items in 8 feature dimensions: the covariance is singular" in few[0]
    dead = np.zeros((200, 8))
    dead[:, :2] = rng.normal(size=(200, 2))
    lines = feature_warnings(dead, "rFID")
    assert len(lines) == 1 and lines[0].startswith("rFID: 6 of the feature network's 8 features never vary")
