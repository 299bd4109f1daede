"""The latent-diffusion autoencoder as a vaekit network (the ``ldm`` entry of NETWORKS).

:class:`~vaekit.networks.ldm.AutoencoderKL`'s halves under vaekit's encoder/decoder protocol, so
the ``kl-f4``/``kl-f8`` presets are the ordinary VAE over these parts (posterior, prior, likelihood
and objective from their registries):

- :class:`MomentEncoder`: images x in [0, 1] -> 2x - 1 (diffusers' range) -> the encoder and
  ``quant_conv`` -> moments (B, 2C, h, w), flattened to (B, 2L) with L = C*h*w. The mean comes first
  and the log-variance second, both channels first, so :class:`~vaekit.distributions.posteriors.MomentsHead`
  reads q(z|x) without a layer of its own. z stays a flat vector everywhere in vaekit (priors,
  interpolation, the explorer); ``VAE.latent_shape`` = (C, h, w) says how to read it.
- :class:`LatentDecoder`: z (B, L) -> (B, C, h, w) -> ``post_quant_conv`` and the decoder -> an
  image y in [-1, 1] -> (y + 1) / 2, the likelihood's parameter in the data's units (B, 1, ch, H, W).

Parameter names: the encoder half holds ``encoder.*`` and ``quant_conv``, the decoder half
``post_quant_conv`` and ``decoder.*``, so a vaekit model's ``encoder.encoder.conv_in.weight`` is
diffusers' ``encoder.conv_in.weight`` (:func:`autoencoder_of` and :func:`from_autoencoder` share
the modules both ways; no copy).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from pydantic import Field
from torch import Tensor, nn

from vaekit.errors import ConfigError
from vaekit.networks.blocks import NETWORKS
from vaekit.networks.ldm import AutoencoderKL, AutoencoderKLConfig, Decoder, Encoder
from vaekit.sections import CoreOptions

if TYPE_CHECKING:
    from vaekit.data.spec import DataSpec
    from vaekit.networks.blocks import NetworkOptions


class LDMOptions(CoreOptions):
    """The latent-diffusion autoencoder's options (``model.*``; its stage widths are model.conv_channels,
    f = 2^(stages - 1))."""

    latent_channels: int = Field(4, gt=0, le=256)
    """ldm network: channels of the spatial latent (B, C, H/f, W/f)."""
    layers_per_block: int = Field(1, gt=0, le=8)
    """ldm network: ResNet blocks per encoder stage (the decoder has one more per stage)."""
    norm_groups: int = Field(32, gt=0)
    """ldm network: GroupNorm groups; must divide every entry of model.conv_channels."""
    mid_attention: bool = True
    """ldm network: self-attention in the mid block (the only layer that sees the whole latent grid)."""
    quant_convs: bool = True
    """ldm network: 1x1 convolutions on the encoder's moments and on z (Stable Diffusion's VAE; FLUX's has none)."""


class MomentEncoder(nn.Module):
    """x (B, C_in, H, W) in [0, 1] -> q(z|x)'s moments flattened (B, 2L): the posterior needs no layer."""

    def __init__(self, encoder: Encoder, quant_conv: nn.Conv2d | None, latent_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.encoder, self.quant_conv = encoder, quant_conv
        self.latent_shape = latent_shape
        self.out_features = 2 * latent_shape[0] * latent_shape[1] * latent_shape[2]

    def forward(self, x: Tensor) -> Tensor:
        moments = self.encoder(2.0 * x - 1.0)  # (B, 2C, h, w)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        return moments.flatten(1)  # (B, 2L): the mean's C*h*w values, then the log-variance's


class LatentDecoder(nn.Module):
    """z (B, L) -> the image's likelihood parameter (B, 1, C_out, H, W) in [0, 1]'s units."""

    def __init__(self, decoder: Decoder, post_quant_conv: nn.Conv2d | None,
                 latent_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.post_quant_conv, self.decoder = post_quant_conv, decoder
        self.latent_shape = latent_shape

    def forward(self, z: Tensor) -> Tensor:
        h = z.view(-1, *self.latent_shape)  # (B, C, h, w)
        if self.post_quant_conv is not None:
            h = self.post_quant_conv(h)
        y = self.decoder(h)  # (B, C_out, H, W), in diffusers' [-1, 1]
        return ((y + 1.0) * 0.5).unsqueeze(1)


def ldm_config(spec: DataSpec, config: NetworkOptions | LDMOptions, n_params: int) -> AutoencoderKLConfig:
    """The AutoencoderKL a run's config asks for on this data, refusing what cannot be built."""
    channels, height, width = spec.shape
    widths = tuple(config.conv_channels)
    f = 2 ** (len(widths) - 1)
    if n_params != 1:
        raise ConfigError(f"model.network=ldm decodes one value per pixel; the likelihood (model.likelihood) needs "
                          f"{n_params}: use laplace, gaussian, bernoulli or continuous_bernoulli")
    if height % f or width % f:
        raise ConfigError(f"model.network=ldm with {len(widths)} stages (model.conv_channels={list(widths)}) halves "
                          f"the image {len(widths) - 1} times, so its sides must be multiples of f={f}; the images "
                          f"are {height}x{width}: resize them (data.image_size) or use fewer stages")
    bad = [w for w in widths if w % config.norm_groups]
    if bad:
        raise ConfigError(f"model.norm_groups={config.norm_groups} must divide every width in model.conv_channels="
                          f"{list(widths)} (not {bad[0]})")
    return AutoencoderKLConfig(in_channels=channels, out_channels=channels, block_out_channels=widths,
                               layers_per_block=config.layers_per_block, latent_channels=config.latent_channels,
                               norm_num_groups=config.norm_groups, sample_size=height,
                               mid_block_add_attention=config.mid_attention, use_quant_conv=config.quant_convs,
                               use_post_quant_conv=config.quant_convs)


def from_autoencoder(autoencoder: AutoencoderKL, height: int, width: int) -> tuple[MomentEncoder, LatentDecoder]:
    """vaekit's encoder and decoder halves over ``autoencoder``'s modules (shared, not copied), for
    images of ``height`` x ``width``."""
    config = autoencoder.config
    f = config.downsampling_factor
    shape = (config.latent_channels, height // f, width // f)
    return (MomentEncoder(autoencoder.encoder, autoencoder.quant_conv, shape),
            LatentDecoder(autoencoder.decoder, autoencoder.post_quant_conv, shape))


def autoencoder_of(encoder: MomentEncoder, decoder: LatentDecoder, config: AutoencoderKLConfig) -> AutoencoderKL:
    """The diffusers-named AutoencoderKL over a vaekit model's halves (modules shared, not copied)."""
    config = replace(config, use_quant_conv=encoder.quant_conv is not None,
                     use_post_quant_conv=decoder.post_quant_conv is not None)
    with torch.device("meta"):  # a shell: every module is replaced by the model's own below
        autoencoder = AutoencoderKL(config)
    autoencoder.encoder, autoencoder.decoder = encoder.encoder, decoder.decoder
    autoencoder.quant_conv, autoencoder.post_quant_conv = encoder.quant_conv, decoder.post_quant_conv
    return autoencoder


def ldm_latent_dim(spec: DataSpec, config: NetworkOptions | LDMOptions) -> int:
    """L = C * (H/f) * (W/f): the size of z an ldm network fixes for these images."""
    f = 2 ** (len(config.conv_channels) - 1)
    return config.latent_channels * (spec.shape[1] // f) * (spec.shape[2] // f)


@NETWORKS.register("ldm")
def ldm_networks(spec: DataSpec, config: NetworkOptions, n_params: int, decoder_input: int,
                 out_shape: list[int]) -> tuple[nn.Module, nn.Module]:
    """Images whose sides are multiples of f: the latent-diffusion autoencoder's halves, from
    PyTorch's default initialisation (as diffusers and the LDM code)."""
    ldm = ldm_config(spec, config, n_params)
    encoder, decoder = from_autoencoder(AutoencoderKL(ldm), *spec.shape[1:])
    latent = encoder.out_features // 2
    if decoder_input != latent:
        raise ConfigError(f"model.network=ldm takes z of its latent grid ({latent} values) and nothing else; a "
                          "condition vector (model.condition) or a hierarchical model (model.stochastic_layers) "
                          "cannot feed it")
    return encoder, decoder
