"""Using a trained VAE: interpolation, traversals, attribute vectors, analogies and class swaps; the
Gaussian mixture over the aggregate posterior; latent maps; GIFs; the HTML report; feature networks
and sample quality; ``Run.encode_all`` and ``Run.generate``.

Two tiny runs on the bundled 8x8 digits are trained once for the module (a 4-d VAE and a 2-d CVAE,
a second or two each); models that need no training (an autoencoder, a hierarchical VAE, a table
model) are built untrained. Anything that caches (the default feature classifier) writes under a
temporary ``VAEKIT_DATA``.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal, Normal, kl_divergence

import vaekit
from vaekit import io as run_io
from vaekit.api import Run
from vaekit.applications import explore, maps
from vaekit.applications.generate import LatentMixture, fit_aggregate_posterior, generated_quality, sample_mixture
from vaekit.applications.report import build_report, write_report
from vaekit.applications.visualize import display_scale, save_gif
from vaekit.config import DataConfig, ModelConfig, resolve_config
from vaekit.data.loaders import PreparedData, prepare_data
from vaekit.data.spec import DataSpec
from vaekit.errors import ConfigError, DataError
from vaekit.evaluation import features
from vaekit.models import build_model

# Digits runs: one hidden layer of 64, no end-of-run evaluation.
TINY = ["data.source=digits", "model.hidden=[64]", "train.batch_size=64", "train.device=cpu",
        "train.progress=false", "eval.enabled=false"]
TABLE = DataSpec(kind="table", shape=[6], scale="unit", value_range=[0.0, 1.0])


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``VAEKIT_DATA`` folder of this module: the default feature classifier is trained into it once."""
    return tmp_path_factory.mktemp("vaekit-data")


@pytest.fixture(scope="module")
def vae(cache: Path) -> Run:
    """A 4-d VAE trained for 30 short epochs: enough for its dimensions to carry different amounts of KL."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAEKIT_DATA", str(cache))
        return vaekit.train(resolve_config(preset="vae", overrides=[*TINY, "model.latent_dim=4", "train.epochs=30"]))


@pytest.fixture(scope="module")
def cvae(cache: Path) -> Run:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAEKIT_DATA", str(cache))
        return vaekit.train(resolve_config(preset="cvae", overrides=[*TINY, "model.latent_dim=2", "train.epochs=10"]))


@pytest.fixture(scope="module")
def data(vae: Run) -> PreparedData:
    """The digits splits the runs were trained on: ``x`` uint8 (N, 1, 8, 8) levels 0..16, ``y`` (N,)."""
    return prepare_data(vae.config.data)


@pytest.fixture(scope="module")
def classifier(data: PreparedData) -> features.FeatureClassifier:
    train_x, train_y = unit(data.train.x), torch.as_tensor(data.train.y)
    return features.train_classifier(train_x, train_y, 10, epochs=5, seed=0)


def unit(x: np.ndarray) -> Tensor:
    """Digit levels 0..16 -> images in [0, 1], as the feature networks take them."""
    return torch.as_tensor(x, dtype=torch.float32) / 16.0


def untrained(preset: str, *extra: str, spec: DataSpec | None = None) -> Run:
    """A run with freshly initialised weights (for behaviour that needs no training)."""
    config = resolve_config(preset=preset, overrides=[*TINY, *extra])
    spec = spec or prepare_data(config.data).spec
    torch.manual_seed(0)
    return Run(model=build_model(spec, config.model).eval(), spec=spec, config=config)


def means_of(run: Run, x: np.ndarray, condition: Tensor | None = None) -> Tensor:
    return run.encode(x, condition=condition).mean.cpu()  # (N, L)


# ------------------------------------------------------------------------------------ explore


def test_interpolation_runs_from_one_decoded_mean_to_the_other_and_is_deterministic(vae: Run,
                                                                                  data: PreparedData) -> None:
    a, b = data.test.x[0], data.test.x[1]  # (1, 8, 8) each
    path = explore.interpolate(vae, a, b, steps=7)
    assert path.shape == (7, 1, 8, 8)
    z = means_of(vae, np.stack([a, b]))  # (2, L)
    torch.testing.assert_close(path[0], vae.decode(z[:1])[0])
    torch.testing.assert_close(path[-1], vae.decode(z[1:])[0])
    torch.testing.assert_close(path[3], vae.decode(z.mean(0, keepdim=True))[0])  # linear: the midpoint
    assert torch.equal(path, explore.interpolate(vae, a, b, steps=7))
    flat = explore.interpolate(vae, a.reshape(-1), b[None], steps=3)  # any shape holding one input
    torch.testing.assert_close(flat[[0, -1]], path[[0, -1]])


def test_spherical_interpolation_shares_the_ends_but_not_the_middle(vae: Run, data: PreparedData) -> None:
    first, other = 0, int(np.flatnonzero(data.test.y != data.test.y[0])[0])  # two different digits
    a, b = data.test.x[first], data.test.x[other]
    linear = explore.interpolate(vae, a, b, 9, "linear")
    spherical = explore.interpolate(vae, a, b, 9, "spherical")
    torch.testing.assert_close(spherical[[0, -1]], linear[[0, -1]])
    assert float((spherical[4] - linear[4]).abs().max()) > 1e-3


def test_conditional_interpolation_decodes_under_the_first_label(cvae: Run, data: PreparedData) -> None:
    other = int(np.flatnonzero(data.test.y != data.test.y[0])[0])  # an input of another class
    a, b, labels = data.test.x[0], data.test.x[other], [int(data.test.y[0]), int(data.test.y[other])]
    path = explore.interpolate(cvae, a, b, 5, labels=labels)
    z = means_of(cvae, np.stack([a, b]), torch.tensor(labels))  # (2, L)
    expected = cvae.decode(torch.stack([z[0], z[1]]), condition=torch.tensor([labels[0]] * 2))
    torch.testing.assert_close(path[[0, -1]], expected)
    with pytest.raises(DataError, match="labels"):
        explore.interpolate(cvae, a, b, 5)
    with pytest.raises(DataError, match="expected 2 labels"):
        explore.interpolate(cvae, a, b, 5, labels=[1])


@pytest.fixture
def decoded_codes(vae: Run, monkeypatch: pytest.MonkeyPatch) -> list[Tensor]:
    """Every batch of codes the VAE run decodes during one test."""
    seen, real = [], vae.decode

    def spy(z: Tensor, *args, **kwargs) -> Tensor:
        seen.append(torch.as_tensor(z).detach().cpu().clone())
        return real(z, *args, **kwargs)

    monkeypatch.setattr(vae, "decode", spy)
    return seen


def test_traversal_moves_one_dimension_per_row_most_informative_first(vae: Run, data: PreparedData,
                                                                     decoded_codes: list[Tensor]) -> None:
    reference = data.test.x[:200]
    result = explore.traverse(vae, reference, n_dims=3, span=2.0, steps=5)
    assert result.images.shape == (15, 1, 8, 8)
    mean, logvar = vae.encode_all(reference)  # (N, L) each
    kl = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).mean(0)  # (L,)
    torch.testing.assert_close(result.kl, kl)
    assert result.dims == torch.argsort(kl, descending=True)[:3].tolist()
    assert len(set(result.dims)) == 3
    torch.testing.assert_close(result.values, torch.linspace(-2.0, 2.0, 5))

    (codes,) = decoded_codes
    torch.testing.assert_close(Run.decode(vae, codes), result.images)  # the images are these codes, decoded
    grid = codes.reshape(3, 5, 4)  # (rows, steps, L)
    origin, spread = mean.mean(0), mean.std(0)  # (L,) each
    for row, dim in enumerate(result.dims):
        others = [d for d in range(4) if d != dim]
        torch.testing.assert_close(grid[row][:, others], origin[others].expand(5, 3))
        torch.testing.assert_close(grid[row][:, dim], origin[dim] + result.values * spread[dim])
    rows = result.images.reshape(3, 5, -1)
    assert all(float((rows[i] - rows[j]).abs().max()) > 1e-4 for i in range(3) for j in range(i))


def test_traversal_around_a_given_centre_and_over_every_dimension(vae: Run, data: PreparedData,
                                                                  decoded_codes: list[Tensor]) -> None:
    result = explore.traverse(vae, data.test.x[:200], center=data.test.x[5], n_dims=None, steps=3)
    assert result.images.shape == (12, 1, 8, 8) and sorted(result.dims) == [0, 1, 2, 3]
    middle = decoded_codes[-1].reshape(4, 3, 4)[:, 1]  # (rows, L): the centre column of every row
    torch.testing.assert_close(middle, means_of(vae, data.test.x[5:6]).expand(4, 4))
    assert torch.equal(result.images, explore.traverse(vae, data.test.x[:200], center=data.test.x[5],
                                                       n_dims=None, steps=3).images)


def test_conditional_traversal_needs_and_uses_the_labels(cvae: Run, data: PreparedData) -> None:
    x, y = data.test.x[:100], data.test.y[:100]
    result = explore.traverse(cvae, x, labels=y, n_dims=2, steps=3)
    assert result.images.shape == (6, 1, 8, 8)
    mean, _ = cvae.encode_all(x, condition=torch.as_tensor(y))
    grid = torch.stack([mean.mean(0)] * 6)  # (6, L): the centre, moved below in one dimension per row
    for row, dim in enumerate(result.dims):
        grid[3 * row : 3 * row + 3, dim] += result.values * mean.std(0)[dim]
    torch.testing.assert_close(result.images, cvae.decode(grid, condition=torch.full((6,), int(y[0]))))
    with pytest.raises(DataError, match="labels"):
        explore.traverse(cvae, x)


def test_conditional_traversal_around_a_centre_uses_the_centres_label(cvae: Run, data: PreparedData) -> None:
    x, y = data.test.x[:100], data.test.y[:100]
    k = int(np.flatnonzero(y != y[0])[0])  # a centre of another class than the first reference input
    result = explore.traverse(cvae, x, center=x[k], labels=y, n_dims=2, steps=3, center_label=int(y[k]))
    middle = result.images.reshape(2, 3, 1, 8, 8)[:, 1]  # (rows, ...): the centre itself in every row
    expected = cvae.reconstruct(x[k : k + 1], condition=torch.as_tensor(y[k : k + 1]))  # (1, 1, 8, 8)
    torch.testing.assert_close(middle, expected.expand(2, -1, -1, -1))
    with pytest.raises(DataError, match="centre input's label"):
        explore.traverse(cvae, x, center=x[k], labels=y)


def test_traversal_needs_two_reference_inputs_for_the_spread(vae: Run, data: PreparedData) -> None:
    with pytest.raises(DataError, match="at least 2 reference inputs"):
        explore.traverse(vae, data.test.x[:1])


def test_attribute_shift_of_strength_zero_is_the_reconstruction_and_one_adds_the_group_difference(
        vae: Run, data: PreparedData) -> None:
    codes_of, y = data.test.x[:300], data.test.y[:300]
    apply_to = data.test.x[300:303]
    out = explore.shift_attribute(vae, codes_of, y == 1, y == 7, apply_to, strengths=(0.0, 1.0))
    assert out.shape == (6, 1, 8, 8)
    start = means_of(vae, apply_to)  # (3, L)
    torch.testing.assert_close(out[0::2], vae.decode(start))  # row i = input i at each strength
    codes, labels = means_of(vae, codes_of), torch.as_tensor(y)
    vector = codes[labels == 1].mean(0) - codes[labels == 7].mean(0)  # towards group A, away from group B
    torch.testing.assert_close(out[1::2], vae.decode(start + vector))
    indices = explore.shift_attribute(vae, codes_of, np.flatnonzero(y == 1).tolist(), np.flatnonzero(y == 7),
                                      apply_to, strengths=(0.0, 1.0))
    torch.testing.assert_close(indices, out)


def test_analogy_adds_the_difference_of_a_and_b_to_c(vae: Run, data: PreparedData) -> None:
    a, b, c = data.test.x[0], data.test.x[1], data.test.x[2:6]
    zc = means_of(vae, c)  # (4, L)
    torch.testing.assert_close(explore.analogy(vae, a, a, c), vae.decode(zc))  # a is to a as c is to c
    za, zb = means_of(vae, np.stack([a, b]))
    result = explore.analogy(vae, a, b, c)
    assert result.shape == (4, 1, 8, 8)
    torch.testing.assert_close(result, vae.decode(zc + zb - za))
    assert explore.analogy(vae, a, b, c[0]).shape == (1, 1, 8, 8)


def test_label_swap_draws_each_input_as_every_class(cvae: Run, data: PreparedData) -> None:
    x, y = data.test.x[:3], data.test.y[:3]
    grid = explore.swap_labels(cvae, x, y)
    assert grid.shape == (30, 1, 8, 8)
    z = means_of(cvae, x, torch.as_tensor(y))  # (3, L), each under its own label
    for i in range(3):
        expected = cvae.decode(z[i].expand(10, -1), condition=torch.arange(10))
        torch.testing.assert_close(grid[10 * i : 10 * i + 10], expected)
    assert float((grid[0] - grid[1]).abs().max()) > 1e-3  # the label changes the drawing


def test_label_swap_needs_a_conditional_run_and_the_labels(vae: Run, cvae: Run, data: PreparedData) -> None:
    with pytest.raises(DataError, match="not conditional"):
        explore.swap_labels(vae, data.test.x[:3], data.test.y[:3])
    with pytest.raises(DataError, match="expected 3 labels"):
        explore.swap_labels(cvae, data.test.x[:3], data.test.y[:2])


# ------------------------------------------------------------------------------------ Run.encode_all, generate


def test_encode_all_matches_one_big_encode_whatever_the_batch_size(vae: Run, data: PreparedData) -> None:
    x = data.test.x  # numpy uint8, (N, 1, 8, 8)
    qz = vae.encode(x)
    for batch_size in (1024, 50, 7):
        mean, logvar = vae.encode_all(x, batch_size=batch_size)
        assert mean.shape == logvar.shape == (len(x), 4) and mean.device.type == "cpu"
        torch.testing.assert_close(mean, qz.mean)
        torch.testing.assert_close(logvar, qz.logvar)


def test_encode_all_slices_the_condition_with_the_inputs(cvae: Run, data: PreparedData) -> None:
    x, y = data.test.x[:100], torch.as_tensor(data.test.y[:100])
    mean, _ = cvae.encode_all(x, condition=y, batch_size=30)
    torch.testing.assert_close(mean, means_of(cvae, x, y))
    shifted, _ = cvae.encode_all(x, condition=(y + 1) % 10, batch_size=30)
    assert not torch.allclose(mean, shifted)  # the labels reach the encoder


def test_encode_all_of_a_deterministic_code_has_no_log_variance(data: PreparedData) -> None:
    ae = untrained("ae", "model.latent_dim=3")
    mean, logvar = ae.encode_all(data.test.x[:20], batch_size=8)
    assert logvar is None and mean.shape == (20, 3)
    torch.testing.assert_close(mean, means_of(ae, data.test.x[:20]))


def test_generate_is_decode_for_a_flat_model(vae: Run, cvae: Run) -> None:
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(vae.generate(z, generator=torch.Generator().manual_seed(1)), vae.decode(z))
    torch.testing.assert_close(vae.generate(z.numpy()), vae.decode(z))
    z2 = z[:, :2]
    torch.testing.assert_close(cvae.generate(z2, condition=3), cvae.decode(z2, condition=torch.full((6,), 3)))
    torch.testing.assert_close(cvae.generate(z2), cvae.decode(z2, condition=torch.arange(6)))  # cycles classes


def test_generate_draws_a_hierarchical_models_lower_layers_with_the_generator() -> None:
    hvae = untrained("hvae", "model.latent_dim=3")
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    draw = lambda seed: hvae.generate(z, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    assert torch.equal(draw(1), draw(1)) and not torch.allclose(draw(1), draw(2))
    torch.testing.assert_close(hvae.generate(z, temperature=0.0), hvae.decode(z))  # lower layers at their means


# ------------------------------------------------------------------------------------ latent mixture


def two_blobs(n: int = 3000, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Draws from 0.3 N((-4, 0), 0.25 I) + 0.7 N((4, 2), diag(1, 0.5)); returns codes, weights, means."""
    g = torch.Generator().manual_seed(seed)
    first = int(0.3 * n)
    a = torch.tensor([-4.0, 0.0]) + 0.5 * torch.randn(first, 2, generator=g)
    b = torch.tensor([4.0, 2.0]) + torch.tensor([1.0, 0.5**0.5]) * torch.randn(n - first, 2, generator=g)
    return torch.cat([a, b]), torch.tensor([0.3, 0.7]), torch.tensor([[-4.0, 0.0], [4.0, 2.0]])


def by_first_coordinate(mixture: LatentMixture) -> LatentMixture:
    order = torch.argsort(mixture.means[:, 0])
    return LatentMixture(mixture.weights[order], mixture.means[order], mixture.scale_tril[order])


def test_mixture_recovers_a_known_two_component_mixture() -> None:
    codes, weights, means = two_blobs()
    mixture = by_first_coordinate(LatentMixture.fit(codes, n_components=2))
    assert mixture.weights.shape == (2,) and mixture.means.shape == (2, 2) and mixture.scale_tril.shape == (2, 2, 2)
    torch.testing.assert_close(mixture.weights, weights, atol=0.01, rtol=0)
    torch.testing.assert_close(mixture.means, means, atol=0.1, rtol=0)
    covariance = mixture.scale_tril @ mixture.scale_tril.transpose(-1, -2)  # (2, 2, 2)
    torch.testing.assert_close(covariance, torch.stack([0.25 * torch.eye(2), torch.diag(torch.tensor([1.0, 0.5]))]),
                               atol=0.1, rtol=0)


def test_mixture_sampling_is_seeded_and_follows_the_mixture() -> None:
    mixture = LatentMixture.fit(two_blobs()[0], n_components=2)
    draw = lambda seed, **kw: mixture.sample(4000, torch.Generator().manual_seed(seed), **kw)  # noqa: E731
    assert draw(0).shape == (4000, 2)
    assert torch.equal(draw(0), draw(0)) and not torch.equal(draw(0), draw(1))
    mean = (mixture.weights[:, None] * mixture.means).sum(0)  # (2,)
    torch.testing.assert_close(draw(0).mean(0), mean, atol=0.15, rtol=0)
    at_means = draw(0, temperature=0.0)  # every draw is exactly one component's mean
    distance = torch.cdist(at_means, mixture.means)  # (n, K)
    assert float(distance.min(1).values.max()) == 0.0
    share = (distance.argmin(1)[:, None] == torch.arange(2)).float().mean(0)  # (K,) how often each is chosen
    torch.testing.assert_close(share, mixture.weights, atol=0.03, rtol=0)


def test_mixture_log_prob_is_the_mixture_density_and_peaks_at_the_means() -> None:
    mixture = LatentMixture.fit(two_blobs()[0], n_components=2)
    reference = MixtureSameFamily(Categorical(probs=mixture.weights),
                                  MultivariateNormal(mixture.means, scale_tril=mixture.scale_tril))
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(3)) * 4  # (50, 2)
    log_p = mixture.log_prob(z)
    assert log_p.shape == (50,) and bool(torch.isfinite(log_p).all())
    torch.testing.assert_close(log_p, reference.log_prob(z))
    far = mixture.log_prob(mixture.means + 10.0)  # (K,)
    assert bool((mixture.log_prob(mixture.means) > far + 10).all())


def test_mixture_fit_is_seeded_on_a_subset_of_many_codes() -> None:
    codes = two_blobs(3000)[0]
    first, again = (LatentMixture.fit(codes, 2, seed=4, max_codes=500) for _ in range(2))
    assert torch.equal(first.means, again.means) and torch.equal(first.scale_tril, again.scale_tril)


def test_mixture_fits_a_small_component_of_large_unregularised_codes() -> None:
    rng = np.random.default_rng(0)
    # An autoencoder's codes (no KL pulling them to unit scale): a big cluster and 5 codes in 8 dimensions.
    codes = 30.0 * np.vstack([rng.standard_normal((500, 8)), 20.0 + rng.standard_normal((5, 8))])  # (505, 8)
    mixture = LatentMixture.fit(codes, n_components=2)
    assert bool(torch.isfinite(mixture.log_prob(torch.as_tensor(codes[:10], dtype=torch.float32))).all())


@pytest.mark.parametrize("codes", [torch.zeros(10), torch.tensor([[0.0, math.nan]] * 5),
                                   torch.tensor([[0.0, math.inf]] * 5), torch.zeros(2, 3, 4)],
                         ids=["1-D", "NaN", "inf", "3-D"])
def test_bad_codes_raise_a_data_error(codes: Tensor) -> None:
    with pytest.raises(DataError, match="finite"):
        LatentMixture.fit(codes, n_components=1)


@pytest.mark.parametrize("n_components", [0, 6, 2.5, True])
def test_impossible_component_counts_raise_a_config_error(n_components: int) -> None:
    with pytest.raises(ConfigError, match="n_components"):
        LatentMixture.fit(torch.randn(5, 2), n_components=n_components)


def test_mixture_samples_decode_near_the_codes_the_decoder_knows(vae: Run, data: PreparedData) -> None:
    mixture = fit_aggregate_posterior(vae, data.train.x, n_components=3)
    assert mixture.means.shape == (3, 4)
    images = sample_mixture(vae, mixture, 12, seed=0)
    assert images.shape == (12, 1, 8, 8)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 16.0  # the data's units
    assert torch.equal(images, sample_mixture(vae, mixture, 12, seed=0))
    assert not torch.equal(images, sample_mixture(vae, mixture, 12, seed=1))
    modes = sample_mixture(vae, mixture, 12, seed=0, temperature=0.0)  # every image a decoded component mean
    decoded_means = vae.decode(mixture.means).reshape(3, -1)  # (K, D)
    gap = torch.cdist(modes.reshape(12, -1), decoded_means).min(1).values  # (12,)
    assert float(gap.max()) < 1e-4


# ------------------------------------------------------------------------------------ maps


def plane_in_5d(n: int = 60, seed: int = 0) -> np.ndarray:
    """Points on a 2-d plane rotated into 5-d (rank 2): a 2-d PCA keeps every pairwise distance."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    flat = rng.standard_normal((n, 2)) * [3.0, 1.0]
    return np.hstack([flat, np.zeros((n, 3))]) @ rotation.T + 7.0  # (n, 5)


def pairwise(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points[:, None] - points[None], axis=-1)


def test_pca_map_keeps_the_geometry_of_planar_codes_and_is_deterministic() -> None:
    codes = plane_in_5d()
    points = maps.project(codes, "pca", 2)
    assert points.shape == (60, 2)
    np.testing.assert_allclose(pairwise(points), pairwise(codes), atol=1e-8)
    assert np.array_equal(points, maps.project(codes, "pca", 2))
    three = maps.project(codes, "pca", 3)
    assert three.shape == (60, 3)
    np.testing.assert_allclose(three[:, 2], 0.0, atol=1e-8)  # nothing left for a third axis


def test_tsne_map_keeps_two_clusters_apart_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    codes = np.vstack([rng.normal(0.0, 1.0, (30, 5)), rng.normal(20.0, 1.0, (30, 5))])  # (60, 5)
    cluster = np.repeat([0, 1], 30)
    points = maps.project(codes, "tsne", 2, seed=0)
    assert points.shape == (60, 2) and np.isfinite(points).all()
    distance = pairwise(points) + np.diag(np.full(60, np.inf))
    assert np.array_equal(cluster[distance.argmin(1)], cluster)  # every nearest neighbour is in its own cluster
    np.testing.assert_array_equal(points, maps.project(codes, "tsne", 2, seed=0))


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_codes_with_no_more_dimensions_than_the_map_are_padded_not_reduced(method: str) -> None:
    codes = np.arange(12.0).reshape(6, 2)
    np.testing.assert_array_equal(maps.project(codes, method, 2), codes)
    np.testing.assert_array_equal(maps.project(codes, method, 3), np.hstack([codes, np.zeros((6, 1))]))
    np.testing.assert_array_equal(maps.project(codes[:, :1], method, 3), np.hstack([codes[:, :1], np.zeros((6, 2))]))


def test_umap_without_its_extra_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "umap", None)  # `import umap` fails as it does without the extra
    with pytest.raises(ConfigError, match=r"vaekit\[umap\]"):
        maps.project(plane_in_5d(), "umap", 2)


@pytest.mark.slow  # numba compiles UMAP on first use: ~20 s per process
@pytest.mark.filterwarnings("ignore::UserWarning:umap")
def test_umap_map_keeps_two_clusters_apart_is_seeded_and_maps_tiny_sets() -> None:
    pytest.importorskip("umap")
    rng = np.random.default_rng(0)
    codes = np.vstack([rng.normal(0.0, 1.0, (40, 6)), rng.normal(10.0, 1.0, (40, 6))])  # (80, 6)
    cluster = np.repeat([0, 1], 40)
    points = maps.project(codes, "umap", 2, seed=0)
    assert points.shape == (80, 2) and np.isfinite(points).all()
    distance = pairwise(points) + np.diag(np.full(80, np.inf))
    assert np.array_equal(cluster[distance.argmin(1)], cluster)  # every nearest neighbour is in its own cluster
    centres = np.stack([points[cluster == c].mean(0) for c in (0, 1)])  # (2, 2)
    spread = max(np.linalg.norm(points[cluster == c] - centres[c], axis=1).max() for c in (0, 1))
    assert np.linalg.norm(centres[0] - centres[1]) > 2 * spread  # the clusters do not overlap
    np.testing.assert_array_equal(points, maps.project(codes, "umap", 2, seed=0))
    for n, dims in ((3, 2), (4, 3)):  # too few points for UMAP's spectral initialisation
        tiny = maps.project(codes[:n], "umap", dims, seed=0)
        assert tiny.shape == (n, dims) and np.isfinite(tiny).all()


@pytest.mark.parametrize(("codes", "options", "error"), [
    (np.zeros((10, 4)), {"method": "isomap"}, ConfigError),
    (np.zeros((10, 4)), {"dims": 4}, ConfigError),
    (np.zeros((10, 4)), {"dims": 1}, ConfigError),
    (np.zeros(10), {}, DataError),
    (np.zeros((2, 4)), {}, DataError),
    (np.full((10, 4), np.nan), {}, DataError),
], ids=["method", "dims=4", "dims=1", "1-D", "N<3", "NaN"])
def test_bad_map_settings_and_codes_raise_the_promised_error(codes: np.ndarray, options: dict, error: type) -> None:
    with pytest.raises(error):
        maps.project(codes, **options)


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        return np.asarray(picture.convert("RGB"))


@pytest.mark.parametrize("dims", [2, 3])
def test_saved_map_is_a_png_with_points_on_it(tmp_path: Path, dims: int) -> None:
    points = maps.project(plane_in_5d(90), "pca", dims)
    labels = np.repeat([0, 1, 2], 30)
    plain = maps.save_map(points, tmp_path / "plain.png", title="codes")
    coloured = maps.save_map(points, tmp_path / "sub" / "coloured.png", labels, ["zero", "one", "two"], title="codes")
    assert plain == tmp_path / "plain.png" and coloured.is_file()
    for path in (plain, coloured):
        pixels = read_png(path)
        assert pixels.shape == (672, 768, 3)  # 6.4 x 5.6 inches at 120 dpi
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10  # not blank
    assert not np.array_equal(read_png(plain), read_png(coloured))  # the labels colour the points
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["coloured.png", "plain.png"]  # no temps


# ------------------------------------------------------------------------------------ GIF


def gif_frames(path: Path) -> tuple[list[np.ndarray], dict]:
    """The frames (grey) and the file's info, with ``durations`` (ms) one per frame."""
    with Image.open(path) as picture:
        assert picture.format == "GIF"
        info = dict(picture.info)
        frames, durations = [], []
        for index in range(picture.n_frames):
            picture.seek(index)
            frames.append(np.asarray(picture.convert("L")))
            durations.append(picture.info["duration"])
    return frames, {**info, "durations": durations}


def test_gif_loops_forward_then_back(vae: Run, tmp_path: Path) -> None:
    levels = torch.linspace(0, 16, 5).reshape(5, 1, 1, 1).expand(5, 1, 8, 8)  # five flat images, dark to light
    frames, info = gif_frames(save_gif(vae.spec, levels, tmp_path / "path.gif", frame_ms=80))
    assert len(frames) == 2 * 5 - 2 and info["loop"] == 0
    assert info["durations"] == [80] * 8  # every frame shown once for the same time: no doubled end
    side = 8 * display_scale(vae.spec) * 2
    assert frames[0].shape == (side, side)
    brightness = [int(frame.mean()) for frame in frames]
    assert brightness == sorted(brightness[:5]) + sorted(brightness[1:4], reverse=True)  # 0 1 2 3 4 3 2 1
    assert brightness[0] < brightness[4]
    once, _ = gif_frames(save_gif(vae.spec, levels, tmp_path / "once.gif", bounce=False))
    assert len(once) == 5


def test_gif_of_table_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="tables"):
        save_gif(TABLE, torch.rand(3, 6), tmp_path / "table.gif")
    assert not (tmp_path / "table.gif").exists()


# ------------------------------------------------------------------------------------ report

FIGURES = ["Training", "Samples", "Reconstructions", "Interpolation", "Traversal", "Latent map"]


def check_self_contained(page: str, figures: list[str]) -> None:
    """Every section present and drawn, every image an inlined PNG, nothing fetched from elsewhere."""
    for title in [*figures, "Config"]:
        assert f"<h2>{title}</h2>" in page, title
    assert "not drawn" not in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == len(figures)
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))) as picture:
            assert picture.format == "PNG" and picture.width > 8
    assert "http" not in re.sub(r"<pre>.*?</pre>", "", page, flags=re.S)  # no links outside the config text


def test_report_is_one_self_contained_page(vae: Run, data: PreparedData, tmp_path: Path) -> None:
    page = build_report(vae, data.test)
    assert page.startswith("<!doctype html>")
    check_self_contained(page, FIGURES)
    assert "<h2>Metrics</h2>" not in page  # a run with no folder has no metrics file

    folder = tmp_path / "run"
    folder.mkdir()
    run_io.write_metrics(folder, {"test": {"elbo": -31.5, "active_units": 3}})
    page = build_report(dataclasses.replace(vae, path=folder), data.test)
    assert "<h2>Metrics</h2>" in page and "<th>test</th>" in page and "<th>elbo</th><td>-31.50</td>" in page


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"], ids=["corrupt", "a-list"])
def test_a_damaged_metrics_file_loses_its_section_not_the_report(vae: Run, data: PreparedData, tmp_path: Path,
                                                                 text: str) -> None:
    (tmp_path / run_io.METRICS).write_text(text)
    page = build_report(dataclasses.replace(vae, path=tmp_path), data.test)
    assert "<h2>Metrics</h2><p class='note'>not shown" in page
    check_self_contained(page, FIGURES)


def test_report_of_a_conditional_run_draws_every_figure(cvae: Run, data: PreparedData) -> None:
    check_self_contained(build_report(cvae, data.test), FIGURES)


def test_written_report_is_the_built_page_replacing_the_old_file_atomically(vae: Run, data: PreparedData,
                                                                           tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    out.write_text("old")
    assert write_report(vae, data.test, out, seed=1) == out
    assert out.read_text() == build_report(vae, data.test, seed=1)  # deterministic for a seed
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


# ------------------------------------------------------------------------------------ feature networks


def test_feature_classifier_learns_the_digits(classifier: features.FeatureClassifier, data: PreparedData) -> None:
    score = features.accuracy(classifier, unit(data.test.x), torch.as_tensor(data.test.y))
    assert score > 0.8  # chance is 0.1
    assert classifier.features(unit(data.test.x[:5])).shape == (5, 128)


def test_saved_classifier_loads_with_the_same_features(classifier: features.FeatureClassifier, data: PreparedData,
                                                       tmp_path: Path) -> None:
    folder = features.save_classifier(classifier, tmp_path / "clf", {"data": "digits", "test_accuracy": 0.97})
    net, header = features.load_classifier(folder)
    assert header["n_classes"] == 10 and header["channels"] == 1 and header["data"] == "digits"
    x = unit(data.test.x[:50])
    with torch.no_grad():
        assert torch.equal(net(x), classifier(x))
    network = features.load_feature_network(folder)
    with torch.no_grad():
        torch.testing.assert_close(network(x, batch_size=7), classifier.features(x))  # batches differ in rounding
    assert "classifier" in network.description and "digits" in network.description and "0.97" in network.description


class TinyExtractor(torch.nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x.mean((1, 2, 3))[:, None], x.amax((1, 2, 3))[:, None]], 1)  # (N, 2)


@pytest.mark.parametrize("make", [torch.jit.script, lambda m: torch.jit.trace(m, torch.rand(2, 1, 8, 8))],
                         ids=["script", "trace"])
def test_torchscript_feature_network_loads_and_names_itself(make, tmp_path: Path) -> None:
    path = tmp_path / "extractor.pt"
    make(TinyExtractor()).save(str(path))
    network = features.load_feature_network(path)
    x = torch.rand(9, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(network(x, batch_size=4), TinyExtractor()(x))
    assert "TorchScript" in network.description and "extractor.pt" in network.description


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export")
def test_onnx_feature_network_loads(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    path = tmp_path / "extractor.onnx"
    torch.onnx.export(TinyExtractor(), (torch.rand(2, 1, 8, 8),), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "n"}})
    network = features.load_feature_network(path)
    x = torch.rand(9, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(network(x, batch_size=4), TinyExtractor()(x))
    assert "ONNX" in network.description


def test_unusable_feature_networks_raise_the_promised_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        features.load_feature_network(tmp_path / "missing.pt")
    (tmp_path / "extractor.txt").write_text("features")
    with pytest.raises(ConfigError, match=r"\.pt or an \.onnx"):
        features.load_feature_network(tmp_path / "extractor.txt")
    (tmp_path / "broken.pt").write_bytes(b"not a model")
    with pytest.raises(DataError, match="not a TorchScript file"):
        features.load_feature_network(tmp_path / "broken.pt")
    torch.save(TinyExtractor(), tmp_path / "pickled.pt")  # a pickled module is not TorchScript
    with pytest.raises(DataError, match="not a TorchScript file"):
        features.load_feature_network(tmp_path / "pickled.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="delete it"):
        features.load_feature_network(tmp_path / "empty")


def test_a_corrupt_cached_classifier_or_onnx_file_is_a_data_error(classifier: features.FeatureClassifier,
                                                                   tmp_path: Path) -> None:
    folder = features.save_classifier(classifier, tmp_path / "cached", {"data": "digits"})
    (folder / features.FEATURES_WEIGHTS).write_bytes(b"truncated")  # e.g. a disk filled mid-copy
    with pytest.raises(DataError, match="delete it"):
        features.load_feature_network(folder)
    pytest.importorskip("onnxruntime")
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(DataError, match="broken.onnx"):
        features.load_feature_network(tmp_path / "broken.onnx")


def test_training_the_classifier_leaves_the_global_rng_alone(data: PreparedData) -> None:
    before = torch.random.get_rng_state()
    first = features.train_classifier(unit(data.train.x[:16]), torch.as_tensor(data.train.y[:16]), 10, epochs=1)
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(123)  # the caller's global state does not change the seeded weights either
    again = features.train_classifier(unit(data.train.x[:16]), torch.as_tensor(data.train.y[:16]), 10, epochs=1)
    for (name, value), other in zip(first.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(value, other), name


def test_classifier_folder_is_one_per_data_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    folder = features.classifier_folder(DataConfig(source="digits"))
    assert folder == features.classifier_folder(DataConfig(source="digits"))
    assert folder.parent == tmp_path / "feature-classifiers" and folder.name.startswith("digits-")
    assert folder != features.classifier_folder(DataConfig(source="digits", split_seed=1))
    assert folder != features.classifier_folder(DataConfig(source="digits", binarize=True))


@pytest.mark.parametrize("setting", [{"num_workers": 2}, {"in_memory": "no"}, {"max_samples": 100},
                                     {"val_fraction": 0.3}])
def test_classifier_folder_ignores_how_the_batches_are_served(setting: dict, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    assert features.classifier_folder(DataConfig(source="digits", **setting)) == \
        features.classifier_folder(DataConfig(source="digits"))


def test_default_feature_network_is_trained_once_then_read_from_the_cache(
        data: PreparedData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    calls, real = [], features.train_classifier

    def counting(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(features, "train_classifier", counting)
    config = DataConfig(source="digits")
    first = features.default_feature_network(config, unit, epochs=1)
    assert calls == [10]  # one class per digit
    assert (features.classifier_folder(config) / features.FEATURES_JSON).is_file()
    second = features.default_feature_network(DataConfig(source="digits", max_samples=50), unit, epochs=1)
    assert calls == [10]  # not trained again
    x = unit(data.test.x[:20])
    assert torch.equal(first(x), second(x))
    assert "test accuracy" in second.description


def test_default_feature_network_needs_labels(data: PreparedData, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    images = tmp_path / "images.npy"
    np.save(images, data.test.x[:20])
    with pytest.raises(DataError, match="labelled"):
        features.default_feature_network(DataConfig(source=str(images)), unit)


# ------------------------------------------------------------------------------------ sample quality


def check_quality(report, n: int) -> None:
    assert math.isfinite(report.fid) and report.fid >= 0.0
    assert math.isfinite(report.kid_mean)
    assert 0.0 <= report.precision <= 1.0 and 0.0 <= report.recall <= 1.0
    assert report.n_fake == n


@pytest.mark.parametrize("sampler", ["prior", "gmm"])
def test_generated_quality_with_the_default_classifier(vae: Run, data: PreparedData, cache: Path, sampler: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAEKIT_DATA", str(cache))  # shared by both samplers: the classifier is trained once
    report = generated_quality(vae, data.train, data.test, n=200, sampler=sampler, components=3)
    check_quality(report, 200)
    assert "vaekit classifier" in report.features and "digits" in report.features
    assert (features.classifier_folder(vae.config.data) / features.FEATURES_JSON).is_file()


def test_generated_quality_is_seeded_and_takes_a_given_network(vae: Run, cvae: Run, data: PreparedData,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "extractor.pt"
    torch.jit.script(TinyExtractor()).save(str(path))
    first = generated_quality(vae, data.train, data.test, n=150, seed=3, features=path)
    check_quality(first, 150)
    assert "extractor.pt" in first.features
    assert first == generated_quality(vae, data.train, data.test, n=150, seed=3, features=path)
    mixture = generated_quality(vae, data.train, data.test, n=150, seed=3, features=path, sampler="gmm", components=3)
    check_quality(mixture, 150)
    assert mixture.fid != first.fid  # the codes come from the fitted mixture, not the prior
    conditional = generated_quality(cvae, data.train, data.test, n=150, features=path, sampler="gmm", components=3)
    check_quality(conditional, 150)


def test_generated_quality_refuses_tables_and_unknown_samplers(vae: Run, data: PreparedData) -> None:
    table = Run(model=build_model(TABLE, ModelConfig(network="mlp", latent_dim=2, hidden=[8])), spec=TABLE,
                config=vae.config)
    with pytest.raises(DataError, match="images"):
        generated_quality(table, data.train, data.test, n=10)
    with pytest.raises(ConfigError, match="sampler"):
        generated_quality(vae, data.train, data.test, n=10, sampler="flow")


def test_attribute_vectors_and_analogies_refuse_a_conditional_run(cvae: Run, data: PreparedData) -> None:
    x = data.test.x[:6]
    with pytest.raises(DataError, match="unconditional"):
        explore.shift_attribute(cvae, x, [0, 1], [2, 3], x[:2])
    with pytest.raises(DataError, match="unconditional"):
        explore.analogy(cvae, x[0], x[1], x[2:4])


# ------------------------------------------------------------------------------- figure items


def test_pick_items_is_a_seeded_sorted_choice_or_everything() -> None:
    from vaekit.applications.visualize import pick_items

    chosen = pick_items(1797, 16, seed=0)
    assert len(set(chosen.tolist())) == 16 and (np.diff(chosen) > 0).all()
    assert chosen.tolist() == pick_items(1797, 16, seed=0).tolist()
    assert chosen.tolist() != pick_items(1797, 16, seed=1).tolist()
    assert pick_items(5, 16, seed=0).tolist() == [0, 1, 2, 3, 4], "all of them, in file order, when they fit"


def test_describe_items_names_items_and_labels() -> None:
    from vaekit.applications.visualize import describe_items, item_captions

    labels = np.array([0, 0, 1, 2])
    assert describe_items([3, 0], 4, labels, ["zero", "one", "two"]) == "items 3, 0 (labels two, zero)"
    assert describe_items([2], 4) == "item 2"
    assert describe_items(range(40), 40) == "all 40 items, in file order"
    assert describe_items(range(0, 80, 2), 100, limit=3) == "items 0, 2, 4, ... (40 in all)"
    assert item_captions([3, 2], labels) == ["#3: 2", "#2: 1"]


def test_metrics_are_formatted_to_four_significant_digits() -> None:
    from vaekit.applications.report import format_metric

    assert [format_metric(v) for v in (40.27914, 0.908, -0.029624, 69383.3, 3.14159e-5, 0.0, 7, "digits")] == [
        "40.28", "0.9080", "-0.02962", "69383", "3.142e-05", "0.0", "7", "digits"]
