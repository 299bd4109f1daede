"""Sample quality from feature arrays: FID, KID, and improved precision and recall.

Every metric compares real features (N, D) with features of generated samples (M, D), both produced by
the same feature network (e.g. Inception-v3 pool3 for images); extracting them is the caller's job, and
:class:`QualityReport` records which network was used, since the numbers mean nothing without it.
Inputs may be numpy arrays or torch tensors; all arithmetic is in float64 numpy.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from vaekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

Features = np.ndarray | torch.Tensor  # (N, D)


@dataclass
class QualityReport:
    """All sample-quality metrics of one comparison, with the feature network that makes them comparable."""

    fid: float
    kid_mean: float
    kid_std: float  # spread over KID's random subsets, not a standard error of the estimate
    precision: float
    recall: float
    n_real: int
    n_fake: int
    features: str  # the feature network, e.g. "inception-v3 pool3 (2048)": FIDs on other features differ

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def frechet_distance(real: Features, fake: Features) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets: FID on Inception features.

    Heusel et al. (2017), "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
    Equilibrium", eq. (6): ``||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^{1/2})``, with unbiased
    (``N - 1``) sample covariances as in the reference implementation.

    The trace of the matrix square root is taken through symmetric eigendecompositions instead of
    ``scipy.linalg.sqrtm(S_r @ S_f)``: ``S_r S_f`` is similar to the symmetric positive semi-definite
    ``A = S_r^{1/2} S_f S_r^{1/2}``, so ``Tr((S_r S_f)^{1/2})`` is the sum of the square roots of A's
    eigenvalues. ``eigh`` returns real eigenvalues even for singular covariances (fewer samples than
    dimensions), where ``sqrtm`` of the non-symmetric product returns complex parts and can fail to
    converge; eigenvalues that rounding pushes below zero are clipped to 0.

    Parameters
    ----------
    real : (N, D) features of real data, N >= 2.
    fake : (M, D) features of generated samples, M >= 2.

    Returns
    -------
    The squared Fréchet (Wasserstein-2) distance, >= 0; symmetric in its arguments.
    """
    real, fake = _check_pair(real, fake)
    mean_real, cov_real = real.mean(axis=0), _covariance(real)  # (D,), (D, D)
    mean_fake, cov_fake = fake.mean(axis=0), _covariance(fake)
    root_real = _psd_sqrt(cov_real)  # (D, D)
    inner = root_real @ cov_fake @ root_real  # (D, D), symmetric PSD up to rounding
    eigenvalues = np.linalg.eigvalsh((inner + inner.T) / 2)  # (D,)
    trace_sqrt = np.sqrt(_psd_eigenvalues(eigenvalues)).sum()
    distance = np.sum((mean_real - mean_fake) ** 2) + np.trace(cov_real) + np.trace(cov_fake) - 2 * trace_sqrt
    # A squared distance: anything below zero is rounding (identical sets give about -1e-12).
    return max(float(distance), 0.0)


def kernel_inception_distance(
    real: Features, fake: Features, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD^2 with a cubic polynomial kernel, averaged over subsets.

    Bińkowski et al. (2018), "Demystifying MMD GANs", section 5: ``k(x, y) = (x . y / D + 1)^3`` and the
    unbiased estimator (Gretton et al. 2012, eq. 3)
    ``MMD^2 = sum_{i!=j} k(x_i, x_j) / (m(m-1)) + sum_{i!=j} k(y_i, y_j) / (m(m-1)) - 2 sum_{i,j} k(x_i, y_j) / m^2``
    on ``subsets`` pairs of random subsets of ``m`` real and ``m`` generated features, drawn without
    replacement. Being unbiased, the estimate is centred on 0 for equal distributions and so can be
    slightly negative; it is not clipped.

    Parameters
    ----------
    real : (N, D) features of real data, N >= 2.
    fake : (M, D) features of generated samples, M >= 2.
    subsets : number of subset pairs (100 in the reference implementation).
    subset_size : m, at least 2 (the within-set sums need two points), clipped to ``min(N, M)`` (1000 in
        the reference implementation).
    seed : seeds the subset draws.

    Returns
    -------
    ``(mean, std)`` of MMD^2 over the subsets (std with ``ddof=0``; 0 for a single subset).
    """
    real, fake = _check_pair(real, fake)
    _check_positive(subsets=subsets, subset_size=subset_size)
    if subset_size < 2:
        raise ConfigError(f"subset_size must be at least 2 (the estimate divides by m(m-1)), got {subset_size!r}")
    size = min(subset_size, len(real), len(fake))
    dim = real.shape[1]
    rng = np.random.default_rng(seed)
    estimates = np.empty(subsets)  # (subsets,)
    for s in range(subsets):
        x = real[rng.choice(len(real), size, replace=False)]  # (m, D)
        y = fake[rng.choice(len(fake), size, replace=False)]  # (m, D)
        k_xx = (x @ x.T / dim + 1) ** 3  # (m, m)
        k_yy = (y @ y.T / dim + 1) ** 3  # (m, m)
        k_xy = (x @ y.T / dim + 1) ** 3  # (m, m)
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (size * (size - 1))
        estimates[s] = within - 2 * k_xy.mean()
    return float(estimates.mean()), float(estimates.std())


def precision_recall(real: Features, fake: Features, k: int = 3, batch_size: int = 1000) -> tuple[float, float]:
    """Improved precision and recall of a generative model from k-nearest-neighbour manifolds.

    Kynkäänniemi et al. (2019), "Improved Precision and Recall Metric for Assessing Generative Models",
    eqs. (1)-(3): a set's manifold is the union of balls around its points, each of radius the distance to
    the point's k-th nearest neighbour in the same set (the point itself excluded). Precision is the
    fraction of generated features inside the real manifold (within the radius of at least one real
    point); recall is the fraction of real features inside the generated manifold.

    Distances are computed ``batch_size`` rows at a time, so memory grows as ``batch_size * max(N, M)``
    rather than ``N * M``: a few float64 blocks of 80 MB each for 10,000 points at the default.

    Parameters
    ----------
    real : (N, D) features of real data, N > k.
    fake : (M, D) features of generated samples, M > k.
    k : neighbour that sets each radius (3 in the paper).
    batch_size : rows of each block of pairwise distances.

    Returns
    -------
    ``(precision, recall)``, each in [0, 1].
    """
    real, fake = _check_pair(real, fake)
    _check_positive(k=k, batch_size=batch_size)
    for name, features in (("real", real), ("fake", fake)):
        if len(features) <= k:
            raise DataError(
                f"{name} features: precision_recall with k={k} needs more than {k} samples, got {len(features)}"
            )
    radii_real = _knn_radii_squared(real, k, batch_size)  # (N,)
    radii_fake = _knn_radii_squared(fake, k, batch_size)  # (M,)
    precision = _inside_manifold(fake, real, radii_real, batch_size).mean()
    recall = _inside_manifold(real, fake, radii_fake, batch_size).mean()
    return float(precision), float(recall)


DEAD_SHARE = 0.5  # share of feature dimensions constant on the real items above which FID tells little apart


def feature_warnings(real: Features, what: str = "FID") -> list[str]:
    """What makes a Fréchet distance on these real features untrustworthy, one line each: fewer real
    items than feature dimensions (a singular covariance), or a feature network whose features mostly
    never vary on the real items (a collapsed classifier gives every image the same features, and the
    distance is near 0 whatever the images)."""
    real = _as_features("real", real)
    n, dim = real.shape
    lines = []
    if n <= dim:
        lines.append(f"{what} from {n} real items in {dim} feature dimensions: the covariance is singular and the "
                     f"distance unreliable; score more than {dim} items")
    dead = int((real.std(axis=0) < 1e-6).sum())
    if dead >= DEAD_SHARE * dim:
        lines.append(f"{what}: {dead} of the feature network's {dim} features never vary on the real items, so it "
                     "tells images apart poorly and a small distance means little; give a better extractor "
                     "(--features) or more labelled training images for the default classifier")
    return lines


def sample_quality(real: Features, fake: Features, features: str, k: int = 3, seed: int = 0) -> QualityReport:
    """FID, KID and improved precision and recall of generated features against real ones.

    Each metric is computed by its own function with its default settings (KID: 100 subsets of up to
    1000); see :func:`frechet_distance`, :func:`kernel_inception_distance` and :func:`precision_recall`.

    Parameters
    ----------
    real : (N, D) features of real data.
    fake : (M, D) features of generated samples, from the same feature network.
    features : the feature network that produced both arrays, recorded in the report.
    k : neighbour count of precision and recall.
    seed : seeds KID's subset draws.

    Returns
    -------
    A :class:`QualityReport`.
    """
    if not isinstance(features, str) or not features.strip():
        raise ConfigError(f"features must name the feature network that made the arrays, got {features!r}")
    real, fake = _check_pair(real, fake)
    for line in feature_warnings(real):
        log.warning("%s", line)
    kid_mean, kid_std = kernel_inception_distance(real, fake, seed=seed)
    precision, recall = precision_recall(real, fake, k=k)
    return QualityReport(
        fid=frechet_distance(real, fake),
        kid_mean=kid_mean,
        kid_std=kid_std,
        precision=precision,
        recall=recall,
        n_real=len(real),
        n_fake=len(fake),
        features=features,
    )


def _check_pair(real: Features, fake: Features) -> tuple[np.ndarray, np.ndarray]:
    real, fake = _as_features("real", real), _as_features("fake", fake)
    if real.shape[1] != fake.shape[1]:
        raise DataError(
            f"real and fake features must have the same dimension D, got {real.shape[1]} "
            f"and {fake.shape[1]}; extract both with the same feature network"
        )
    return real, fake


def _as_features(name: str, values: Features) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{name} features must be a real-valued numeric array, got dtype {array.dtype}")
    if array.ndim != 2:
        raise DataError(f"{name} features must be a 2-D (samples, dimensions) array, got shape {array.shape}")
    if len(array) < 2 or array.shape[1] < 1:
        raise DataError(f"{name} features need at least 2 samples of at least 1 dimension, got shape {array.shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise DataError(f"{name} features contain NaN or infinite values; all must be finite")
    return array


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        try:
            whole = int(value) == value
        except (TypeError, ValueError, OverflowError):  # None, a string, NaN or inf
            whole = False
        if isinstance(value, bool) or not whole or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _covariance(features: np.ndarray) -> np.ndarray:
    centred = features - features.mean(axis=0)  # (N, D)
    return centred.T @ centred / (len(features) - 1)  # (D, D)


def _psd_eigenvalues(values: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with rounding noise (below D * eps * the largest) set to 0: a square
    root would blow noise of 1e-16 up to 1e-8, and a covariance of fewer samples than dimensions has
    hundreds of such zeros (a set against itself then gives about 1e-14 instead of 1e-6)."""
    return np.where(values > values.max(initial=0.0) * len(values) * np.finfo(values.dtype).eps, values, 0.0)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)  # (D,), (D, D)
    return (eigenvectors * np.sqrt(_psd_eigenvalues(eigenvalues))) @ eigenvectors.T  # (D, D)


def _squared_distances(queries: np.ndarray, points: np.ndarray) -> np.ndarray:
    squared = (queries**2).sum(axis=1)[:, None] + (points**2).sum(axis=1)[None, :] - 2 * queries @ points.T  # (B, N)
    return np.clip(squared, 0.0, None)  # cancellation can leave tiny negatives


def _knn_radii_squared(points: np.ndarray, k: int, batch_size: int) -> np.ndarray:
    radii = np.empty(len(points))  # (N,)
    for start in range(0, len(points), batch_size):
        block = _squared_distances(points[start : start + batch_size], points)  # (B, N)
        # Index k of the sorted row: index 0 is the point itself (distance 0), so this is the k-th neighbour.
        radii[start : start + batch_size] = np.partition(block, k, axis=1)[:, k]
    return radii


def _inside_manifold(queries: np.ndarray, points: np.ndarray, radii_squared: np.ndarray, batch_size: int) -> np.ndarray:
    inside = np.empty(len(queries), dtype=bool)  # (Q,)
    for start in range(0, len(queries), batch_size):
        block = _squared_distances(queries[start : start + batch_size], points)  # (B, N)
        inside[start : start + batch_size] = (block <= radii_squared[None, :]).any(axis=1)
    return inside
