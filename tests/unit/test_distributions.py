"""Posteriors, priors, KL and likelihoods against torch.distributions, the reference implementation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as td

from vaekit.distributions.kl import kl, kl_per_dim
from vaekit.distributions.likelihoods import LIKELIHOODS, CategoricalFamily, GaussianFamily
from vaekit.distributions.posteriors import DiagonalGaussian, GaussianHead, PointMass
from vaekit.distributions.priors import StandardNormal, StandardNormalPrior


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_gaussian(batch: int = 5, latent: int = 4, seed: int = 0) -> DiagonalGaussian:
    g = gen(seed)
    loc = torch.randn(batch, latent, generator=g)
    logvar = torch.randn(batch, latent, generator=g).clamp(-2, 2)
    return DiagonalGaussian(loc, logvar)


def as_torch_normal(q: DiagonalGaussian) -> td.Normal:
    return td.Normal(q.loc, torch.exp(0.5 * q.logvar))


# --------------------------------------------------------------------------- posterior and prior
def test_diagonal_gaussian_log_prob_matches_torch_normal() -> None:
    q = random_gaussian()
    z = torch.randn(7, 5, 4, generator=gen(1))  # (S, B, L): leading sample axis
    torch.testing.assert_close(q.log_prob(z), as_torch_normal(q).log_prob(z).sum(-1))
    assert q.log_prob(z).shape == (7, 5)
    torch.testing.assert_close(q.entropy(), as_torch_normal(q).entropy().sum(-1))
    torch.testing.assert_close(q.variance, as_torch_normal(q).variance)


def test_standard_normal_prior_log_prob_and_sampling() -> None:
    prior = StandardNormalPrior(3)()
    assert isinstance(prior, StandardNormal)
    z = torch.randn(6, 3, generator=gen(0))
    torch.testing.assert_close(prior.log_prob(z), td.Normal(0.0, 1.0).log_prob(z).sum(-1))
    assert prior.sample((10,), generator=gen(4)).shape == (10, 3)
    assert torch.equal(prior.sample((10,), generator=gen(4)), prior.sample((10,), generator=gen(4)))
    assert not torch.equal(prior.sample((10,), generator=gen(4)), prior.sample((10,), generator=gen(5)))


def test_analytic_kl_matches_torch_and_a_monte_carlo_estimate() -> None:
    q = random_gaussian(batch=3, latent=2)
    p = StandardNormal(2, torch.device("cpu"))
    analytic = kl(q, p)  # (B,)
    reference = td.kl_divergence(as_torch_normal(q), td.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(analytic, reference)
    torch.testing.assert_close(kl_per_dim(q).sum(-1), analytic)

    z = q.sample((200_000,), generator=gen(3))  # (S, B, L)
    log_ratio = q.log_prob(z) - p.log_prob(z)  # (S, B)
    estimate, stderr = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(len(z))
    assert torch.all((estimate - analytic).abs() < 5 * stderr + 1e-3), (estimate, analytic)


def test_kl_between_two_diagonal_gaussians_matches_torch() -> None:
    q, p = random_gaussian(seed=0), random_gaussian(seed=1)
    reference = td.kl_divergence(as_torch_normal(q), as_torch_normal(p)).sum(-1)
    torch.testing.assert_close(kl(q, p), reference)


def test_kl_is_non_negative_and_zero_only_at_equality() -> None:
    prior = StandardNormal(4, torch.device("cpu"))
    for seed in range(5):
        q = random_gaussian(batch=50, seed=seed)
        assert torch.all(kl(q, prior) >= 0)
        assert torch.all(kl(q, random_gaussian(batch=50, seed=seed + 10)) >= 0)
        torch.testing.assert_close(kl(q, q), torch.zeros(50))
    at_prior = DiagonalGaussian(torch.zeros(2, 4), torch.zeros(2, 4))
    torch.testing.assert_close(kl(at_prior, prior), torch.zeros(2))


def test_kl_falls_back_to_a_sample_estimate_without_a_closed_form() -> None:
    q = random_gaussian(batch=3, latent=2)
    mixture = td.MixtureSameFamily(
        td.Categorical(logits=torch.zeros(2)),
        td.Independent(td.Normal(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), torch.ones(2, 2)), 1),
    )
    with pytest.raises(ValueError, match="pass z"):
        kl(q, mixture)
    z = q.sample(generator=gen(0))
    torch.testing.assert_close(kl(q, mixture, z), q.log_prob(z) - mixture.log_prob(z))


def test_rsample_is_reparameterised_so_gradients_reach_loc_and_logvar() -> None:
    loc = torch.randn(3, 2, generator=gen(0)).requires_grad_()
    logvar = torch.randn(3, 2, generator=gen(1)).requires_grad_()
    q = DiagonalGaussian(loc, logvar)
    z = q.rsample(generator=gen(2))  # (B, L)
    z.sum().backward()
    eps = (z - loc) / torch.exp(0.5 * logvar)
    torch.testing.assert_close(loc.grad, torch.ones(3, 2))
    torch.testing.assert_close(logvar.grad, (0.5 * torch.exp(0.5 * logvar) * eps).detach())
    assert logvar.grad.abs().sum() > 0


def test_head_gradients_flow_through_the_sample() -> None:
    torch.manual_seed(0)
    head = GaussianHead(6, 3)
    q = head(torch.randn(4, 6, generator=gen(0)))
    q.rsample(generator=gen(1)).pow(2).sum().backward()
    assert head.proj.weight.grad is not None and head.proj.weight.grad.abs().sum() > 0


def test_sampling_with_a_generator_is_reproducible() -> None:
    q = random_gaussian()
    assert torch.equal(q.rsample((3,), generator=gen(7)), q.rsample((3,), generator=gen(7)))
    assert not torch.equal(q.rsample((3,), generator=gen(7)), q.rsample((3,), generator=gen(8)))
    assert q.rsample((3,), generator=gen(7)).shape == (3, 5, 4)
    point = PointMass(torch.ones(2, 3))
    assert torch.equal(point.rsample((4,)), torch.ones(4, 2, 3))


# --------------------------------------------------------------------------- likelihoods
EVENTS = [(1, 4, 3), (6,)]  # an image (C, H, W) and a table row (D,)


def _family(name: str, event: tuple[int, ...], **kwargs):
    family = LIKELIHOODS.get(name)
    return family(len(event), **kwargs)


def _data_in_unit(batch: int, event: tuple[int, ...]) -> torch.Tensor:
    return torch.rand(batch, *event, generator=gen(11))


def _sum_event(values: torch.Tensor, event: tuple[int, ...]) -> torch.Tensor:
    return values.flatten(values.ndim - len(event)).sum(-1)


@pytest.mark.parametrize("event", EVENTS, ids=["image", "table"])
@pytest.mark.parametrize("lead", [(3,), (2, 3)], ids=["batch", "samples-batch"])
@pytest.mark.parametrize("name", ["bernoulli", "continuous_bernoulli", "gaussian", "gaussian_learned"])
def test_likelihood_log_prob_matches_torch(name: str, lead: tuple[int, ...], event: tuple[int, ...]) -> None:
    kwargs = {"scale": 0.5} if name == "gaussian" else {}
    family = _family(name, event, **kwargs)
    raw = torch.randn(*lead, family.n_params, *event, generator=gen(5))  # (B, P, *event) or (S, B, P, *event)
    x = _data_in_unit(lead[-1], event)  # (B, *event): broadcast against the sample axis
    param_axis = len(lead)

    if name == "bernoulli":
        reference = td.Bernoulli(logits=raw.select(param_axis, 0), validate_args=False)
    elif name == "continuous_bernoulli":
        reference = td.ContinuousBernoulli(logits=raw.select(param_axis, 0), validate_args=False)
    elif name == "gaussian":
        reference = td.Normal(raw.select(param_axis, 0), 0.5)
    else:
        min_log = math.log(1e-3)
        log_scale = min_log + torch.nn.functional.softplus(raw.select(param_axis, 1) - min_log)
        reference = td.Normal(raw.select(param_axis, 0), log_scale.exp())

    px = family(raw)
    log_p = px.log_prob(x)
    assert log_p.shape == lead
    torch.testing.assert_close(log_p, _sum_event(reference.log_prob(x.expand(reference.mean.shape)), event))
    torch.testing.assert_close(px.mean, reference.mean)


def test_bernoulli_log_prob_is_the_same_with_and_without_gradients() -> None:
    """Evaluation (no gradients) takes x . logits - sum softplus(logits); training the BCE kernel:
    the same values, saturated logits and masks included, and gradients x - sigmoid(logits)."""
    family = _family("bernoulli", (1, 4, 3))
    raw = torch.randn(2, 3, 1, 1, 4, 3, generator=gen(6)) * 8  # (S, B, P, C, H, W)
    raw[0, 0, 0, 0, 0] = torch.tensor([60.0, -60.0, 25.0])  # softplus' linear range and far beyond
    x = _data_in_unit(3, (1, 4, 3)).round()  # (B, C, H, W): binary, as where logits saturate
    with torch.no_grad():
        fast = family(raw).log_prob(x)
    trained = raw.clone().requires_grad_()
    slow = family(trained).log_prob(x)
    torch.testing.assert_close(fast, slow.detach(), atol=1e-5, rtol=1e-6)
    slow.sum().backward()
    torch.testing.assert_close(trained.grad[:, :, 0], x - torch.sigmoid(raw[:, :, 0]))
    mask = _data_in_unit(3, (1, 4, 3)) > 0.3
    with torch.no_grad():
        torch.testing.assert_close(family(raw).log_prob(x, mask), family(trained).log_prob(x, mask))


def test_learned_gaussian_scale_is_bounded_below_and_follows_the_decoder() -> None:
    family = LIKELIHOODS.get("gaussian_learned")(1)
    assert family.n_params == 2
    raw = torch.stack([torch.zeros(4), torch.tensor([-50.0, -3.0, 0.0, 2.0])]).unsqueeze(0)  # (1, 2, 4)
    scale = family(raw).scale[0]
    assert torch.all(scale >= 1e-3 * (1 - 1e-5))  # bounded below (up to float rounding)
    torch.testing.assert_close(scale[-1], torch.tensor(math.exp(2.0)), rtol=1e-3, atol=0.0)


def test_fixed_gaussian_is_squared_error_over_two_sigma_squared_plus_a_constant() -> None:
    family = GaussianFamily(1, scale=2.0)
    loc, x = torch.zeros(1, 1, 3), torch.tensor([[1.0, -2.0, 0.5]])
    expected = -(x**2).sum() / (2 * 4.0) - 3 * (math.log(2.0) + 0.5 * math.log(2 * math.pi))
    torch.testing.assert_close(family(loc).log_prob(x), expected.view(1))


@pytest.mark.parametrize("event", EVENTS, ids=["image", "table"])
@pytest.mark.parametrize("unit_levels", [True, False], ids=["unit-levels", "indices"])
@pytest.mark.parametrize("lead", [(3,), (2, 3)], ids=["batch", "samples-batch"])
def test_categorical_log_prob_matches_torch(event, unit_levels: bool, lead: tuple[int, ...]) -> None:
    k, batch = 5, 3
    family = CategoricalFamily(len(event), n_categories=k, unit_levels=unit_levels)
    assert family.n_params == k
    raw = torch.randn(*lead, k, *event, generator=gen(9))  # (*lead, K, *event)
    index = torch.randint(0, k, (batch, *event), generator=gen(10))  # (B, *event)
    x = index / (k - 1) if unit_levels else index.float()

    px = family(raw)
    reference = td.Categorical(logits=raw.movedim(len(lead), -1))  # (*lead, *event) categories
    expected = _sum_event(reference.log_prob(index.expand(*lead, *event)), event)
    assert px.log_prob(x).shape == lead
    torch.testing.assert_close(px.log_prob(x), expected)
    levels = torch.arange(k) / (k - 1) if unit_levels else torch.arange(k).float()
    torch.testing.assert_close(px.mean, (reference.probs * levels).sum(-1))


@pytest.mark.parametrize("name", ["bernoulli", "continuous_bernoulli", "gaussian", "gaussian_learned"])
def test_likelihood_sampling_is_reproducible(name: str) -> None:
    family = _family(name, (6,))
    px = family(torch.randn(4, family.n_params, 6, generator=gen(0)))
    first = px.sample((2,), generator=gen(1))
    assert first.shape == (2, 4, 6)
    assert torch.equal(first, px.sample((2,), generator=gen(1)))
    assert not torch.equal(first, px.sample((2,), generator=gen(2)))
