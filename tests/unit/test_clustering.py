"""Clustering scores, linear probe and PCA baseline: exact matching accuracy, well-separated blobs score
near 1, labels independent of the codes score near chance, PCA is fitted on train only, seeds repeat, and
bad input raises the promised error."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA

from vaekit.errors import ConfigError, DataError
from vaekit.evaluation.clustering import (
    cluster,
    cluster_scores,
    clustering_accuracy,
    linear_probe,
    pca_baseline,
    representation_table,
)

N_BLOBS, PER_BLOB, DIM = 4, 200, 5


def blobs(seed: int = 0, spread: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Four Gaussian blobs in 5-D, centres 10 out along distinct axes (14 apart), shuffled: (800, 5), (800,)."""
    rng = np.random.default_rng(seed)
    centres = 10.0 * np.eye(N_BLOBS, DIM)  # (K, D)
    labels = np.repeat(np.arange(N_BLOBS), PER_BLOB)  # (N,)
    codes = centres[labels] + spread * rng.standard_normal((len(labels), DIM))  # (N, D)
    order = rng.permutation(len(labels))
    return codes[order], labels[order]


@pytest.fixture(scope="module")
def train() -> tuple[np.ndarray, np.ndarray]:
    return blobs(seed=0)


@pytest.fixture(scope="module")
def test() -> tuple[np.ndarray, np.ndarray]:
    return blobs(seed=1)


def test_accuracy_of_a_relabelled_partition_is_one() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    assert clustering_accuracy(labels, np.array([5, 5, 3, 3, 9, 9, 9])) == 1.0
    assert clustering_accuracy(np.array(["cat", "cat", "dog"]), np.array([1, 1, 0])) == 1.0


def test_accuracy_takes_the_best_matching_not_the_greedy_one() -> None:
    # Contingency (classes x clusters) = [[3, 2], [3, 0]]: greedily giving cluster 0 to class 0 scores 3/8,
    # the best matching (class 1 -> cluster 0, class 0 -> cluster 1) scores 5/8.
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    assigned = np.array([0, 0, 0, 1, 1, 0, 0, 0])
    assert clustering_accuracy(labels, assigned) == pytest.approx(5 / 8)


def test_accuracy_counts_unmatched_clusters_and_classes_as_wrong() -> None:
    labels = np.array([0, 0, 1, 1])
    assert clustering_accuracy(labels, np.array([0, 1, 2, 2])) == pytest.approx(3 / 4)  # one split class
    assert clustering_accuracy(labels, np.arange(4)) == pytest.approx(2 / 4)  # a cluster per point
    assert clustering_accuracy(np.array([0, 1, 2]), np.array([0, 0, 0])) == pytest.approx(1 / 3)  # one cluster


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_well_separated_blobs_are_recovered(train: tuple[np.ndarray, np.ndarray], method: str) -> None:
    codes, labels = train
    scores = cluster_scores(codes, labels, method=method)
    assert set(scores) == {"nmi", "ari", "acc"}
    assert min(scores.values()) > 0.95, scores


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_labels_independent_of_the_codes_score_near_chance(train: tuple[np.ndarray, np.ndarray], method: str) -> None:
    codes, _ = train
    random_labels = np.random.default_rng(2).integers(N_BLOBS, size=len(codes))  # (N,)
    scores = cluster_scores(codes, random_labels, method=method)
    assert scores["nmi"] < 0.02, scores
    assert abs(scores["ari"]) < 0.02, scores
    assert 1 / N_BLOBS - 0.01 < scores["acc"] < 1 / N_BLOBS + 0.08, scores


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_cluster_assignments_are_seeded(train: tuple[np.ndarray, np.ndarray], method: str) -> None:
    codes = train[0] + np.random.default_rng(3).standard_normal(train[0].shape) * 4.0  # overlapping blobs
    assigned = cluster(codes, 6, method=method, seed=7)
    assert assigned.shape == (len(codes),) and assigned.dtype == np.int64
    assert set(np.unique(assigned)) <= set(range(6))
    np.testing.assert_array_equal(assigned, cluster(codes, 6, method=method, seed=7))


def test_more_clusters_than_classes_lowers_accuracy_only_by_the_split(
    train: tuple[np.ndarray, np.ndarray],
) -> None:
    codes, labels = train
    scores = cluster_scores(codes, labels, n_clusters=N_BLOBS + 1)
    assert 0.75 <= scores["acc"] < 1.0  # one blob split in two: at most a blob's worth of rows unmatched


def test_probe_separates_separable_classes(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]
) -> None:
    assert linear_probe(*train, *test) >= 0.99


def test_probe_is_at_chance_on_labels_independent_of_the_features(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]
) -> None:
    rng = np.random.default_rng(4)
    train_labels = rng.integers(N_BLOBS, size=len(train[0]))  # (N,)
    test_labels = rng.integers(N_BLOBS, size=len(test[0]))  # (M,)
    assert abs(linear_probe(train[0], train_labels, test[0], test_labels) - 1 / N_BLOBS) < 0.07


def test_pca_baseline_flattens_images_and_fits_on_train_only() -> None:
    rng = np.random.default_rng(5)
    train_x = rng.standard_normal((60, 1, 8, 8))  # (N, C, H, W)
    test_x = 3.0 + rng.standard_normal((20, 1, 8, 8))  # shifted: fitting on test too would move the mean
    train_codes, test_codes = pca_baseline(train_x, test_x, n_components=3)
    assert train_codes.shape == (60, 3) and test_codes.shape == (20, 3)
    pca = PCA(n_components=3, random_state=0).fit(train_x.reshape(60, -1))
    np.testing.assert_allclose(train_codes, pca.transform(train_x.reshape(60, -1)))
    np.testing.assert_allclose(test_codes, pca.transform(test_x.reshape(20, -1)))
    other_train_codes, _ = pca_baseline(train_x, rng.standard_normal((5, 64)), n_components=3)
    np.testing.assert_array_equal(train_codes, other_train_codes)


def test_representation_table_has_a_row_per_representation_and_repeats(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]
) -> None:
    noise = np.random.default_rng(6)
    representations = {
        "blobs": (train[0], test[0]),
        "noise": (noise.standard_normal((len(train[0]), 3)), noise.standard_normal((len(test[0]), 3))),
        "pca": pca_baseline(train[0], test[0], n_components=2),
    }
    rows = representation_table(representations, train[1], test[1], methods=("kmeans", "gmm"), seed=3)
    assert [row["representation"] for row in rows] == ["blobs", "noise", "pca"]
    assert [row["dim"] for row in rows] == [DIM, 3, 2]
    scores = [f"{method}_{score}" for method in ("kmeans", "gmm") for score in ("nmi", "ari", "acc")]
    for row in rows:
        assert set(row) == {"representation", "dim", "probe_acc", *scores}
    assert rows[0]["kmeans_acc"] > 0.95 and rows[0]["probe_acc"] > 0.99
    assert rows[1]["kmeans_nmi"] < 0.05 and rows[1]["probe_acc"] < 0.4
    assert rows == representation_table(representations, train[1], test[1], methods=("kmeans", "gmm"), seed=3)


CODES, LABELS = blobs()[0][:40], blobs()[1][:40]
BAD_INPUT = {
    "lengths differ": (lambda: cluster_scores(CODES, LABELS[:-1]), DataError, "same number of rows"),
    "accuracy lengths differ": (lambda: clustering_accuracy(LABELS, LABELS[:-1]), DataError, "same number"),
    "probe lengths differ": (lambda: linear_probe(CODES, LABELS[:-1], CODES, LABELS), DataError, "same number"),
    "probe widths differ": (lambda: linear_probe(CODES, LABELS, CODES[:, :2], LABELS), DataError, "columns"),
    "one class": (lambda: cluster_scores(CODES, np.zeros(40)), DataError, "at least 2 classes"),
    "probe one class": (lambda: linear_probe(CODES, np.ones(40), CODES, LABELS), DataError, "at least 2 classes"),
    "nan codes": (lambda: cluster(np.where(CODES > 9, np.nan, CODES), 4), DataError, "NaN or inf"),
    "inf codes": (lambda: cluster_scores(np.where(CODES > 9, np.inf, CODES), LABELS), DataError, "NaN or inf"),
    "1-D codes": (lambda: cluster(CODES[:, 0], 4), DataError, "2-D"),
    "3-D codes": (lambda: cluster(CODES[:, :, None], 4), DataError, "2-D"),
    "n_clusters 1": (lambda: cluster(CODES, 1), ConfigError, "n_clusters"),
    "n_clusters above rows": (lambda: cluster(CODES, 41), ConfigError, "n_clusters"),
    "unknown method": (lambda: cluster(CODES, 4, method="dbscan"), ConfigError, "method"),
    "table unknown method": (
        lambda: representation_table({"x": (CODES, CODES)}, LABELS, LABELS, methods=("kmeans", "spectral")),
        ConfigError,
        "method",
    ),
    "table methods string": (
        lambda: representation_table({"x": (CODES, CODES)}, LABELS, LABELS, methods="kmeans"),
        ConfigError,
        "methods",
    ),
    "table empty": (lambda: representation_table({}, LABELS, LABELS), DataError, "representations"),
    "pca features differ": (lambda: pca_baseline(CODES, CODES[:, :3], 2), DataError, "columns"),
    "pca n_components 0": (lambda: pca_baseline(CODES, CODES, 0), ConfigError, "n_components"),
    "pca 1-D input": (lambda: pca_baseline(CODES[:, 0], CODES, 1), DataError, "train_x"),
}


@pytest.mark.parametrize("case", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_raises_a_one_line_error(case: tuple) -> None:
    call, error, fragment = case
    with pytest.raises(error, match=fragment) as raised:
        call()
    assert "\n" not in str(raised.value)
