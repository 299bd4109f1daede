"""Posteriors, priors, KL and likelihoods against torch.distributions, the reference implementation;
the Laplace and discretised-logistic likelihoods against torch / direct CDF sums, their stability, and
in a model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import distributions as td

from vaekit.config import DataConfig, ModelConfig, resolve_config
from vaekit.data.loaders import prepare_data, to_tensors
from vaekit.data.sources.base import RawData
from vaekit.data.spec import DataSpec
from vaekit.distributions.kl import kl, kl_per_dim
from vaekit.distributions.likelihoods import (
    LIKELIHOODS,
    CategoricalFamily,
    DiscretizedLogistic,
    DiscretizedLogisticFamily,
    GaussianFamily,
    LaplaceFamily,
    LearnedLaplaceFamily,
)
from vaekit.distributions.posteriors import DiagonalGaussian, GaussianHead, PointMass
from vaekit.distributions.priors import StandardNormal, StandardNormalPrior
from vaekit.errors import ConfigError
from vaekit.evaluation.report import evaluate
from vaekit.models import build_likelihood, build_model, build_objective


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


MIN_SCALE = 1e-3  # the learned families' lower bound on the scale


def level_grid(n_levels: int) -> torch.Tensor:
    return torch.arange(n_levels, dtype=torch.float32) / (n_levels - 1)  # (K,)


# --------------------------------------------------------------------------- Laplace
def test_fixed_laplace_log_prob_matches_torch_summed_over_the_event() -> None:
    family = LaplaceFamily(2, scale=0.5)
    assert family.n_params == 1 and family.support == "real" and not family.discrete
    loc = torch.randn(4, 1, 3, 5, generator=gen(0))  # (B, 1, *event)
    x = torch.randn(4, 3, 5, generator=gen(1))
    expected = td.Laplace(loc[:, 0], 0.5).log_prob(x).sum((-2, -1))  # (B,)
    px = family(loc)
    assert px.log_prob(x).shape == (4,)
    torch.testing.assert_close(px.log_prob(x), expected)
    torch.testing.assert_close(px.mean, loc[:, 0])


def test_fixed_laplace_is_the_l1_error_over_b_plus_a_constant() -> None:
    b = 2.0
    family = LaplaceFamily(1, scale=b)
    loc, x = torch.zeros(1, 1, 3), torch.tensor([[1.0, -2.0, 0.5]])
    expected = -x.abs().sum() / b - 3 * math.log(2 * b)
    torch.testing.assert_close(family(loc).log_prob(x), expected.view(1))
    # the constant does not depend on the data: -log p - L1 / b is the same for any x
    other = torch.randn(5, 3, generator=gen(2))
    constants = -family(loc).log_prob(other) - other.abs().sum(-1) / b  # (5,)
    torch.testing.assert_close(constants, torch.full((5,), 3 * math.log(2 * b)))


def test_the_fixed_laplace_scale_comes_from_the_config() -> None:
    spec = DataSpec(kind="table", shape=[3], scale="none", value_range=[-5.0, 5.0])
    family = build_likelihood(spec, ModelConfig(likelihood="laplace", likelihood_scale=0.25))
    assert isinstance(family, LaplaceFamily)
    torch.testing.assert_close(family(torch.zeros(1, 1, 3)).scale, torch.full((1, 3), 0.25))


def test_learned_laplace_log_prob_matches_torch_with_a_bounded_scale() -> None:
    family = LearnedLaplaceFamily(1)
    assert family.n_params == 2 and not family.discrete
    loc = torch.randn(6, 4, generator=gen(3))
    raw_scale = torch.tensor([-50.0, -3.0, 0.0, 2.0]).expand(6, 4)
    px = family(torch.stack([loc, raw_scale], 1))  # raw (B, 2, D)
    scale = px.scale
    assert torch.all(scale >= MIN_SCALE * (1 - 1e-5))
    torch.testing.assert_close(scale[:, -1], torch.full((6,), math.exp(2.0)), rtol=1e-3, atol=0.0)
    x = torch.randn(6, 4, generator=gen(4))
    torch.testing.assert_close(px.log_prob(x), td.Laplace(loc, scale).log_prob(x).sum(-1))


def test_laplace_samples_are_seeded_and_have_the_right_spread() -> None:
    px = LaplaceFamily(1, scale=0.5)(torch.full((1, 1, 2), 3.0))  # loc 3, b 0.5
    draws = px.sample((100_000,), generator=gen(5))  # (S, 1, 2)
    assert draws.shape == (100_000, 1, 2) and torch.isfinite(draws).all()
    assert torch.equal(draws, px.sample((100_000,), generator=gen(5)))
    # E|X - mu| = b, Var |X - mu| = b^2: 5 standard errors is 0.008 here
    assert abs(float((draws - 3.0).abs().mean()) - 0.5) < 0.008
    assert abs(float((draws > 3.0).float().mean()) - 0.5) < 0.01  # symmetric about the location


# --------------------------------------------------------------------------- discretised logistic
def naive_level_probabilities(loc: float, scale: float, n_levels: int) -> torch.Tensor:
    """P(level) from logistic CDF differences in float64, edges open: the definition, no tricks."""
    edges = (torch.arange(1, n_levels, dtype=torch.float64) - 0.5) / (n_levels - 1)  # (K - 1,) bin edges
    cdf = torch.sigmoid((edges - loc) / scale)
    cdf = torch.cat([torch.zeros(1, dtype=torch.float64), cdf, torch.ones(1, dtype=torch.float64)])
    return cdf.diff()  # (K,)


@pytest.mark.parametrize("n_levels", [2, 17, 256])
def test_discretized_logistic_matches_the_logistic_cdf_mass_of_each_bin(n_levels: int) -> None:
    for loc, scale in [(0.3, 0.05), (0.0, 0.2), (0.9, 0.01), (-0.2, 0.5), (0.5, 3.0)]:
        px = DiscretizedLogistic(torch.tensor([loc]), torch.tensor([math.log(scale)]), 0, n_levels)
        probs = px.log_prob(level_grid(n_levels).unsqueeze(1)).exp()[:, 0]  # (K,)
        torch.testing.assert_close(probs.double(), naive_level_probabilities(loc, scale, n_levels),
                                   atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("n_levels", [2, 17, 256])
def test_discretized_logistic_probabilities_over_all_levels_sum_to_one(n_levels: int) -> None:
    loc = torch.cat([torch.rand(20, generator=gen(6)) * 2 - 0.5, torch.tensor([-30.0, 0.0, 1.0, 30.0])])
    log_scale = torch.cat([torch.rand(20, generator=gen(7)) * 8 - 7, torch.tensor([-7.0, 3.0, -9.0, 5.0])])
    px = DiscretizedLogistic(loc, log_scale, 0, n_levels)
    log_probs = px.log_prob(level_grid(n_levels).unsqueeze(1))  # (K, N): every level, every distribution
    assert log_probs.shape == (n_levels, 24)
    torch.testing.assert_close(log_probs.exp().sum(0), torch.ones(24), atol=1e-4, rtol=0.0)


@pytest.mark.parametrize("n_levels", [17, 256])
def test_a_narrow_scale_centred_on_a_level_puts_almost_all_mass_there(n_levels: int) -> None:
    levels = level_grid(n_levels)
    for index in (0, 1, n_levels // 2, n_levels - 1):
        px = DiscretizedLogistic(levels[index : index + 1], torch.tensor([math.log(1e-4)]), 0, n_levels)
        probs = px.log_prob(levels.unsqueeze(1)).exp()[:, 0]  # (K,)
        assert probs[index] > 0.999
        assert int(probs.argmax()) == index


def test_discretized_logistic_reads_off_grid_values_as_the_nearest_level() -> None:
    px = DiscretizedLogistic(torch.tensor([0.4]), torch.tensor([-3.0]), 0, 256)
    on_grid = px.log_prob(torch.tensor([100 / 255]))
    torch.testing.assert_close(px.log_prob(torch.tensor([100 / 255 + 1e-4])), on_grid)
    torch.testing.assert_close(px.log_prob(torch.tensor([np.float32(100) / np.float32(255)])), on_grid)


def test_discretized_logistic_is_finite_with_finite_gradients_at_extremes() -> None:
    family = DiscretizedLogisticFamily(1, n_levels=256)
    values = torch.tensor([-1e4, -50.0, -1.0, 0.0, 0.5, 1.0, 2.0, 50.0, 1e4])
    loc, raw_scale = torch.meshgrid(values, values, indexing="ij")  # every location with every scale
    raw = torch.stack([loc.reshape(-1), raw_scale.reshape(-1)])  # (2, 81)
    raw = raw.unsqueeze(0).expand(3, 2, 81).clone().requires_grad_()  # (B=3, 2, D)
    x = torch.tensor([0.0, 128 / 255, 1.0]).unsqueeze(1).expand(3, 81)  # lowest, a middle and the highest level
    log_prob = family(raw).log_prob(x)  # (3,)
    assert torch.isfinite(log_prob).all()
    log_prob.sum().backward()
    assert torch.isfinite(raw.grad).all()
    # and unbounded scales given to the distribution directly (wider than any data range, or ~0)
    for log_scale in (-20.0, 100.0, 200.0):
        px = DiscretizedLogistic(torch.tensor([0.5, 1e4]), torch.tensor([log_scale, log_scale]), 0, 256)
        assert torch.isfinite(px.log_prob(torch.tensor([128 / 255, 0.0]))).all()


def test_a_scale_far_wider_than_a_bin_gives_the_density_times_the_bin_width() -> None:
    log_scale = 30.0  # the bin mass is ~ width * pdf(centre) = (1/255) * 1 / (4 e^30): no cancellation to 0
    px = DiscretizedLogistic(torch.tensor([0.5]), torch.tensor([log_scale]), 0, 256)
    expected = -math.log(255) - log_scale - math.log(4)
    torch.testing.assert_close(px.log_prob(torch.tensor([128 / 255])), torch.tensor([expected]))


@pytest.mark.parametrize("n_levels", [2, 17, 256])
def test_discretized_logistic_samples_lie_on_the_level_grid_with_the_right_frequencies(n_levels: int) -> None:
    loc, log_scale = torch.tensor([-0.1, 0.37, 1.2]), torch.tensor([-2.0, -3.5, -1.0])
    px = DiscretizedLogistic(loc, log_scale, 1, n_levels)
    draws = px.sample((50_000,), generator=gen(8))  # (S, 3)
    assert draws.shape == (50_000, 3)
    assert draws.min() >= 0.0 and draws.max() <= 1.0
    index = draws * (n_levels - 1)
    torch.testing.assert_close(index, index.round(), atol=1e-4, rtol=0.0)
    assert torch.equal(draws, px.sample((50_000,), generator=gen(8)))
    # empirical level frequencies agree with the pmf (binomial stderr <= 0.0023 at 50k draws)
    marginal = DiscretizedLogistic(loc, log_scale, 0, n_levels)
    pmf = marginal.log_prob(level_grid(n_levels).unsqueeze(1)).exp()  # (K, 3)
    counts = torch.stack([torch.bincount(index[:, j].round().long(), minlength=n_levels) for j in range(3)], 1)
    torch.testing.assert_close(counts / 50_000, pmf, atol=0.012, rtol=0.0)


def test_discretized_logistic_mean_is_the_location_clamped_to_the_unit_interval() -> None:
    px = DiscretizedLogisticFamily(1, n_levels=17)(torch.tensor([[[-0.3, 0.4, 1.7], [0.0, 0.0, 0.0]]]))
    torch.testing.assert_close(px.mean, torch.tensor([[0.0, 0.4, 1.0]]))


# --------------------------------------------------------------------------- registry, spec and the model
@pytest.mark.parametrize(
    "name, discrete",
    [("bernoulli", True), ("continuous_bernoulli", False), ("gaussian", False), ("gaussian_learned", False),
     ("laplace", False), ("laplace_learned", False), ("categorical", True), ("discretized_logistic", True)],
)
def test_each_family_says_whether_it_is_a_pmf(name: str, discrete: bool) -> None:
    assert LIKELIHOODS.get(name).discrete is discrete


def test_discretized_logistic_takes_its_levels_from_the_data_spec() -> None:
    x = np.random.default_rng(0).integers(0, 256, size=(20, 1, 4, 4), dtype=np.uint8)
    x[0], x[1] = 255, 0
    spec = DataSpec.fit(RawData(x=x, kind="image", max_level=255.0), DataConfig(source="test"))
    assert spec.n_levels == 256
    family = build_likelihood(spec, ModelConfig(likelihood="discretized_logistic"))
    assert isinstance(family, DiscretizedLogisticFamily)
    assert family.n_levels == 256 and family.n_params == 2 and family.support == "levels"
    binary = DataSpec.fit(RawData(x=x, kind="image", max_level=255.0), DataConfig(source="test", binarize=True))
    assert build_likelihood(binary, ModelConfig(likelihood="discretized_logistic")).n_levels == 2


def test_discretized_logistic_refuses_data_without_levels() -> None:
    table = RawData(x=np.random.default_rng(0).normal(size=(30, 3)), kind="table")
    spec = DataSpec.fit(table, DataConfig(source="test"))
    with pytest.raises(ConfigError, match="discretized_logistic.*levels"):
        build_likelihood(spec, ModelConfig(likelihood="discretized_logistic"))


TINY = ["data.source=digits", "data.max_samples=64", "model.latent_dim=2", "model.hidden=[16]", "train.seed=0"]


@pytest.mark.parametrize("likelihood", ["discretized_logistic", "laplace", "laplace_learned"])
def test_a_model_with_the_likelihood_trains_one_step(likelihood: str) -> None:
    config = resolve_config(overrides=[*TINY, f"model.likelihood={likelihood}"])
    data = prepare_data(config.data)
    torch.manual_seed(0)
    model = build_model(data.spec, config.model)
    if likelihood == "discretized_logistic":
        assert model.likelihood.n_levels == data.spec.n_levels == 17  # digits: 0..16
    objective = build_objective(config.model)
    batch = to_tensors(data.train, data.spec)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    loss = objective(model, batch).loss
    assert torch.isfinite(loss)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
    optimizer.step()
    assert torch.isfinite(objective(model, batch).loss)


@pytest.mark.parametrize("likelihood, has_bpd", [("discretized_logistic", True), ("laplace", False)])
def test_bits_per_dim_are_reported_for_the_discretized_logistic_not_for_laplace(likelihood: str,
                                                                                has_bpd: bool) -> None:
    config = resolve_config(overrides=[*TINY, f"model.likelihood={likelihood}"])
    data = prepare_data(config.data)
    torch.manual_seed(0)
    model = build_model(data.spec, config.model)
    x = to_tensors(data.test, data.spec)["x"][:16]
    metrics = evaluate(model, x, k=4)
    assert ("bits_per_dim" in metrics) is has_bpd
    if has_bpd:
        assert metrics["bits_per_dim"] == pytest.approx(metrics["nll"] / (x[0].numel() * math.log(2)))
        assert 0 < metrics["bits_per_dim"] < math.log2(17) * 10  # a pmf over 17 levels: finite, positive
