"""Restoration as posterior inference: the masked log-likelihood every likelihood family offers, the
operators (Mask, AddedNoise, Downsample), ``parse_mask``, ``restore`` with each method, and ``psnr``.

One VAE on the bundled 8x8 digits is trained once for the module (40 short epochs, a few seconds);
it has to be good enough that each method beats filling the gaps with the training mean image.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor
from torch import distributions as td

from vaekit.api import Run
from vaekit.applications.restore import AddedNoise, Downsample, Mask, parse_mask, psnr, restore
from vaekit.config import resolve_config
from vaekit.data.loaders import PreparedData, prepare_data
from vaekit.distributions.likelihoods import LIKELIHOODS, CategoricalFamily, DiscretizedLogisticFamily
from vaekit.errors import ConfigError, DataError
from vaekit.models import build_model

TINY = ["data.source=digits", "model.hidden=[128]", "model.latent_dim=8", "train.batch_size=64",
        "train.device=cpu", "train.progress=false", "eval.enabled=false"]
IMAGE = (1, 8, 8)
N = 64  # restored test images
MASK_METHODS = ["pseudo-gibbs", "mwg", "importance", "optimize"]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------- masked log-likelihood
EVENTS = [(1, 4, 3), (6,)]  # an image (C, H, W) and a table row (D,)
FAMILIES = ["bernoulli", "continuous_bernoulli", "gaussian", "gaussian_learned", "laplace", "laplace_learned",
            "discretized_logistic", "categorical"]


def family_for(name: str, event: tuple[int, ...]):
    if name == "discretized_logistic":
        return DiscretizedLogisticFamily(len(event), n_levels=17)
    if name == "categorical":
        return CategoricalFamily(len(event), n_categories=17)
    kwargs = {"scale": 0.5} if name in ("gaussian", "laplace") else {}
    return LIKELIHOODS.get(name)(len(event), **kwargs)


def levels(batch: int, event: tuple[int, ...], seed: int = 11) -> Tensor:
    """Values on 17 levels in [0, 1], valid data for every family here."""
    return torch.randint(0, 17, (batch, *event), generator=gen(seed)) / 16.0


def reference_log_prob(name: str, raw: Tensor, x: Tensor, lead: tuple[int, ...]) -> Tensor | None:
    """Per-value log p from torch.distributions, where torch has the family: (*lead, *event)."""
    axis = len(lead)
    first = raw.select(axis, 0) if name != "categorical" else None
    if name == "bernoulli":
        return td.Bernoulli(logits=first, validate_args=False).log_prob(x.expand_as(first))
    if name == "gaussian":
        return td.Normal(first, 0.5).log_prob(x.expand_as(first))
    if name == "laplace":
        return td.Laplace(first, 0.5).log_prob(x.expand_as(first))
    if name == "categorical":
        logits = raw.movedim(axis, -1)  # (*lead, *event, K)
        return td.Categorical(logits=logits).log_prob((x * 16).round().long().expand(logits.shape[:-1]))
    return None


@pytest.mark.parametrize("event", EVENTS, ids=["image", "table"])
@pytest.mark.parametrize("lead", [(3,), (2, 3)], ids=["batch", "samples-batch"])
@pytest.mark.parametrize("name", FAMILIES)
def test_masked_log_prob_sums_the_observed_elements(name: str, lead: tuple[int, ...], event: tuple[int, ...]) -> None:
    family = family_for(name, event)
    raw = torch.randn(*lead, family.n_params, *event, generator=gen(5))  # (*lead, P, *event)
    x = levels(lead[-1], event)  # (B, *event): broadcast against the sample axis
    px = family(raw)
    elements = px.log_prob_elements(x)  # (*lead, *event)
    assert elements.shape == (*lead, *event)
    reference = reference_log_prob(name, raw, x, lead)
    if reference is not None:
        torch.testing.assert_close(elements, reference)
    flat = elements.flatten(len(lead))  # (*lead, E)
    torch.testing.assert_close(px.log_prob(x), flat.sum(-1))  # mask=None: every value counts

    mask = torch.rand(lead[-1], *event, generator=gen(6)) > 0.4  # (B, *event)
    expected = (flat * mask.flatten(1)).sum(-1)
    torch.testing.assert_close(px.log_prob(x, mask), expected)
    torch.testing.assert_close(px.log_prob(x, torch.ones_like(mask)), px.log_prob(x))
    assert torch.equal(px.log_prob(x, torch.zeros_like(mask)), torch.zeros(lead))
    shared = mask[:1]  # (1, *event): one mask for every sample
    torch.testing.assert_close(px.log_prob(x, shared), (flat * shared.flatten(1)).sum(-1))

    holes = torch.where(mask, x, torch.full_like(x, math.nan))  # missing values are NaN
    masked = px.log_prob(holes, mask)
    assert torch.isfinite(masked).all()
    torch.testing.assert_close(masked, expected)


@pytest.mark.parametrize("name", ["bernoulli", "gaussian", "gaussian_learned", "discretized_logistic"])
def test_masked_log_prob_has_finite_gradients_where_values_are_missing(name: str) -> None:
    family = family_for(name, IMAGE)
    raw = torch.randn(2, family.n_params, *IMAGE, generator=gen(1), requires_grad=True)
    x = levels(2, IMAGE)
    mask = torch.rand(2, *IMAGE, generator=gen(2)) > 0.5
    family(raw).log_prob(torch.where(mask, x, torch.full_like(x, math.nan)), mask).sum().backward()
    assert torch.isfinite(raw.grad).all()


# ------------------------------------------------------------------------------------ model


@pytest.fixture(scope="module")
def vae(digits_vae: Run) -> Run:
    """The session's digits VAE (tests/conftest.py)."""
    return digits_vae


@pytest.fixture(scope="module")
def data(vae: Run) -> PreparedData:
    return prepare_data(vae.config.data)


@pytest.fixture(scope="module")
def truth(vae: Run, data: PreparedData) -> Tensor:
    """The first N held-out digits in model space: (N, 1, 8, 8) in [0, 1]."""
    return vae.to_model_space(data.test.x[:N])


@pytest.fixture(scope="module")
def mean_image(vae: Run, data: PreparedData) -> Tensor:
    """The baseline: the training set's mean image, (1, 1, 8, 8)."""
    return vae.to_model_space(data.train.x).mean(0, keepdim=True)


# ------------------------------------------------------------------------------- inpainting


@pytest.mark.parametrize("method", MASK_METHODS)
@pytest.mark.parametrize("text", ["half", "random:0.5"])
def test_inpainting_beats_the_mean_image_and_keeps_what_was_observed(vae: Run, truth: Tensor, mean_image: Tensor,
                                                                    text: str, method: str) -> None:
    mask = parse_mask(text, IMAGE, N, seed=1)
    y = mask.observe(truth)
    restored = restore(vae.model, y, mask, method, steps=50, k=50, seed=0)
    assert restored.shape == truth.shape and torch.isfinite(restored).all()
    missing = mask.unknown(truth.shape)
    observed = ~missing
    assert torch.equal(restored[observed], truth[observed]), "observed pixels come back bit-identical"
    ours = psnr(restored, truth, missing).mean()
    baseline = psnr(mean_image.expand_as(truth), truth, missing).mean()
    assert ours > baseline + 0.5, f"{method}: {ours:.2f} dB vs {baseline:.2f} dB for the mean image"


@pytest.mark.parametrize("method", MASK_METHODS)
def test_restoration_is_seeded(vae: Run, truth: Tensor, method: str) -> None:
    mask = parse_mask("random:0.5", IMAGE, 16, seed=3)
    y = mask.observe(truth[:16])
    first = restore(vae.model, y, mask, method, steps=10, k=10, seed=4)
    assert torch.equal(first, restore(vae.model, y, mask, method, steps=10, k=10, seed=4))
    if method != "optimize":  # the samplers draw; the optimiser does not
        assert not torch.equal(first, restore(vae.model, y, mask, method, steps=10, k=10, seed=5))


def test_auto_is_pseudo_gibbs_for_a_mask_and_optimize_otherwise(vae: Run, truth: Tensor) -> None:
    mask = parse_mask("half", IMAGE, 8)
    y = mask.observe(truth[:8])
    assert torch.equal(restore(vae.model, y, mask, steps=10, seed=2),
                       restore(vae.model, y, mask, "pseudo-gibbs", steps=10, seed=2))
    noise = AddedNoise(0.3)
    noisy = noise.observe(truth[:8], gen(0))
    by_default = restore(vae.model, noisy, noise, steps=10)
    assert torch.equal(by_default, restore(vae.model, noisy, noise, "optimize", steps=10))


def test_per_sample_masks_follow_their_samples_across_batches(vae: Run, truth: Tensor) -> None:
    mask = parse_mask("random:0.5", IMAGE, 20, seed=8)
    y = mask.observe(truth[:20])
    whole = restore(vae.model, y, mask, "optimize", steps=20)
    split = restore(vae.model, y, mask, "optimize", steps=20, batch_size=7)  # samples do not interact
    torch.testing.assert_close(split, whole, rtol=1e-4, atol=1e-4)
    observed = ~mask.unknown(y.shape)
    assert torch.equal(split[observed], truth[:20][observed])


def test_optimize_ignores_whatever_the_missing_values_hold(vae: Run, truth: Tensor) -> None:
    mask = parse_mask("half", IMAGE, 8)
    with_nan = torch.where(mask.observed, truth[:8], torch.tensor(math.nan))
    restored = restore(vae.model, with_nan, mask, "optimize", steps=20)
    assert torch.isfinite(restored).all()
    torch.testing.assert_close(restored, restore(vae.model, mask.observe(truth[:8]), mask, "optimize", steps=20))


# ------------------------------------------------------------------- denoising, super-resolution


def test_denoising_improves_on_the_noisy_observation(vae: Run, truth: Tensor) -> None:
    noise = AddedNoise(0.3)
    y = noise.observe(truth, gen(0))
    assert abs(float((y - truth).std()) - 0.3) < 0.02, "the operator adds noise of the stated sigma"
    restored = restore(vae.model, y, noise, "optimize", steps=100)
    assert psnr(restored, truth).mean() > psnr(y, truth).mean() + 2.0
    assert psnr(restored, truth).mean() > psnr(y.clamp(0, 1), truth).mean()


def test_super_resolution_is_consistent_and_beats_nearest_upsampling(vae: Run, truth: Tensor) -> None:
    operator = Downsample(2)
    y = operator.observe(truth)
    assert y.shape == (N, 1, 4, 4)
    torch.testing.assert_close(y[:, :, 0, 0], truth[:, :, :2, :2].mean((-2, -1)))
    restored = restore(vae.model, y, operator, "optimize", steps=100)
    assert restored.shape == truth.shape
    torch.testing.assert_close(operator.apply(restored), y, rtol=0, atol=1e-5)
    assert psnr(restored, truth).mean() > psnr(operator.upsample(y), truth).mean() + 1.0
    loose = Downsample(2, consistent=False)
    free = restore(vae.model, y, loose, "optimize", steps=100)
    assert not torch.allclose(loose.apply(free), y, atol=1e-3), "without consistency only the model speaks"


@pytest.mark.parametrize("method", ["pseudo-gibbs", "mwg", "importance"])
@pytest.mark.parametrize("operator", [AddedNoise(0.3), Downsample(2)], ids=["noise", "downsample"])
def test_sampling_methods_need_a_mask(vae: Run, truth: Tensor, operator, method: str) -> None:
    with pytest.raises(ConfigError, match="mask"):
        restore(vae.model, operator.observe(truth[:4], gen(0)), operator, method)


@pytest.mark.parametrize("arguments", [{"method": "gibbs"}, {"method": "optimize", "steps": 0},
                                       {"method": "importance", "k": 0}])
def test_bad_restore_arguments_are_config_errors(vae: Run, truth: Tensor, arguments: dict) -> None:
    mask = parse_mask("half", IMAGE, 4)
    with pytest.raises(ConfigError):
        restore(vae.model, mask.observe(truth[:4]), mask, **arguments)


def test_a_deterministic_code_restores_only_by_optimisation(truth: Tensor) -> None:
    config = resolve_config(preset="ae", overrides=TINY)
    torch.manual_seed(0)
    model = build_model(prepare_data(config.data).spec, config.model).eval()
    mask = parse_mask("half", IMAGE, 4)
    y = mask.observe(truth[:4])
    for method in ("pseudo-gibbs", "mwg", "importance"):
        with pytest.raises(ConfigError, match="optimize"):
            restore(model, y, mask, method)
    assert torch.isfinite(restore(model, y, mask, "optimize", steps=5)).all()


# ------------------------------------------------------------------------------- parse_mask


def test_half_and_rect_masks() -> None:
    half = parse_mask("half", (3, 8, 6), 5).observed
    assert half.shape == (1, 1, 8, 6)
    assert half[..., :4, :].all() and not half[..., 4:, :].any()
    rect = parse_mask("rect", (1, 8, 8), 5).observed[0, 0]
    missing = ~rect
    assert missing.sum() == 16 and missing[2:6, 2:6].all(), "a centred rectangle of half the height and width"


def test_random_masks_hide_about_that_fraction_per_sample_and_are_seeded() -> None:
    mask = parse_mask("random:0.3", (3, 16, 16), 200, seed=2).observed
    assert mask.shape == (200, 1, 16, 16), "a pixel is missing in every channel"
    assert abs(float((~mask).float().mean()) - 0.3) < 0.01
    assert not torch.equal(mask[0], mask[1]), "each sample has its own mask"
    assert torch.equal(mask, parse_mask("random:0.3", (3, 16, 16), 200, seed=2).observed)
    assert not torch.equal(mask, parse_mask("random:0.3", (3, 16, 16), 200, seed=3).observed)
    table = parse_mask("random:0.5", (40,), 50, seed=0).observed
    assert table.shape == (50, 40) and abs(float((~table).float().mean()) - 0.5) < 0.03


@pytest.mark.parametrize("text", ["random:0", "random:1", "random:1.5", "random:-0.1", "random:lots", "random:",
                                  "bottom", "mask.jpg", ""])
def test_bad_mask_texts_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_mask(text, IMAGE, 4)


@pytest.mark.parametrize("text", ["half", "rect"])
def test_tables_have_no_halves(text: str) -> None:
    with pytest.raises(ConfigError, match="random"):
        parse_mask(text, (12,), 4)


def write_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path


def test_a_png_mask_black_is_missing(tmp_path: Path) -> None:
    picture = np.full((8, 8), 255)
    picture[1:3, 4:7] = 0
    picture[6, 0] = 20  # dark enough to be missing
    mask = parse_mask(str(write_png(tmp_path / "holes.png", picture)), (3, 8, 8), 5)
    assert mask.observed.shape == (1, 1, 8, 8)
    assert torch.equal(mask.observed[0, 0], torch.from_numpy(picture >= 128))
    with pytest.raises(ConfigError, match="image"):
        parse_mask(str(tmp_path / "holes.png"), (64,), 5)


def test_bad_png_masks_are_data_errors(tmp_path: Path) -> None:
    wrong = write_png(tmp_path / "wrong.png", np.zeros((16, 8)))
    with pytest.raises(DataError, match="wrong.png"):
        parse_mask(str(wrong), IMAGE, 4)
    blank = write_png(tmp_path / "blank.png", np.full((8, 8), 255))
    with pytest.raises(DataError, match="hides nothing"):
        parse_mask(str(blank), IMAGE, 4)
    with pytest.raises(DataError, match="absent.png"):
        parse_mask(str(tmp_path / "absent.png"), IMAGE, 4)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not a png at all")
    with pytest.raises(DataError, match="garbage.png"):
        parse_mask(str(garbage), IMAGE, 4)


# ------------------------------------------------------------------------------ operators, psnr


def test_mask_operator_parts() -> None:
    observed = torch.rand(6, 1, 4, 4, generator=gen(0)) > 0.5
    mask = Mask(observed)
    x = torch.rand(6, 1, 4, 4, generator=gen(1))
    y = mask.observe(x)
    assert torch.equal(y, torch.where(observed, x, torch.zeros(())))
    assert torch.equal(mask.take(slice(2, 4)).observed, observed[2:4])
    shared = Mask(observed[:1])
    assert shared.take(slice(2, 4)) is shared, "one mask for all samples stays one"
    picture = mask.picture(y, x.shape)
    assert torch.equal(picture[~observed], torch.full_like(picture[~observed], 0.5))
    assert torch.equal(mask.unknown(x.shape), ~observed)


def test_psnr_in_decibels() -> None:
    truth = torch.zeros(3, 1, 4, 4)
    estimate = truth + 0.1
    torch.testing.assert_close(psnr(estimate, truth), torch.full((3,), 20.0))
    torch.testing.assert_close(psnr(estimate * 16, truth, data_range=16.0), torch.full((3,), 20.0))
    where = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    where[..., 0, 0] = True
    off = estimate.clone()
    off[..., 1:, :] = 0.9  # errors outside ``where`` do not count
    torch.testing.assert_close(psnr(off, truth, where), torch.full((3,), 20.0))
    assert bool((psnr(truth, truth) > 100).all()), "a perfect estimate: very high, not infinite"
