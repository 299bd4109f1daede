"""Tiled encode and decode of the latent-diffusion autoencoder: the untiled call where the input fits
one tile, tiles that cover every pixel once in weight (any size, last tile at the border), no seam
where tiles disagree, the promised argument errors; the exact tiled decode equal to the untiled one."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from vaekit.errors import ConfigError
from vaekit.networks import ldm_tiling
from vaekit.networks.ldm import AutoencoderKL, AutoencoderKLConfig
from vaekit.networks.ldm_tiling import (
    blend_tiles,
    context_halo,
    exact_tiled_decode,
    tile_starts,
    tiled_decode,
    tiled_encode,
)

TINY = AutoencoderKLConfig(block_out_channels=(32, 64), layers_per_block=1, latent_channels=4, norm_num_groups=8)


def tiny_model() -> AutoencoderKL:
    torch.manual_seed(0)
    return AutoencoderKL(TINY).eval()


def gradient(height: int = 64, width: int = 64) -> torch.Tensor:
    """A smooth colour image (1, 3, H, W) in [-1, 1]."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
    return torch.stack([x, y, x * y])[None]


@torch.no_grad()
def test_an_input_within_one_tile_takes_the_untiled_call() -> None:
    model, x = tiny_model(), gradient(32, 32)
    moments = model.encode(x)
    tiled = tiled_encode(model, x, tile=32, overlap=8)
    assert torch.equal(tiled.mean, moments.mean) and torch.equal(tiled.logvar, moments.logvar)
    assert torch.equal(tiled_decode(model, moments.mean, tile=16, overlap=4), model.decode(moments.mean))


@torch.no_grad()
@pytest.mark.parametrize("height, width", [(64, 64), (40, 70), (18, 100)])
def test_sizes_that_are_not_multiples_of_the_tile_keep_their_shape(height: int, width: int) -> None:
    model, x = tiny_model(), gradient(height, width)
    moments = tiled_encode(model, x, tile=24, overlap=8)
    assert moments.mean.shape == moments.logvar.shape == (1, 4, height // 2, width // 2)
    assert torch.isfinite(moments.mean).all()
    image = tiled_decode(model, moments.mean, tile=9, overlap=3)
    assert image.shape == (1, 3, height, width)
    assert torch.isfinite(image).all()


def test_the_last_tile_is_flush_with_the_border() -> None:
    assert tile_starts(32, 12, 8) == [0, 8, 16, 20]
    assert tile_starts(24, 12, 8) == [0, 8, 12]
    assert tile_starts(10, 12, 8) == [0]


@pytest.mark.parametrize("size, tile, overlap", [((23, 37), 8, 3), ((16, 50), 7, 6), ((9, 9), 4, 0)])
def test_a_pointwise_network_is_reproduced_exactly(size: tuple[int, int], tile: int, overlap: int) -> None:
    """The weights over every output pixel sum to one, each tile lands at its own place, up- or down-scaled."""
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0))
    upsampled = blend_tiles(lambda t: F.interpolate(t, scale_factor=2.0), x, tile, overlap, Fraction(2))
    torch.testing.assert_close(upsampled, F.interpolate(x, scale_factor=2.0))
    even = x[..., : size[0] // 2 * 2, : size[1] // 2 * 2]
    pooled = blend_tiles(lambda t: F.avg_pool2d(t, 2), even, 2 * tile, 2 * overlap, Fraction(1, 2))
    torch.testing.assert_close(pooled, F.avg_pool2d(even, 2))


@pytest.mark.parametrize("width, slack", [(88, 1.0), (96, 1.25)])
def test_no_seam_where_tiles_disagree(width: int, slack: float) -> None:
    """Each tile is shifted by its own mean, as a per-tile GroupNorm shifts it: blended, the output's
    steps between neighbouring columns at tile edges are no larger than anywhere else (cut and pasted
    without the ramp, they jump there by half the difference of the tiles' means). Where the
    border-aligned last tile's cross-fade abuts the one before (width 96), one step there is 17%
    larger than inside a cross-fade."""
    ramp = torch.linspace(0, 4, width).expand(1, 1, 20, width)  # a smooth image, one step per column
    tile, overlap = 24, 8
    blended = blend_tiles(lambda t: t + t.mean(), ramp, tile, overlap, Fraction(1))
    steps = (blended[..., 1:] - blended[..., :-1]).abs().amax(dim=(0, 1, 2))  # (W - 1,)
    starts = tile_starts(width, tile, tile - overlap)
    edges = sorted({start - 1 for start in starts[1:]} | {start + tile - 1 for start in starts[:-1]})
    elsewhere = [j for j in range(len(steps)) if j not in edges]
    assert steps[edges].max() <= slack * steps[elsewhere].max() + 1e-6


@pytest.mark.parametrize("tile, overlap", [(0, 0), (8, 8), (8, 9), (8, -1)])
def test_an_overlap_not_below_the_tile_is_refused(tile: int, overlap: int) -> None:
    model = tiny_model()
    with pytest.raises(ConfigError, match="tile"):
        tiled_decode(model, torch.zeros(1, 4, 32, 32), tile=tile, overlap=overlap)
    with pytest.raises(ConfigError, match="tile"):
        tiled_encode(model, torch.zeros(1, 3, 64, 64), tile=2 * tile, overlap=2 * overlap)


@pytest.mark.parametrize("tile, overlap", [(15, 4), (16, 5)])
def test_encode_tiles_off_the_latent_grid_are_refused(tile: int, overlap: int) -> None:
    with pytest.raises(ConfigError, match="multiples of the downsampling factor 2"):
        tiled_encode(tiny_model(), torch.zeros(1, 3, 64, 64), tile=tile, overlap=overlap)


def test_encode_of_an_image_off_the_latent_grid_is_refused() -> None:
    with pytest.raises(ConfigError, match="pad or crop"):
        tiled_encode(tiny_model(), torch.zeros(1, 3, 64, 63), tile=16, overlap=4)


@torch.no_grad()
@pytest.mark.parametrize("size, tile", [((16, 16), 6), ((11, 19), 8), ((8, 8), 8)])
def test_exact_tiled_decode_is_the_untiled_decode(size: tuple[int, int], tile: int) -> None:
    """The issue's goal: within 1e-3 of the untiled decode (it is within 1e-5), any size."""
    model = tiny_model()
    z = model.encode(gradient(2 * size[0], 2 * size[1])).mean
    assert (exact_tiled_decode(model, z, tile) - model.decode(z)).abs().max() < 1e-4


@torch.no_grad()
def test_exact_tiled_decode_needs_its_halo(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model()
    z = model.encode(gradient(32, 32)).mean
    monkeypatch.setattr(ldm_tiling, "context_halo", lambda model: 3)
    assert (exact_tiled_decode(model, z, 6) - model.decode(z)).abs().max() > 1e-3


def test_the_halo_is_the_reach_of_the_convolutions_after_the_mid_block() -> None:
    """Stable Diffusion's decoder: 6 convolutions per stage at 1, 1/2, 1/4, 1/8 of a latent pixel,
    an upsampler's after each stage but the last, conv_out: 6 + 3 + 1.5 + 0.75 + 0.875 + 0.125 -> 13."""
    stable_diffusion = AutoencoderKLConfig(block_out_channels=(128, 256, 512, 512), layers_per_block=2)
    assert context_halo(SimpleNamespace(config=stable_diffusion)) == 13  # it reads the config only
    assert context_halo(tiny_model()) == 7
