"""Disentanglement metrics: every metric equals a reference computed literally as disentanglement_lib
computes it (its estimators, hyper-parameters and discretisation on the same rows), the defaults are its
protocol, and on a toy simulator a factor-aligned code scores high, noise scores at chance, a rotated
(entangled) code scores lower, seeds repeat, and bad input raises ValueError."""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score
from sklearn.svm import LinearSVC

from vaekit.evaluation.disentangle import (
    _seed,
    _split,
    beta_vae_score,
    dci,
    evaluate_all,
    factor_vae_score,
    mig,
    sap,
)

SIZES = (3, 6, 10, 10)
DCI_PARTS = ("disentanglement", "completeness", "informativeness")
N_CODES = 3_000  # rows for MIG / SAP / DCI: a third of the default keeps the module at a few seconds


class Toy:
    """Observations are the factors scaled to [0, 1] plus noise far below the spacing of their values."""

    factor_names = ("shape", "scale", "x", "y")

    def __init__(self, noise: float = 0.005, sizes: tuple[int, ...] = SIZES) -> None:
        self.noise = noise
        self.factor_sizes = sizes
        self.pixel_noise = np.random.default_rng(1234)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(size, size=n) for size in self.factor_sizes], axis=1)  # (n, K) int64

    def render(self, factors: np.ndarray) -> np.ndarray:
        scaled = factors / (np.array(self.factor_sizes) - 1.0)  # (n, K)
        return scaled + self.noise * self.pixel_noise.standard_normal(scaled.shape)


def aligned(x: np.ndarray) -> np.ndarray:
    """Each factor in its own code, permuted and rescaled, plus one collapsed (constant) code."""
    permuted = x[:, [2, 0, 3, 1]] * np.array([3.0, 0.5, -2.0, 1.0])  # (n, 4)
    return np.concatenate([permuted, np.zeros((len(x), 1))], axis=1)  # (n, 5)


def rotated(x: np.ndarray) -> np.ndarray:
    """Every code mixes every factor: a random rotation of the (centred) observations."""
    rotation = np.linalg.qr(np.random.default_rng(7).standard_normal((4, 4)))[0]
    return (x - 0.5) @ rotation  # (n, 4)


def noise_code(seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """A code that ignores its input."""
    rng = np.random.default_rng(seed)
    return lambda x: rng.standard_normal((len(x), 5))


def scores(represent: Callable[[np.ndarray], np.ndarray], seed: int = 0) -> dict[str, float]:
    """All metrics at reduced sample counts (a fresh simulator so that its pixel noise repeats too); DCI with
    the forest, since gradient boosting takes seconds per code here (it has its own tests below)."""
    toy, rng = Toy(), np.random.default_rng(seed)
    factors = toy.sample_factors(N_CODES, rng)
    codes = represent(toy.render(factors))
    dci_scores = dci(codes, factors, rng, classifier="random_forest")
    return {
        "mig": mig(codes, factors)["mig"],
        "sap": sap(codes, factors, rng)["sap"],
        "sap_tree": sap(codes, factors, rng, classifier="tree")["sap"],
        **{f"dci_{name}": value for name, value in dci_scores.items()},
        "factor_vae": factor_vae_score(represent, toy, rng, n_train=200, n_eval=200, n_variance_samples=2_000),
        "beta_vae": beta_vae_score(represent, toy, rng, n_train=300, n_eval=300),
    }


@pytest.fixture(scope="module")
def measured() -> dict[str, dict[str, float]]:
    return {"aligned": scores(aligned), "noise": scores(noise_code()), "rotated": scores(rotated)}


def test_aligned_code_scores_near_the_top(measured) -> None:
    got = measured["aligned"]
    # Noise (0.005) is far below the value spacing (>= 1/9), so every factor is read exactly off one code.
    assert got["mig"] > 0.95
    assert got["dci_disentanglement"] > 0.95 and got["dci_completeness"] > 0.95
    assert got["dci_informativeness"] > 0.98
    assert got["factor_vae"] > 0.98  # the constant code is pruned, not mistaken for a fixed factor
    assert got["beta_vae"] > 0.98
    # The tree variant's SAP ceiling is mean(1 - 1/size) = 0.825 here: the runner-up predicts at chance.
    assert 0.75 < got["sap_tree"] <= np.mean([1 - 1 / size for size in SIZES]) + 0.02
    # The published linear SVM cannot isolate a middle value on one axis: far lower on factors of many values.
    assert 0.1 < got["sap"] < 0.3


def test_noise_code_scores_at_chance(measured) -> None:
    got = measured["noise"]
    assert got["mig"] < 0.05 and got["sap"] < 0.05 and got["sap_tree"] < 0.05
    assert got["dci_disentanglement"] < 0.1 and got["dci_completeness"] < 0.1
    assert got["dci_informativeness"] < 0.1 + np.mean([1 / size for size in SIZES])
    chance = 1 / len(SIZES)
    assert abs(got["factor_vae"] - chance) < 0.12
    assert abs(got["beta_vae"] - chance) < 0.12


def test_rotated_code_is_less_disentangled(measured) -> None:
    entangled, aligned_scores = measured["rotated"], measured["aligned"]
    assert entangled["mig"] < aligned_scores["mig"] - 0.4
    assert entangled["dci_disentanglement"] < aligned_scores["dci_disentanglement"] - 0.3
    assert entangled["sap"] < aligned_scores["sap"] - 0.08
    assert entangled["sap_tree"] < aligned_scores["sap_tree"] - 0.3
    assert entangled["dci_informativeness"] > 0.5  # still informative: a rotation loses nothing


def test_mig_rewards_one_code_per_factor_and_punishes_copies() -> None:
    factor = np.random.default_rng(0).integers(2, size=(500, 1))
    alone = np.concatenate([factor, np.zeros_like(factor)], axis=1).astype(float)
    copied = np.concatenate([factor, factor], axis=1).astype(float)
    assert mig(alone, factor)["mig"] == pytest.approx(1.0)
    assert mig(copied, factor)["mig"] == pytest.approx(0.0)


def test_factor_vae_score_is_zero_when_every_code_collapsed() -> None:
    score = factor_vae_score(lambda x: np.zeros((len(x), 3)), Toy(), np.random.default_rng(0), n_train=10, n_eval=10)
    assert score == 0.0


def test_evaluate_all_is_deterministic_per_seed() -> None:
    # Few factor values, since gradient boosting fits a tree per value and stage.
    first = evaluate_all(aligned, Toy(sizes=(2, 3, 2, 2)), np.random.default_rng(3), n_train=120, n_test=60)
    again = evaluate_all(aligned, Toy(sizes=(2, 3, 2, 2)), np.random.default_rng(3), n_train=120, n_test=60)
    assert first == again
    assert set(first) == {"mig", "sap", *(f"dci_{part}" for part in DCI_PARTS), "factor_vae", "beta_vae"}
    assert all(isinstance(value, float) and 0.0 <= value <= 1.0 for value in first.values())


def test_scores_are_deterministic_per_seed(measured) -> None:
    assert scores(noise_code(), seed=0) == measured["noise"]  # the fixture computed it with the same seeds


CODES = np.random.default_rng(0).standard_normal((50, 3))
FACTORS = np.random.default_rng(1).integers(4, size=(50, 2))


@pytest.mark.parametrize(
    ("codes", "factors", "message"),
    [
        (CODES[:, 0], FACTORS, "2-D"),
        (CODES[:, :1], FACTORS, "D >= 2"),
        (CODES[:40], FACTORS, "same rows"),
        (CODES, FACTORS.astype(float), "integers"),
        (CODES, FACTORS[:, 0], "2-D"),
        (np.where(CODES > 1, np.nan, CODES), FACTORS, "finite"),
        (CODES, np.stack([FACTORS[:, 0], np.zeros(50, dtype=int)], 1), "single value"),
    ],
)
def test_bad_codes_or_factors_raise_value_error(codes, factors, message) -> None:
    with pytest.raises(ValueError, match=message):
        mig(codes, factors)
    with pytest.raises(ValueError, match=message):
        dci(codes, factors, np.random.default_rng(0))


def test_bad_counts_and_simulators_raise_value_error() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="test_fraction"):
        sap(CODES, FACTORS, rng, test_fraction=1.0)
    with pytest.raises(ValueError, match="n_bins"):
        mig(CODES, FACTORS, n_bins=0)
    with pytest.raises(ValueError, match="at least 2 factors"):
        dci(CODES, FACTORS[:, :1], rng)
    with pytest.raises(ValueError, match="represent must return"):
        factor_vae_score(lambda x: np.zeros(len(x)), Toy(), rng, n_train=5, n_eval=5)
    with pytest.raises(ValueError, match="batch_size"):
        beta_vae_score(aligned, Toy(), rng, batch_size=0)
    one_factor = Toy()
    one_factor.factor_sizes = (3,)
    with pytest.raises(ValueError, match=">= 2 factors"):
        evaluate_all(aligned, one_factor, rng)
    with pytest.raises(ValueError, match="classifier must be one of linear_svm, tree"):
        sap(CODES, FACTORS, rng, classifier="svm")
    with pytest.raises(ValueError, match="classifier must be one of gradient_boosting, random_forest"):
        dci(CODES, FACTORS, rng, classifier="forest")


# disentanglement_lib, step by step: its estimators on the rows vaekit fits and scores, its formulas literally.


def encoder_like(n: int, sizes: tuple[int, ...], seed: int, decimals: int | None = None) -> tuple[np.ndarray, ...]:
    """Codes of a partly disentangled encoder: factor k drives code k and leaks into code k + 1, one more code
    is noise alone, factor 0 is unbalanced (half its rows take value 0, as real factors often do).
    ``decimals`` rounds the codes as a CSV of saved codes would."""
    rng = np.random.default_rng(seed)
    first = np.where(rng.random(n) < 0.5, 0, rng.integers(sizes[0], size=n))
    factors = np.stack([first, *(rng.integers(size, size=n) for size in sizes[1:])], axis=1)  # (n, K)
    mixing = np.eye(len(sizes), len(sizes) + 1) + 0.4 * np.eye(len(sizes), len(sizes) + 1, k=1)  # (K, K + 1)
    codes = factors / (np.array(sizes) - 1.0) @ mixing + 0.15 * rng.standard_normal((n, len(sizes) + 1))
    return (codes if decimals is None else codes.round(decimals)), factors


def held_out(n: int, seed: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray, int]:
    """The train rows, test rows and classifier seed that SAP and DCI draw from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    train, test = _split(n, rng, test_fraction)
    return train, test, _seed(rng)


def published_mig(codes: np.ndarray, factors: np.ndarray) -> float:
    """disentanglement_lib's _compute_mig: histogram discretiser (20 bins), sklearn's mutual_info_score."""
    binned = [np.digitize(code, np.histogram(code, 20)[1][:-1]) for code in codes.T]
    information = np.array([[mutual_info_score(factor, code) for factor in factors.T] for code in binned])  # (D, K)
    entropy = np.array([mutual_info_score(factor, factor) for factor in factors.T])  # (K,)
    ranked = np.sort(information, axis=0)[::-1]
    return float(np.mean((ranked[0] - ranked[1]) / entropy))


def published_sap(codes: np.ndarray, factors: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    """disentanglement_lib's _compute_sap for discrete factors: LinearSVC(C=0.01, balanced), plain accuracy."""
    score = np.zeros((codes.shape[1], factors.shape[1]))  # (D, K)
    for i in range(codes.shape[1]):
        for j in range(factors.shape[1]):
            classifier = LinearSVC(C=0.01, class_weight="balanced")
            classifier.fit(codes[train, i : i + 1], factors[train, j])
            score[i, j] = np.mean(classifier.predict(codes[test, i : i + 1]) == factors[test, j])
    ranked = np.sort(score, axis=0)
    return float(np.mean(ranked[-1] - ranked[-2]))


def published_dci(codes: np.ndarray, factors: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int) -> dict:
    """disentanglement_lib's _compute_dci: GradientBoostingClassifier() importances, entropies with a 1e-11
    floor, codes and factors weighted by their share of the importance."""
    importance = np.zeros((codes.shape[1], factors.shape[1]))  # (D, K)
    accuracy = []
    for j in range(factors.shape[1]):
        model = GradientBoostingClassifier(random_state=seed).fit(codes[train], factors[train, j])
        importance[:, j] = np.abs(model.feature_importances_)
        accuracy.append(np.mean(model.predict(codes[test]) == factors[test, j]))
    per_code = 1.0 - scipy.stats.entropy(importance.T + 1e-11, base=importance.shape[1])
    per_factor = 1.0 - scipy.stats.entropy(importance + 1e-11, base=importance.shape[0])
    return {
        "disentanglement": float(np.sum(per_code * importance.sum(1) / importance.sum())),
        "completeness": float(np.sum(per_factor * importance.sum(0) / importance.sum())),
        "informativeness": float(np.mean(accuracy)),
    }


def published_factor_vae(represent: Callable, toy: Toy, seed: int, n_train: int, n_eval: int) -> float:
    """disentanglement_lib's compute_factor_vae one vote at a time (batches of 64, variances over 1,000 rows,
    prune_dims threshold 0.05) on the factor rows that vaekit draws from ``default_rng(seed)``, in its order."""
    rng = np.random.default_rng(seed)
    global_variances = np.var(represent(toy.render(toy.sample_factors(1_000, rng))), axis=0, ddof=1)
    active_dims = np.sqrt(global_variances) >= 0.05

    def votes(n: int) -> np.ndarray:
        factor_indices = rng.integers(len(toy.factor_sizes), size=n)
        batches = toy.sample_factors(n * 64, rng).reshape(n, 64, -1)
        counts = np.zeros((len(toy.factor_sizes), len(global_variances)), dtype=np.int64)
        for factor_index, factors in zip(factor_indices, batches, strict=True):
            factors[:, factor_index] = factors[0, factor_index]
            local_variances = np.var(represent(toy.render(factors)), axis=0, ddof=1)
            counts[factor_index, np.argmin(local_variances[active_dims] / global_variances[active_dims])] += 1
        return counts

    training_votes, eval_votes = votes(n_train), votes(n_eval)
    classifier = np.argmax(training_votes, axis=0)
    return float(np.sum(eval_votes[classifier, np.arange(eval_votes.shape[1])]) / np.sum(eval_votes))


def published_beta_vae(represent: Callable, toy: Toy, seed: int, n_train: int, n_eval: int) -> float:
    """disentanglement_lib's compute_beta_vae_sklearn one point at a time (64 pairs a point, sklearn's
    LogisticRegression with its defaults) on the factor rows that vaekit draws from ``default_rng(seed)``.
    vaekit allows the regression more lbfgs steps: the same wherever the default converges, as it does here."""
    rng = np.random.default_rng(seed)

    def points(n: int) -> tuple[np.ndarray, np.ndarray]:
        indices = rng.integers(len(toy.factor_sizes), size=n)
        first = toy.sample_factors(n * 64, rng).reshape(n, 64, -1)
        second = toy.sample_factors(n * 64, rng).reshape(n, 64, -1)
        features = []
        for index, factors1, factors2 in zip(indices, first, second, strict=True):
            factors2[:, index] = factors1[:, index]
            difference = represent(toy.render(factors1)) - represent(toy.render(factors2))
            features.append(np.mean(np.abs(difference), axis=0))
        return np.array(features), indices

    train_points, train_labels = points(n_train)
    eval_points, eval_labels = points(n_eval)
    model = LogisticRegression(random_state=_seed(rng)).fit(train_points, train_labels)
    return float(model.score(eval_points, eval_labels))


def partly_collapsed(x: np.ndarray) -> np.ndarray:
    """The rotated (entangled) code plus a code that barely moves, which the FactorVAE score prunes."""
    return np.concatenate([rotated(x), 0.01 * x[:, :1]], axis=1)  # (n, 5)


def test_mig_equals_disentanglement_lib_on_rounded_codes() -> None:
    # Codes rounded to 2 decimals sit on bin edges, where dividing by the bin width rounds either way.
    codes, factors = encoder_like(1_000, (3, 6, 10), seed=0, decimals=2)
    assert mig(codes, factors)["mig"] == pytest.approx(published_mig(codes, factors), abs=1e-9)


def test_sap_equals_disentanglement_lib() -> None:
    codes, factors = encoder_like(900, (3, 6, 10), seed=1)
    train, test, _ = held_out(len(codes), seed=2, test_fraction=1 / 3)
    expected = published_sap(codes, factors, train, test)
    assert sap(codes, factors, np.random.default_rng(2))["sap"] == pytest.approx(expected, abs=1e-6)


def test_dci_equals_disentanglement_lib() -> None:
    # Few factor values and rows: gradient boosting fits one tree per value and stage.
    codes, factors = encoder_like(300, (2, 3, 4), seed=3)
    train, test, seed = held_out(len(codes), seed=4, test_fraction=1 / 3)
    expected = published_dci(codes, factors, train, test, seed)
    assert dci(codes, factors, np.random.default_rng(4)) == pytest.approx(expected, abs=1e-6)


def test_factor_vae_score_equals_disentanglement_lib() -> None:
    toy = Toy(noise=0.0)  # observations a function of the factors alone, so both sides see the same codes
    expected = published_factor_vae(partly_collapsed, toy, seed=10, n_train=150, n_eval=100)
    got = factor_vae_score(
        partly_collapsed, toy, np.random.default_rng(10), n_train=150, n_eval=100, n_variance_samples=1_000
    )
    assert got == pytest.approx(expected, abs=1e-12)


def test_beta_vae_score_equals_disentanglement_lib() -> None:
    toy = Toy(noise=0.0)
    expected = published_beta_vae(partly_collapsed, toy, seed=11, n_train=200, n_eval=100)
    got = beta_vae_score(partly_collapsed, toy, np.random.default_rng(11), n_train=200, n_eval=100)
    assert got == pytest.approx(expected, abs=1e-12)


def test_beta_vae_score_fits_its_classifier_to_convergence_on_wide_codes() -> None:
    # Codes spanning tens of units, as a VAE's posterior means can: sklearn's default 100 lbfgs steps stop short.
    def wide(x: np.ndarray) -> np.ndarray:
        return 20.0 * rotated(x)

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        score = beta_vae_score(wide, Toy(), np.random.default_rng(0), n_train=500, n_eval=200)
    assert 0.6 < score < 0.95  # a rotation keeps most factors apart, not all


def test_defaults_follow_disentanglement_lib() -> None:
    def defaults(function: Callable) -> dict:
        return {name: p.default for name, p in inspect.signature(function).parameters.items()}

    assert defaults(mig)["n_bins"] == 20
    assert defaults(sap)["classifier"] == "linear_svm" and defaults(sap)["test_fraction"] == pytest.approx(1 / 3)
    assert defaults(dci)["classifier"] == "gradient_boosting" and defaults(dci)["test_fraction"] == pytest.approx(1 / 3)
    factor_vae = defaults(factor_vae_score)
    assert (factor_vae["n_train"], factor_vae["n_eval"], factor_vae["n_variance_samples"]) == (10_000, 5_000, 10_000)
    assert (factor_vae["batch_size"], factor_vae["prune_threshold"]) == (64, 0.05)
    beta_vae = defaults(beta_vae_score)
    assert (beta_vae["n_train"], beta_vae["n_eval"], beta_vae["batch_size"]) == (10_000, 5_000, 64)
    assert (defaults(evaluate_all)["n_train"], defaults(evaluate_all)["n_test"]) == (10_000, 5_000)


def test_published_dci_scores_one_for_the_factors_and_near_zero_for_noise() -> None:
    factors = np.random.default_rng(7).integers(3, size=(300, 2))
    exact = np.concatenate([factors[:, ::-1], np.zeros((300, 1))], axis=1).astype(float)  # permuted, one collapsed
    got = dci(exact, factors, np.random.default_rng(8))
    assert min(got.values()) > 0.99
    noise = dci(np.random.default_rng(9).standard_normal((300, 3)), factors, np.random.default_rng(8))
    assert noise["disentanglement"] < 0.1 and noise["completeness"] < 0.1 and noise["informativeness"] < 0.5


def test_factor_vae_score_warns_when_small_codes_are_all_pruned(caplog) -> None:
    # A deterministic encoder whose codes span 0.01 units: all below the 0.05 threshold, so the score is 0.
    def small(x: np.ndarray) -> np.ndarray:
        return 0.01 * aligned(x)

    with caplog.at_level(logging.WARNING, logger="vaekit.evaluation.disentangle"):
        score = factor_vae_score(small, Toy(), np.random.default_rng(0), n_train=10, n_eval=10, n_variance_samples=500)
    assert score == 0.0
    assert "rescale them or lower the threshold" in caplog.text
    assert factor_vae_score(small, Toy(), np.random.default_rng(0), n_train=50, n_eval=50, prune_threshold=1e-4) > 0.9
