"""Likelihood bounds and the evaluation report on a briefly trained digits model."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import vaekit
from vaekit.config import ModelConfig, resolve_config
from vaekit.data.loaders import prepare_data, to_tensors
from vaekit.data.spec import DataSpec
from vaekit.distributions.posteriors import KeyedNoise
from vaekit.evaluation import likelihood
from vaekit.evaluation.likelihood import bounds, log_weights
from vaekit.evaluation.report import evaluate
from vaekit.models import build_model

LATENT = 4
TINY = ["data.source=digits", "data.max_samples=400", f"model.latent_dim={LATENT}", "model.hidden=[32]",
        "train.epochs=4", "train.batch_size=32", "train.lr=3e-3", "train.progress=false", "train.device=cpu",
        "eval.enabled=false", "train.seed=0"]


@pytest.fixture(scope="module")
def trained() -> tuple[vaekit.Run, torch.Tensor]:
    config = resolve_config(preset="vae", overrides=TINY)
    run = vaekit.train(config)
    data = prepare_data(config.data)
    x_test = to_tensors(data.test, data.spec)["x"][:96]  # (96, 1, 8, 8) held out
    return run, x_test


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_bounds_are_finite_per_sample_and_consistent(trained) -> None:
    run, x = trained
    values = bounds(run.model, x, k=20, generator=gen(0))
    assert set(values) == {"neg_elbo", "recon", "kl", "nll"}
    for name, value in values.items():
        assert value.shape == (len(x),), name
        assert torch.isfinite(value).all(), name
    torch.testing.assert_close(values["neg_elbo"], values["recon"] + values["kl"])
    assert torch.all(values["kl"] >= 0)


def test_importance_sampled_nll_is_below_the_negative_elbo(trained) -> None:
    run, x = trained
    values = bounds(run.model, x, k=100, generator=gen(1))
    assert values["nll"].mean() < values["neg_elbo"].mean()


def test_more_importance_samples_give_a_tighter_bound(trained) -> None:
    run, x = trained
    loose = bounds(run.model, x, k=2, generator=gen(2))["nll"].mean()
    tight = bounds(run.model, x, k=200, generator=gen(2))["nll"].mean()
    assert tight < loose


def test_one_importance_sample_is_the_elbo_in_expectation(trained) -> None:
    """k = 1: -log w = -log p(x|z) - log p(z) + log q(z|x), whose mean is the -ELBO (analytic KL)."""
    run, x = trained
    repeated = x[:32].repeat(100, 1, 1, 1)  # (3200, 1, 8, 8): many draws per image
    values = bounds(run.model, repeated, k=1, generator=gen(3))
    difference = values["nll"] - values["neg_elbo"]  # zero mean, paired per row
    stderr = difference.std() / math.sqrt(len(difference))
    assert abs(float(difference.mean())) < 5 * float(stderr) + 1e-3


def test_chunked_importance_sampling_draws_k_samples(trained, monkeypatch: pytest.MonkeyPatch) -> None:
    run, x = trained
    batch = x[:8]
    per_draw = batch[0].numel() * len(batch)
    monkeypatch.setattr(likelihood, "CHUNK_ELEMENTS", 3 * per_draw)  # chunks of 3 draws: 3 + 3 + 3 + 1
    chunked = log_weights(run.model, batch, k=10, generator=gen(4))
    assert chunked.shape == (10, 8)
    assert torch.isfinite(chunked).all()
    assert torch.equal(chunked, log_weights(run.model, batch, k=10, generator=gen(4)))  # seeded
    assert not torch.equal(chunked[:3], chunked[3:6])  # each chunk draws fresh z


def test_chunk_size_does_not_change_the_estimate(trained, monkeypatch: pytest.MonkeyPatch) -> None:
    run, x = trained
    whole = bounds(run.model, x, k=400, generator=gen(5))["nll"]
    monkeypatch.setattr(likelihood, "CHUNK_ELEMENTS", 7 * x[0].numel() * len(x))  # 58 chunks of 7 (last 1)
    chunked = bounds(run.model, x, k=400, generator=gen(6))["nll"]
    # Independent k=400 estimates of the same quantity: agree to Monte Carlo accuracy (~0.1 nat here).
    assert abs(float(whole.mean() - chunked.mean())) < 0.1
    torch.testing.assert_close(whole, chunked, atol=1.0, rtol=0.0)


@torch.no_grad()
def reference_log_weights(model: torch.nn.Module, x: torch.Tensor, eps: torch.Tensor,
                          labels: torch.Tensor | None = None) -> torch.Tensor:
    """log p(x|z) + log p(z) - log q(z|x) one item and one draw at a time, z = mu + sigma * eps
    (k, B, L), with torch.distributions' densities and the likelihood's per-value form: (k, B)."""
    k, n = eps.shape[:2]
    out = torch.empty(k, n, dtype=torch.float64)
    standard = torch.distributions.Normal(0.0, 1.0)
    for b in range(n):
        item, label = x[b : b + 1], None if labels is None else labels[b : b + 1]
        qz = model.encode(item, label)
        posterior = torch.distributions.Normal(qz.loc[0], qz.scale[0])
        for s in range(k):
            z = qz.loc[0] + qz.scale[0] * eps[s, b]  # (L,)
            log_px = model.decode(z[None], label).log_prob_elements(item).sum()
            out[s, b] = float(log_px + standard.log_prob(z).sum() - posterior.log_prob(z).sum())
    return out


def replayed_noise(generator: torch.Generator, sizes: list[int], n: int, latent: int) -> torch.Tensor:
    """The standard normal draws ``generator`` gives chunks of ``sizes`` draws of n items: (k, n, L)."""
    return torch.cat([torch.randn(size, n, latent, generator=generator) for size in sizes])


@pytest.mark.parametrize("draws_per_chunk", [3, None])
def test_batched_importance_weights_equal_a_per_draw_reference(trained, monkeypatch: pytest.MonkeyPatch,
                                                               draws_per_chunk: int | None) -> None:
    """Items x draws batched through the decoder, in chunks or not, give the weights and the NLL of
    the textbook loop over items and draws on the same noise."""
    run, x = trained
    batch, k = x[:6], 10
    sizes = [k]
    if draws_per_chunk is not None:
        monkeypatch.setattr(likelihood, "CHUNK_ELEMENTS", draws_per_chunk * batch[0].numel() * len(batch))
        sizes = [3, 3, 3, 1]
    weights = log_weights(run.model, batch, k, gen(7))
    reference = reference_log_weights(run.model, batch, replayed_noise(gen(7), sizes, len(batch), LATENT))
    torch.testing.assert_close(weights.double(), reference, atol=2e-4, rtol=1e-6)
    values = bounds(run.model, batch, k, gen(8))
    generator = gen(8)
    torch.randn(len(batch), LATENT, generator=generator)  # bounds draws the ELBO's z first
    eps = replayed_noise(generator, sizes, len(batch), LATENT)
    nll = -(torch.logsumexp(reference_log_weights(run.model, batch, eps), 0) - math.log(k))
    torch.testing.assert_close(values["nll"].double(), nll, atol=2e-4, rtol=1e-6)


@pytest.mark.parametrize("overrides", [["model.likelihood=gaussian", "data.scale=standardize"],
                                       ["model.condition=label"]], ids=["gaussian", "conditional"])
def test_other_likelihoods_and_conditional_models_equal_the_reference(overrides: list[str]) -> None:
    config = resolve_config(preset="vae", overrides=[*TINY, *overrides])
    data = prepare_data(config.data)
    tensors = to_tensors(data.test, data.spec)
    torch.manual_seed(0)
    model = build_model(data.spec, config.model).eval()
    batch, labels = tensors["x"][:5], tensors["y"][:5] if model.condition_dim else None
    weights = log_weights(model, batch, 8, gen(9), condition=labels)
    reference = reference_log_weights(model, batch, replayed_noise(gen(9), [8], len(batch), LATENT), labels)
    torch.testing.assert_close(weights.double(), reference, atol=2e-4, rtol=1e-6)


@pytest.mark.parametrize("preset", ["vae", "hvae", "iwae"])
def test_an_items_weights_do_not_depend_on_the_batch_it_is_evaluated_in(preset: str) -> None:
    """With per-item noise (KeyedNoise), a batch's weights are each item's own, hierarchical models'
    (a draw per layer) included: the batching computes the per-item estimator."""
    config = resolve_config(preset=preset, overrides=TINY)
    data = prepare_data(config.data)
    x = to_tensors(data.test, data.spec)["x"][:5]
    torch.manual_seed(0)
    model = build_model(data.spec, config.model).eval()
    keys = torch.arange(len(x))
    together = log_weights(model, x, 7, KeyedNoise(keys, 1), chunk=7)  # (7, 5)
    alone = torch.cat([log_weights(model, x[b : b + 1], 7, KeyedNoise(keys[b : b + 1], 1), chunk=7)
                       for b in range(len(x))], 1)
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-6)


DOCUMENTED = {"neg_elbo", "elbo", "recon", "kl", "nll", "k", "bits_per_dim", "kl_per_dim", "active_units",
              "mutual_information", "n_samples", "n_available", "latent_dim"}


def test_evaluate_reports_the_documented_metrics(trained) -> None:
    run, x = trained
    metrics = evaluate(run.model, x, k=50, batch_size=40, seed=0)
    assert set(metrics) == DOCUMENTED
    assert metrics["n_samples"] == metrics["n_available"] == len(x)
    assert metrics["k"] == 50 and metrics["latent_dim"] == LATENT
    assert 0 <= metrics["active_units"] <= LATENT
    assert len(metrics["kl_per_dim"]) == LATENT and all(v >= 0 for v in metrics["kl_per_dim"])
    assert sum(metrics["kl_per_dim"]) == pytest.approx(metrics["kl"], abs=1e-3)
    assert metrics["elbo"] == -metrics["neg_elbo"]
    assert metrics["neg_elbo"] == pytest.approx(metrics["recon"] + metrics["kl"], rel=1e-6)
    assert metrics["nll"] < metrics["neg_elbo"]
    assert metrics["bits_per_dim"] == pytest.approx(metrics["nll"] / (64 * math.log(2)))
    assert -0.25 < metrics["mutual_information"] <= math.log(len(x)) + 0.05  # an estimate: noise around 0
    assert all(isinstance(v, (int, float, list)) and not isinstance(v, bool) for v in metrics.values())


def test_evaluate_is_seeded(trained) -> None:
    run, x = trained
    assert evaluate(run.model, x, k=10, seed=3) == evaluate(run.model, x, k=10, seed=3)
    assert evaluate(run.model, x, k=10, seed=3)["nll"] != evaluate(run.model, x, k=10, seed=4)["nll"]


def test_active_units_count_dimensions_whose_mean_varies_with_x(trained) -> None:
    run, x = trained
    frozen = copy.deepcopy(run.model)  # keep the shared trained model untouched
    with torch.no_grad():
        frozen.posterior.proj.weight[:LATENT] = 0.0  # every posterior mean is a constant
    assert evaluate(frozen, x, k=2)["active_units"] == 0
    with torch.no_grad():
        frozen.posterior.proj.weight[0] = 1.0  # unit 0's mean is the sum of the features: it follows x
    assert evaluate(frozen, x, k=2)["active_units"] == 1


def test_deterministic_code_reports_reconstruction_only() -> None:
    config = resolve_config(preset="ae", overrides=[*TINY, "train.epochs=1"])
    run = vaekit.train(config)
    data = prepare_data(config.data)
    x = to_tensors(data.test, data.spec)["x"][:32]
    metrics = evaluate(run.model, x, k=5)
    assert set(metrics) == {"recon", "n_samples", "n_available", "latent_dim"}
    assert math.isfinite(metrics["recon"]) and metrics["n_samples"] == 32


@pytest.mark.parametrize("likelihood, has_bpd", [("bernoulli", True), ("gaussian", False)])
def test_bits_per_dim_only_for_discrete_likelihoods(likelihood: str, has_bpd: bool) -> None:
    spec = DataSpec(kind="table", shape=[6], scale="none", value_range=[0.0, 1.0])
    config = ModelConfig(network="mlp", latent_dim=2, hidden=[16], likelihood=likelihood)
    x = torch.rand(32, 6, generator=torch.Generator().manual_seed(0))
    metrics = evaluate(build_model(spec, config), x, k=4)
    assert ("bits_per_dim" in metrics) is has_bpd


def test_active_dims_keeps_the_units_whose_means_vary() -> None:
    from vaekit.evaluation.latent import active_dims

    generator = torch.Generator().manual_seed(0)
    means = torch.stack([torch.randn(200, generator=generator), 0.5 * torch.randn(200, generator=generator),
                         0.01 * torch.randn(200, generator=generator)], 1)  # (200, 3): variances 1, 0.25, 1e-4
    assert active_dims(means).tolist() == [True, True, False]
    assert active_dims(torch.zeros(10, 4)).tolist() == [True] * 4  # none active: keep them all


def test_mutual_information_is_zero_when_collapsed_and_matches_a_gaussian_case() -> None:
    """I(x; z) for posteriors N(m, v I) with means m ~ N(0, s^2 I) is L/2 log(1 + s^2 / v); all
    posteriors equal to the prior give 0; nothing exceeds log N."""
    from vaekit.evaluation.latent import mutual_information

    torch.manual_seed(0)
    n, dims = 2000, 4
    assert abs(mutual_information(torch.zeros(n, dims), torch.zeros(n, dims))) < 0.02
    means = torch.randn(n, dims)
    estimate = mutual_information(means, torch.full((n, dims), math.log(0.5)))
    assert estimate == pytest.approx(dims / 2 * math.log(1 + 1 / 0.5), abs=0.1)
    assert mutual_information(means * 30, torch.full((n, dims), -8.0)) <= math.log(n) + 0.01
