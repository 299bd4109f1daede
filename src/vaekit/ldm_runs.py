"""diffusers autoencoder folders as vaekit runs, and vaekit's latent-diffusion runs as diffusers folders.

A folder that ``diffusers.AutoencoderKL.save_pretrained`` wrote (config.json with ``_class_name``
AutoencoderKL + diffusion_pytorch_model.safetensors; read by :mod:`vaekit.networks.ldm_files`)
opens as a run of the kl-f preset: :func:`open_diffusers` builds the config from the network's
shape, an image spec of ``sample_size`` pixels a side scaled to [0, 1] (8-bit images), and the
VAE whose ldm halves hold the folder's weights. Every command that takes a run then works on it
(encode, decode, reconstruct, interpolate, evaluate with ``--data``, explore); the model's
``latent_scaling`` carries the folder's scaling and shift factors. It has no training data, no
history and no discriminator.

:func:`save_diffusers_run` writes a kl-f run (or any run of the ldm network) in that layout, so
``AutoencoderKL.from_pretrained`` loads it; the scaling factor is the one given, or 1 / the standard
deviation of its training latents (as Rombach et al. chose Stable Diffusion's 0.18215).

:class:`AnySize` runs a kl-f run's autoencoder on images of any size whose sides are multiples of f
(it is fully convolutional), tile by tile where asked (:mod:`vaekit.networks.ldm_tiling`): ``vaekit
encode --size/--tile`` and ``vaekit decode --latents FOLDER`` use it for images larger than the run's.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch

from vaekit.config import RunConfig, resolve_config
from vaekit.data.spec import DataSpec
from vaekit.errors import ConfigError, DataError
from vaekit.models import VAE, build_model, settled
from vaekit.networks.ldm import LatentMoments
from vaekit.networks.ldm_files import CLASS_NAME, CONFIG_NAME, load_diffusers, save_diffusers
from vaekit.networks.ldm_tiling import exact_tiled_decode, tiled_encode
from vaekit.networks.ldm_vae import MomentEncoder, autoencoder_of, ldm_config

IMAGE_LIKELIHOODS = ("laplace", "gaussian")  # whose decoder output is the image itself (the likelihood's mean)


def is_diffusers_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a diffusers AutoencoderKL (its config.json names the class) rather than
    a vaekit run folder."""
    path = folder / CONFIG_NAME
    if not path.is_file() or (folder / "data_spec.json").exists():
        return False
    try:
        return json.loads(path.read_text()).get("_class_name") == CLASS_NAME
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return False


def open_diffusers(folder: str | Path, device: str | torch.device = "cpu") -> tuple[RunConfig, DataSpec, VAE]:
    """The config, spec and model of a diffusers AutoencoderKL folder, as a kl-f run (float32, eval mode)."""
    folder = Path(folder)
    autoencoder = load_diffusers(folder)
    net = autoencoder.config
    if net.in_channels != net.out_channels:
        raise DataError(f"{str(folder)!r}: in_channels={net.in_channels} and out_channels={net.out_channels}: "
                        "vaekit opens autoencoders whose output is the image they read")
    if net.use_quant_conv != net.use_post_quant_conv:
        raise DataError(f"{str(folder)!r}: use_quant_conv={net.use_quant_conv} with use_post_quant_conv="
                        f"{net.use_post_quant_conv}: vaekit's ldm network has both or neither")
    height, width = (net.sample_size,) * 2 if isinstance(net.sample_size, int) else tuple(net.sample_size[:2])
    spec = DataSpec.from_dict({"kind": "image", "shape": [net.in_channels, height, width], "scale": "unit",
                               "max_level": 255.0, "n_levels": 256, "value_range": [0.0, 1.0]})
    model_values = {"conv_channels": list(net.block_out_channels), "layers_per_block": net.layers_per_block,
                    "latent_channels": net.latent_channels, "norm_groups": net.norm_num_groups,
                    "mid_attention": net.mid_block_add_attention, "quant_convs": net.use_quant_conv}
    preset = "kl-f4" if net.downsampling_factor == 4 else "kl-f8"  # the nearest preset, for `vaekit info`
    config = resolve_config(preset=preset, values={"model": model_values, "data": {"source": str(folder)}})
    config = config.model_copy(update={"model": settled(spec, config.model)})
    model = build_model(spec, config.model)
    shared = autoencoder_of(model.encoder, model.decoder, ldm_config(spec, config.model, 1))
    shared.load_state_dict(autoencoder.state_dict(), strict=True)  # into the model's own modules
    model.latent_scaling = {"scaling_factor": net.scaling_factor, "shift_factor": net.shift_factor}
    return config, spec, model.to(device).eval()


def latent_scaling_factor(model: VAE, x: torch.Tensor, batch_size: int = 64, seed: int = 0) -> float:
    """1 / the standard deviation of latents drawn from q(z|x) for images ``x`` (model space), as
    Stable Diffusion's scaling factor was chosen: a diffusion model then sees unit-variance latents."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    draws = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            draws.append(model.encode(x[start:start + batch_size]).sample(generator=generator).double())
    std = torch.cat(draws).std().item()
    if not std > 0:
        raise DataError("the latents of the training images do not vary (standard deviation 0): no scaling factor")
    return 1.0 / std


def save_diffusers_run(model: VAE, spec: DataSpec, config: RunConfig, folder: str | Path,
                       scaling_factor: float, shift_factor: float | None = None) -> Path:
    """Write a run of the ldm network as a diffusers AutoencoderKL folder; returns the folder."""
    if not isinstance(model.encoder, MomentEncoder):
        raise ConfigError(f"--diffusers writes latent-diffusion autoencoders (model.network=ldm: the kl-f4 and kl-f8 "
                          f"presets); this run's network is {config.model.network!r}")
    if spec.scale != "unit" or spec.binarize:
        raise ConfigError("--diffusers: the run's images are not scaled to [0, 1] (data.scale=unit, not binarised), "
                          "so diffusers' [-1, 1] images would not map onto them")
    likelihood = config.model.likelihood
    if likelihood not in IMAGE_LIKELIHOODS:
        raise ConfigError(f"--diffusers: model.likelihood={likelihood!r} makes the decoder emit its parameters, not "
                          f"the image; diffusers reads it as the image (train with {' or '.join(IMAGE_LIKELIHOODS)})")
    net = replace(ldm_config(spec, config.model, 1), scaling_factor=float(scaling_factor), shift_factor=shift_factor)
    return save_diffusers(autoencoder_of(model.encoder, model.decoder, net), folder)


class AnySize:
    """A kl-f run's autoencoder on images (B, C, H, W) in [0, 1] of any size whose sides are multiples
    of f, and on latents (B, C_z, H/f, W/f); with ``tile`` (image pixels, a multiple of f) tile by tile,
    so memory follows the tile. Encoding feathers overlapping tiles together (``overlap``: default a
    quarter of the tile, as diffusers), which changes the output (each GroupNorm and the mid attention
    see one tile; :mod:`vaekit.networks.ldm_tiling` has the figures): tile only what does not fit.
    Decoding is exact (:func:`~vaekit.networks.ldm_tiling.exact_tiled_decode`: whole-image GroupNorm
    statistics, the mid block on the whole latent grid, a halo of context; equal to the untiled
    decode up to rounding) at the price of a partial pass over the tiles per GroupNorm."""

    def __init__(self, model: VAE, spec: DataSpec, config: RunConfig, tile: int | None = None,
                 overlap: int | None = None, decoding: bool = False, size: tuple[int, int] | None = None) -> None:
        if not isinstance(model.encoder, MomentEncoder):
            raise ConfigError(f"--size and --tile need a latent-diffusion autoencoder (model.network=ldm: the kl-f4 "
                              f"and kl-f8 presets, or a diffusers folder); this run's network is "
                              f"{config.model.network!r}, which takes {'x'.join(map(str, spec.shape[1:]))} images only")
        if decoding and config.model.likelihood not in IMAGE_LIKELIHOODS:
            raise ConfigError(f"decoding latents of any size reads the decoder's output as the image: "
                              f"model.likelihood={config.model.likelihood!r} emits its parameters instead "
                              f"(a run trained with {' or '.join(IMAGE_LIKELIHOODS)} does)")
        self.autoencoder = autoencoder_of(model.encoder, model.decoder, ldm_config(spec, config.model, 1))
        self.f = f = self.autoencoder.config.downsampling_factor
        if tile is not None and (tile < 2 * f or tile % f):
            raise ConfigError(f"--tile {tile}: expected a multiple of the downsampling factor {f}, at least {2 * f}")
        if overlap is None and tile is not None:
            overlap = tile // 4 // f * f
        if overlap is not None and (tile is None or overlap % f or not 0 <= overlap < tile):
            raise ConfigError(f"--overlap {overlap}: expected a multiple of {f} below --tile"
                              + ("" if tile is not None else " (and a --tile)"))
        self.tile, self.overlap = tile, overlap
        self.size = size  # (H, W) images are read at (vaekit encode --size); None: whatever comes
        if size is not None:
            self.check_size(size[0], size[1], "--size")

    def check_size(self, height: int, width: int, what: str) -> None:
        if height % self.f or width % self.f:
            raise ConfigError(f"{what} {width}x{height} (WxH): expected sides that are multiples of the "
                              f"downsampling factor f={self.f}")

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> LatentMoments:
        """Images (B, C, H, W) in [0, 1] -> q(z|x)'s moments, each (B, C_z, H/f, W/f)."""
        self.check_size(x.shape[-2], x.shape[-1], "image size")
        if self.tile is None:
            return self.autoencoder.encode(2.0 * x - 1.0)
        return tiled_encode(self.autoencoder, 2.0 * x - 1.0, self.tile, self.overlap)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (B, C_z, h, w) -> images (B, C, h*f, w*f) in [0, 1] (the likelihood's mean)."""
        if self.tile is None:
            y = self.autoencoder.decode(z)
        else:
            y = exact_tiled_decode(self.autoencoder, z, self.tile // self.f)
        return (y + 1.0) * 0.5
