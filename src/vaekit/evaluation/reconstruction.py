"""Reconstruction quality of images, per image and batched in torch: PSNR and SSIM.

Both agree with scikit-image (``peak_signal_noise_ratio``; ``structural_similarity`` with
``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``), which
tests/unit/test_reconstruction.py checks to 1e-4 where scikit-image is installed (scikit-image 0.26:
SSIM within 1e-15, PSNR within 2e-6 dB, its MSE being float32 here). SSIM averages over the
positions where the window fits inside the image, as scikit-image does (it crops 5 pixels).

``psnr`` is the one PSNR of vaekit; ``vaekit.applications.restore`` scores restorations with it.

:func:`reconstruction_scores` judges a model's reconstructions of held-out images (``psnr`` and
``ssim`` in metrics.json). Both are taken on a [0, 1] scale of the data's own units
(:class:`UnitScale`): data units / the format's full-scale level when the run scales by it
(``data.scale=unit``: 255 for 8-bit images, 16 for digits), else (standardised or unscaled images)
the span from the least to the greatest value of the held-out images. ``data_range`` is 1 on that
scale, so a PSNR is against the format's full scale, or the held-out images' own span. The truth is
the input as the model reads it (binarised when ``data.binarize`` is set); rFID
(``vaekit.applications.generate.reconstruction_fid``) maps its images to [0, 1] the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from vaekit.errors import DataError

if TYPE_CHECKING:
    from vaekit.data.spec import DataSpec

MIN_MSE = 1e-12  # the floor that keeps the PSNR of a perfect estimate finite, so batch means stay finite
WINDOW = 11  # Wang et al. 2004: an 11x11 Gaussian window of standard deviation 1.5
SIGMA = 1.5
K1, K2 = 0.01, 0.03  # the constants of C1 = (K1 * range)^2 and C2 = (K2 * range)^2


def psnr(estimate: Tensor, truth: Tensor, where: Tensor | None = None, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio per sample, 10 log10(range^2 / MSE) in dB.

    Parameters
    ----------
    estimate, truth
        Samples (N, ...) of the same shape.
    where
        Boolean mask broadcastable to the samples: only these values count (all by default), as for
        the unknown pixels of an inpainting.
    data_range
        The span of the values (1 for images in [0, 1], 255 for bytes).

    Returns
    -------
    Tensor
        (N,) in dB. The MSE is floored at 1e-12, so a perfect estimate gives
        10 log10(range^2 / 1e-12) (120 dB for range 1), not infinity as scikit-image does.
    """
    error = (estimate.float() - truth.float()).square()
    if where is None:
        mse = error.flatten(1).mean(1)
    else:
        where = where.expand_as(error).flatten(1).float()
        mse = (error.flatten(1) * where).sum(1) / where.sum(1).clamp_min(1)
    return 10 * torch.log10(data_range**2 / mse.clamp_min(MIN_MSE))


def gaussian_window(dtype: torch.dtype, device: torch.device) -> Tensor:
    """The 1-D Gaussian (WINDOW,), normalised to sum 1 over the window, as scipy truncates it."""
    offsets = torch.arange(WINDOW, dtype=torch.float64) - WINDOW // 2
    weights = torch.exp(-0.5 * (offsets / SIGMA) ** 2)
    return (weights / weights.sum()).to(dtype=dtype, device=device)


def ssim(estimate: Tensor, truth: Tensor, data_range: float = 1.0) -> Tensor:
    """Structural similarity per image, Wang et al. 2004, "Image Quality Assessment: From Error
    Visibility to Structural Similarity", eq. 13 with local statistics from an 11x11 Gaussian window
    (sigma 1.5), averaged over the positions where the window lies inside the image and, for several
    channels, over the channels.

    Parameters
    ----------
    estimate, truth
        Images (N, C, H, W) of the same shape, H and W at least 11.
    data_range
        The span of the values (1 for images in [0, 1], 255 for bytes).

    Returns
    -------
    Tensor
        (N,), 1 for identical images; in float64 (the local variances are differences of near-equal
        moments, which float32 loses on smooth images).
    """
    if estimate.shape != truth.shape or estimate.dim() != 4:
        raise DataError(f"ssim: got shapes {tuple(estimate.shape)} and {tuple(truth.shape)}: expected two "
                        "(N, C, H, W) image batches of the same shape")
    if min(truth.shape[-2:]) < WINDOW:
        raise DataError(f"ssim: images of {tuple(truth.shape[-2:])} pixels: expected at least {WINDOW}x{WINDOW}")
    x, y = estimate.double(), truth.double()
    channels = x.shape[1]
    window = gaussian_window(x.dtype, x.device)
    rows = window.view(1, 1, WINDOW, 1).expand(channels, 1, WINDOW, 1)
    columns = window.view(1, 1, 1, WINDOW).expand(channels, 1, 1, WINDOW)

    def local_mean(image: Tensor) -> Tensor:
        """The Gaussian-weighted mean around every position the window fits (N, C, H-10, W-10)."""
        return F.conv2d(F.conv2d(image, rows, groups=channels), columns, groups=channels)

    mean_x, mean_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mean_x.square()
    var_y = local_mean(y * y) - mean_y.square()
    cov = local_mean(x * y) - mean_x * mean_y
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    similarity = ((2 * mean_x * mean_y + c1) * (2 * cov + c2)
                  / ((mean_x.square() + mean_y.square() + c1) * (var_x + var_y + c2)))  # (N, C, H-10, W-10)
    return similarity.flatten(1).mean(1)


@dataclass(frozen=True)
class UnitScale:
    """Images in data units onto [0, 1]: (x - low) / (high - low), the scale that PSNR (range 1),
    SSIM and rFID's feature network read."""

    low: float
    high: float

    def __call__(self, images: Tensor) -> Tensor:
        return (images.float() - self.low) / max(self.high - self.low, 1e-8)


def unit_scale(spec: DataSpec, images: Tensor, model_space: bool = True, batch_size: int = 256) -> UnitScale:
    """0 to the format's full-scale level when the run scales by it (as figures and FID's feature
    network see images), else the least to the greatest value of ``images`` (N, C, H, W; in model
    space, or in data units with ``model_space=False``) in data units."""
    if spec.max_level:
        return UnitScale(0.0, float(spec.max_level))
    low, high = float("inf"), float("-inf")
    for part in images.split(batch_size):
        values = spec.inverse(part.float()) if model_space else part.float()
        low, high = min(low, float(values.min())), max(high, float(values.max()))
    return UnitScale(low, high)


def ssim_refusal(shape: tuple[int, ...] | list[int]) -> str | None:
    """Why SSIM is not computed for images of ``shape`` (C, H, W), or None when it is."""
    if min(shape[-2:]) >= WINDOW:
        return None
    return f"images of {shape[-2]}x{shape[-1]} pixels, smaller than SSIM's {WINDOW}x{WINDOW} window"


def reconstruction_scores(spec: DataSpec, scale: UnitScale, reconstruction: Tensor,
                          truth: Tensor) -> dict[str, Tensor]:
    """PSNR (dB) and, for images of at least 11x11 pixels, SSIM of each reconstruction (N, C, H, W,
    in model space: the likelihood's mean) of ``truth`` (model space), both on ``scale`` with
    the reconstructions clipped to [0, 1] (the data's range): {"psnr": (N,), "ssim": (N,)}."""
    estimate = scale(spec.inverse(reconstruction.float())).clamp(0.0, 1.0)
    target = scale(spec.inverse(truth.float()))
    scores = {"psnr": psnr(estimate, target)}
    if ssim_refusal(tuple(truth.shape[1:])) is None:
        scores["ssim"] = ssim(estimate, target)
    return scores
