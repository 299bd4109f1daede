"""Disentanglement metrics on a toy simulator: a factor-aligned code scores high, noise scores at chance,
a rotated (entangled) code scores lower, seeds repeat, and bad input raises ValueError."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from vaekit.evaluation.disentangle import (
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
    factor_sizes = SIZES

    def __init__(self, noise: float = 0.005) -> None:
        self.noise = noise
        self.pixel_noise = np.random.default_rng(1234)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(size, size=n) for size in SIZES], axis=1)  # (n, K) int64

    def render(self, factors: np.ndarray) -> np.ndarray:
        scaled = factors / (np.array(SIZES) - 1.0)  # (n, K)
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
    """All metrics at reduced sample counts (a fresh simulator so that its pixel noise repeats too)."""
    toy, rng = Toy(), np.random.default_rng(seed)
    factors = toy.sample_factors(N_CODES, rng)
    codes = represent(toy.render(factors))
    dci_scores = dci(codes, factors, rng, n_estimators=10)
    return {
        "mig": mig(codes, factors)["mig"],
        "sap": sap(codes, factors, rng)["sap"],
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
    # SAP's ceiling is mean(1 - 1/size) = 0.825 here: the runner-up code predicts each factor at chance.
    assert 0.75 < got["sap"] <= np.mean([1 - 1 / size for size in SIZES]) + 0.02


def test_noise_code_scores_at_chance(measured) -> None:
    got = measured["noise"]
    assert got["mig"] < 0.05 and got["sap"] < 0.05
    assert got["dci_disentanglement"] < 0.1 and got["dci_completeness"] < 0.1
    assert got["dci_informativeness"] < 0.1 + np.mean([1 / size for size in SIZES])
    chance = 1 / len(SIZES)
    assert abs(got["factor_vae"] - chance) < 0.12
    assert abs(got["beta_vae"] - chance) < 0.12


def test_rotated_code_is_less_disentangled(measured) -> None:
    entangled, aligned_scores = measured["rotated"], measured["aligned"]
    assert entangled["mig"] < aligned_scores["mig"] - 0.4
    assert entangled["dci_disentanglement"] < aligned_scores["dci_disentanglement"] - 0.3
    assert entangled["sap"] < aligned_scores["sap"] - 0.3
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
    first = evaluate_all(aligned, Toy(), np.random.default_rng(3), n_samples=2_000)
    again = evaluate_all(aligned, Toy(), np.random.default_rng(3), n_samples=2_000)
    assert first == again
    assert set(first) == {"mig", "sap", *(f"dci_{part}" for part in DCI_PARTS), "factor_vae", "beta_vae"}
    assert all(isinstance(value, float) and 0.0 <= value <= 1.0 for value in first.values())
    assert scores(noise_code(5), seed=4) == scores(noise_code(5), seed=4)


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
