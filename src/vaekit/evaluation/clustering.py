"""How well a representation groups by class: clustering scores, a linear probe and a PCA baseline.

Codes are an encoder's deterministic output (e.g. the posterior means), an (N, D) array. Clustering is
scored against the class labels by NMI, ARI and the best one-to-one cluster-to-class accuracy (the
protocol of Xie et al. 2016, "Unsupervised Deep Embedding for Clustering Analysis"); linear separability
by the held-out accuracy of a logistic-regression probe (Alain & Bengio 2016, "Understanding Intermediate
Layers Using Linear Classifier Probes"). :func:`representation_table` puts several representations side
by side, e.g. a VAE's codes against the raw inputs and against :func:`pca_baseline` of the same width.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from numbers import Integral
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vaekit.errors import ConfigError, DataError

Method = Literal["kmeans", "gmm"]

N_INIT = 10  # restarts for both methods; the run of best objective (inertia / likelihood) is kept
PROBE_C = 1.0  # inverse L2 strength against the *summed* log-loss: the penalty fades as N grows
PROBE_MAX_ITER = 2_000  # lbfgs steps; standardised 60,000 x 784 Fashion-MNIST pixels converge in ~900


def clustering_accuracy(labels: np.ndarray, assigned: np.ndarray) -> float:
    """Accuracy of the best one-to-one matching of clusters to classes.

    ``max_m (1/N) sum_i 1[labels_i = m(assigned_i)]`` over injective maps ``m`` (Xie et al. 2016, eq. 10),
    solved by the Hungarian algorithm on the (classes, clusters) contingency table. Cluster and class
    values are arbitrary: only the partition matters. When clusters outnumber classes the unmatched
    clusters count as wrong; when classes outnumber clusters the unmatched classes do.

    Parameters
    ----------
    labels : (N,) true classes, any sortable values.
    assigned : (N,) cluster of each point, any sortable values.

    Returns
    -------
    The matched fraction, in ``(0, 1]``.
    """
    labels, assigned = _check_labels(labels, "labels"), _check_labels(assigned, "assigned")
    _check_same_length(labels=labels, assigned=assigned)
    table = contingency_matrix(labels, assigned)  # (classes, clusters)
    rows, columns = linear_sum_assignment(table, maximize=True)
    return float(table[rows, columns].sum() / len(labels))


FULL_COVARIANCE_MAX_DIM = 64  # up to here a mixture gets full covariances; wider inputs (pixels) diagonal ones


def _kmeans(n_clusters: int, seed: int, dim: int) -> KMeans:
    return KMeans(n_clusters=n_clusters, n_init=N_INIT, random_state=seed)


def _gmm(n_clusters: int, seed: int, dim: int) -> GaussianMixture:
    # Full covariances for codes: a VAE's units are correlated across the data set and some are
    # heavy-tailed, and axis-aligned (diagonal) components split them along the wrong directions (on a
    # conv VAE's 15 active Fashion-MNIST units, NMI 0.10 diagonal vs 0.63 full). Raw pixels (D = 784)
    # keep diagonal ones: full ones cost O(N K D^2) per EM step and are singular on constant pixels.
    kind = "full" if dim <= FULL_COVARIANCE_MAX_DIM else "diag"
    return GaussianMixture(n_components=n_clusters, covariance_type=kind, reg_covar=1e-3 if kind == "full" else 1e-6,
                           n_init=N_INIT, random_state=seed)


_CLUSTERERS: dict[str, Callable[[int, int, int], KMeans | GaussianMixture]] = {"kmeans": _kmeans, "gmm": _gmm}


def cluster(codes: np.ndarray, n_clusters: int, method: Method = "kmeans", seed: int = 0) -> np.ndarray:
    """Partition codes into ``n_clusters`` groups.

    ``"kmeans"``: Lloyd's k-means from k-means++ seeds (Arthur & Vassilvitskii 2007), best of
    ``N_INIT`` runs by inertia. ``"gmm"``: a Gaussian mixture fitted by EM (Dempster et al. 1977) from a
    k-means start, best of ``N_INIT`` runs by likelihood; each point goes to its most probable component.
    Covariances are full up to ``FULL_COVARIANCE_MAX_DIM`` dimensions (codes) and diagonal above (pixels).

    Parameters
    ----------
    codes : (N, D) finite array.
    n_clusters : number of groups, ``2 <= n_clusters <= N``.
    method : ``"kmeans"`` or ``"gmm"``.
    seed : seeds every restart, so equal seeds give equal assignments.

    Returns
    -------
    (N,) int64 array of cluster indices in ``[0, n_clusters)``.
    """
    build = _check_method(method)
    codes = _check_codes(codes, "codes")
    _check_integer("n_clusters", n_clusters, 2, len(codes), "the number of codes")
    return build(int(n_clusters), seed, codes.shape[1]).fit_predict(codes).astype(np.int64)  # (N,)


def cluster_scores(
    codes: np.ndarray,
    labels: np.ndarray,
    n_clusters: int | None = None,
    method: Method = "kmeans",
    seed: int = 0,
) -> dict[str, float]:
    """Cluster the codes and score the partition against the class labels.

    NMI (Strehl & Ghosh 2002, arithmetic-mean normalisation) and ARI (Hubert & Arabie 1985) are 0 for a
    partition independent of the labels and 1 for a perfect one; ACC (:func:`clustering_accuracy`) is
    1 when perfect but sits near ``1/K`` (a little above, from the matching) at chance.

    Parameters
    ----------
    codes : (N, D) finite array.
    labels : (N,) classes, at least 2 distinct.
    n_clusters : number of clusters; defaults to the number of distinct labels.
    method : ``"kmeans"`` or ``"gmm"``, see :func:`cluster`.
    seed : seeds the clustering.

    Returns
    -------
    ``{"nmi", "ari", "acc"}``.
    """
    _check_method(method)
    codes = _check_codes(codes, "codes")
    labels = _check_classes(labels, "labels")
    _check_same_length(codes=codes, labels=labels)
    if n_clusters is None:
        n_clusters = len(np.unique(labels))
    assigned = cluster(codes, n_clusters, method=method, seed=seed)  # (N,)
    return {
        "nmi": float(normalized_mutual_info_score(labels, assigned)),
        "ari": float(adjusted_rand_score(labels, assigned)),
        "acc": clustering_accuracy(labels, assigned),
    }


def linear_probe(
    train_codes: np.ndarray,
    train_labels: np.ndarray,
    test_codes: np.ndarray,
    test_labels: np.ndarray,
    seed: int = 0,
) -> float:
    """Held-out accuracy of a linear classifier on the codes (Alain & Bengio 2016).

    Each feature is standardised with the training mean and standard deviation, then a multinomial
    logistic regression is fitted by lbfgs, minimising the summed log-loss plus ``||W||^2 / (2 C)`` with
    ``C = PROBE_C = 1``: an L2 penalty that barely matters at tens of thousands of rows and keeps the
    weights finite when the classes are separable. Standardising puts every representation on the same
    footing for that penalty, whatever its scale.

    Parameters
    ----------
    train_codes : (N, D) finite array the probe is fitted on.
    train_labels : (N,) classes, at least 2 distinct.
    test_codes : (M, D) finite array the probe is scored on.
    test_labels : (M,) classes; a class unseen in training is always wrong.
    seed : the classifier's ``random_state``. The lbfgs fit is deterministic, so today the result does not
        depend on it; it is passed on so that the probe stays reproducible whatever the solver.

    Returns
    -------
    Fraction of test rows classified correctly; chance is the largest class share.
    """
    train_codes, test_codes = _check_codes(train_codes, "train_codes"), _check_codes(test_codes, "test_codes")
    train_labels, test_labels = _check_classes(train_labels, "train_labels"), _check_labels(test_labels, "test_labels")
    _check_same_length(train_codes=train_codes, train_labels=train_labels)
    _check_same_length(test_codes=test_codes, test_labels=test_labels)
    _check_same_width(train_codes=train_codes, test_codes=test_codes)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=PROBE_C, max_iter=PROBE_MAX_ITER, random_state=seed))
    probe.fit(train_codes, train_labels)
    return float(probe.score(test_codes, test_labels))


def pca_baseline(
    train_x: np.ndarray, test_x: np.ndarray, n_components: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Principal-component codes of the inputs, the linear baseline for a latent space of the same width.

    Inputs of any shape (N, ...) are flattened to (N, F). PCA (Pearson 1901; sklearn's solver choice,
    randomised SVD for wide data, Halko et al. 2011) is fitted on the training rows only, so the test
    codes see no test statistics, just as an encoder trained on the training split would.

    Parameters
    ----------
    train_x : (N, ...) finite array the components are fitted on.
    test_x : (M, ...) finite array with the same trailing size F as ``train_x``.
    n_components : code width, ``1 <= n_components <= min(N, F)``; pass the VAE's latent size.
    seed : seeds the randomised SVD.

    Returns
    -------
    ``(train_codes, test_codes)``, (N, n_components) and (M, n_components).
    """
    train_flat, test_flat = _flatten(train_x, "train_x"), _flatten(test_x, "test_x")  # (N, F), (M, F)
    _check_same_width(train_x=train_flat, test_x=test_flat)
    _check_integer("n_components", n_components, 1, min(train_flat.shape), "the smaller of rows and features")
    pca = PCA(n_components=int(n_components), random_state=seed).fit(train_flat)
    return pca.transform(train_flat), pca.transform(test_flat)  # (N, k), (M, k)


def representation_table(
    representations: Mapping[str, tuple[np.ndarray, np.ndarray]],
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    n_clusters: int | None = None,
    methods: Sequence[Method] = ("kmeans",),
    seed: int = 0,
) -> list[dict[str, str | int | float]]:
    """Clustering scores and linear-probe accuracy of several representations of the same data.

    Each representation is clustered on its test codes with every method (:func:`cluster_scores`) and
    probed by a classifier fitted on its train codes (:func:`linear_probe`). Baselines are representations
    like any other: pass the raw inputs flattened, and ``pca_baseline(train_x, test_x, latent_dim)``.

    Parameters
    ----------
    representations : name -> ``(train_codes, test_codes)``, (N, D_name) and (M, D_name), rows aligned
        with the labels.
    train_labels : (N,) classes for the probe.
    test_labels : (M,) classes for the clustering scores and the probe's accuracy.
    n_clusters : clusters per method; defaults to the number of distinct test labels.
    methods : clustering methods, each ``"kmeans"`` or ``"gmm"``.
    seed : seeds every clustering and probe.

    Returns
    -------
    One row per representation, in the mapping's order: ``{"representation": name, "dim": D_name,
    "<method>_nmi", "<method>_ari", "<method>_acc" for each method, "probe_acc"}``.
    """
    if isinstance(methods, str):
        raise ConfigError(f"methods must be a sequence of method names such as ('kmeans',), got {methods!r}")
    for method in methods:
        _check_method(method)
    if not representations:
        raise DataError("representations is empty; expected at least one name -> (train_codes, test_codes)")
    rows: list[dict[str, str | int | float]] = []
    for name, (train_codes, test_codes) in representations.items():
        test_codes = _check_codes(test_codes, f"test codes of {name!r}")
        row: dict[str, str | int | float] = {"representation": name, "dim": test_codes.shape[1]}
        for method in methods:
            scores = cluster_scores(test_codes, test_labels, n_clusters=n_clusters, method=method, seed=seed)
            row.update({f"{method}_{score}": value for score, value in scores.items()})
        row["probe_acc"] = linear_probe(train_codes, train_labels, test_codes, test_labels, seed=seed)
        rows.append(row)
    return rows


def _check_method(method: str) -> Callable[[int, int, int], KMeans | GaussianMixture]:
    if method not in _CLUSTERERS:
        raise ConfigError(f"method must be one of {sorted(_CLUSTERERS)}, got {method!r}")
    return _CLUSTERERS[method]


def _check_codes(codes: np.ndarray, name: str) -> np.ndarray:
    """Return ``codes`` as a floating (N, D) array with N, D >= 1 and every value finite."""
    try:
        codes = np.asarray(codes)
        if not np.issubdtype(codes.dtype, np.floating):
            codes = codes.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise DataError(f"{name} must be a numeric (N, D) array: {error}") from None
    if codes.ndim != 2 or 0 in codes.shape:
        raise DataError(f"{name} must be a non-empty 2-D (N, D) array, got shape {codes.shape}")
    if not np.isfinite(codes).all():
        raise DataError(f"{name} has NaN or inf values; expected finite values (check the encoder's output)")
    return codes


def _flatten(inputs: np.ndarray, name: str) -> np.ndarray:
    """Return inputs (N, ...) as a checked (N, F) array."""
    inputs = np.asarray(inputs)
    if inputs.ndim < 2:
        raise DataError(f"{name} must be an (N, ...) array with at least 2 dimensions, got shape {inputs.shape}")
    return _check_codes(inputs.reshape(len(inputs), -1), name)  # (N, F)


def _check_labels(labels: np.ndarray, name: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise DataError(f"{name} must be a non-empty 1-D (N,) array, got shape {labels.shape}")
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise DataError(f"{name} has NaN or inf values; expected one finite class value per row")
    return labels


def _check_classes(labels: np.ndarray, name: str) -> np.ndarray:
    labels = _check_labels(labels, name)
    n_classes = len(np.unique(labels))
    if n_classes < 2:
        raise DataError(f"{name} must contain at least 2 classes, got {n_classes}")
    return labels


def _check_integer(name: str, value: int, low: int, high: int, high_is: str) -> None:
    if not isinstance(value, Integral) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer in [{low}, {high}] ({high}: {high_is}), got {value!r}")


def _check_same_length(**arrays: np.ndarray) -> None:
    (first, a), (second, b) = arrays.items()
    if len(a) != len(b):
        raise DataError(f"{first} and {second} must have the same number of rows, got {len(a)} and {len(b)}")


def _check_same_width(**arrays: np.ndarray) -> None:
    (first, a), (second, b) = arrays.items()
    if a.shape[1] != b.shape[1]:
        raise DataError(f"{first} and {second} must have the same number of columns, got {a.shape[1]} and {b.shape[1]}")
