"""PSNR and SSIM of reconstructions: hand-computed cases everywhere, and the same numbers as
scikit-image on random and real images where scikit-image is installed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from sklearn.datasets import load_digits

from vaekit.errors import DataError
from vaekit.evaluation.reconstruction import psnr, ssim


def digits() -> torch.Tensor:
    """Eight handwritten digits (8, 1, 32, 32) in [0, 1], upscaled from scikit-learn's 8x8."""
    small = torch.from_numpy(load_digits().images[:8] / 16.0)[:, None]  # (8, 1, 8, 8)
    return F.interpolate(small, size=(32, 32), mode="bilinear", align_corners=False).clamp(0, 1)


def drawings() -> torch.Tensor:
    """Two colour drawings (2, 3, 40, 48) in [0, 1]: shapes and lines on a gradient."""
    pictures = []
    for seed in range(2):
        rng = np.random.default_rng(seed)
        picture = Image.fromarray((np.linspace(0, 255, 48)[None, :, None] * np.ones((40, 1, 3))).astype(np.uint8))
        draw = ImageDraw.Draw(picture)
        for _ in range(6):
            box = sorted(rng.integers(0, 40, 2).tolist()), sorted(rng.integers(0, 48, 2).tolist())
            draw.ellipse((box[1][0], box[0][0], box[1][1], box[0][1]), fill=tuple(rng.integers(0, 256, 3).tolist()))
            draw.line(tuple(rng.integers(0, 40, 4).tolist()), fill=tuple(rng.integers(0, 256, 3).tolist()), width=2)
        pictures.append(torch.from_numpy(np.asarray(picture) / 255.0).permute(2, 0, 1))
    return torch.stack(pictures)


def degraded(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The images blurred a little and with noise added, clipped to [0, 1]."""
    noise = 0.1 * torch.randn(images.shape, generator=torch.Generator().manual_seed(seed), dtype=images.dtype)
    blurred = F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return (blurred + noise).clamp(0, 1)


def random_images() -> torch.Tensor:
    return torch.rand(3, 3, 24, 17, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


PAIRS = {
    "random": lambda: (degraded(random_images()), random_images(), 1.0),
    "digits": lambda: (degraded(digits()), digits(), 1.0),
    "drawings": lambda: (degraded(drawings()), drawings(), 1.0),
    "drawings-255": lambda: (255 * degraded(drawings()), 255 * drawings(), 255.0),
}


def test_identical_images_have_ssim_one_and_the_capped_psnr() -> None:
    images = drawings()
    torch.testing.assert_close(ssim(images, images), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(psnr(images, images), torch.full((2,), 120.0))


@pytest.mark.parametrize("offset, data_range", [(0.1, 1.0), (0.02, 1.0), (5.0, 255.0)])
def test_a_constant_offset_has_psnr_20_log10_range_over_offset(offset: float, data_range: float) -> None:
    truth = data_range * digits()
    expected = torch.full((8,), 20 * math.log10(data_range / offset))
    torch.testing.assert_close(psnr(truth + offset, truth, data_range=data_range), expected)


def test_ssim_of_a_constant_offset_is_its_luminance_term() -> None:
    """Shifting a constant image by d leaves the structure term at 1 and the luminance term
    (2 mu (mu + d) + C1) / (mu^2 + (mu + d)^2 + C1)."""
    truth, c1 = torch.full((1, 1, 16, 16), 0.5), 0.01**2
    expected = (2 * 0.5 * 0.7 + c1) / (0.5**2 + 0.7**2 + c1)
    torch.testing.assert_close(ssim(truth + 0.2, truth), torch.tensor([expected], dtype=torch.float64))


def test_ssim_falls_as_the_degradation_grows() -> None:
    images = digits()
    scores = [ssim(images + scale * (degraded(images) - images), images).mean() for scale in (0.0, 0.5, 1.0)]
    assert scores[0] > scores[1] > scores[2]


@pytest.mark.parametrize("estimate, truth", [(torch.zeros(2, 1, 10, 32), torch.zeros(2, 1, 10, 32)),
                                             (torch.zeros(2, 1, 16, 16), torch.zeros(2, 3, 16, 16)),
                                             (torch.zeros(16, 16), torch.zeros(16, 16))])
def test_ssim_of_images_it_cannot_score_is_refused(estimate: torch.Tensor, truth: torch.Tensor) -> None:
    with pytest.raises(DataError, match="ssim"):
        ssim(estimate, truth)


@pytest.mark.parametrize("name", PAIRS)
def test_the_numbers_are_scikit_image_numbers(name: str) -> None:
    metrics = pytest.importorskip("skimage.metrics")
    estimate, truth, data_range = PAIRS[name]()
    ours_ssim = ssim(estimate, truth, data_range)
    ours_psnr = psnr(estimate.double(), truth.double(), data_range=data_range)
    for index, (guess, image) in enumerate(zip(estimate.double().numpy(), truth.double().numpy(), strict=True)):
        reference_ssim = metrics.structural_similarity(guess, image, data_range=data_range, channel_axis=0,
                                                       gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        reference_psnr = metrics.peak_signal_noise_ratio(image, guess, data_range=data_range)
        assert abs(ours_ssim[index].item() - reference_ssim) < 1e-4
        assert abs(ours_psnr[index].item() - reference_psnr) < 1e-4
