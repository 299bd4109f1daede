"""Laplace and discretised-logistic likelihoods: against torch / direct CDF sums, stability, and in a model."""

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
from vaekit.distributions.likelihoods import (
    LIKELIHOODS,
    DiscretizedLogistic,
    DiscretizedLogisticFamily,
    LaplaceFamily,
    LearnedLaplaceFamily,
)
from vaekit.errors import ConfigError
from vaekit.evaluation.report import evaluate
from vaekit.models import build_likelihood, build_model, build_objective

MIN_SCALE = 1e-3  # the learned families' lower bound on the scale


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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
