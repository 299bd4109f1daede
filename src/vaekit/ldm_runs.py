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
from vaekit.networks.ldm_files import CLASS_NAME, CONFIG_NAME, load_diffusers, save_diffusers
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
