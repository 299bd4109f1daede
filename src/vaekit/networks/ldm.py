"""The latent-diffusion autoencoder network: diffusers' ``AutoencoderKL`` architecture, with its
parameter names, so a diffusers checkpoint loads with ``load_state_dict(strict=True)`` and no map.

Rombach et al. 2022, "High-Resolution Image Synthesis with Latent Diffusion Models", section 3 and
appendix G: a ResNet encoder halves the image ``len(block_out_channels) - 1`` times (f = 2^that, 8
for Stable Diffusion's "kl-f8"), a mid block of ResNet + single-head self-attention + ResNet sees
the whole latent grid, and the decoder mirrors it with nearest-neighbour upsampling. The latents
are spatial, (B, latent_channels, H/f, W/f), unlike vaekit's flat-latent image VAEs.

How a vaekit preset builds on it (not wired yet):

- the posterior is a diagonal Gaussian over every latent pixel, from :meth:`AutoencoderKL.encode`'s
  mean and log-variance (clamped to [-30, 20], as diffusers does, so ``exp`` stays finite); the
  prior a standard normal of the same shape; the decoder's output is the mean of the image
  likelihood, and the discriminator and perceptual terms act on that output;
- diffusion models see ``latents = (z - shift_factor) * scaling_factor`` (no shift when
  ``shift_factor`` is None) and decode ``z = latents / scaling_factor + shift_factor``:
  :meth:`AutoencoderKL.to_diffusion` and :meth:`AutoencoderKL.from_diffusion`;
- ``vaekit.networks.ldm_files`` reads and writes the diffusers folder layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EPS = 1e-6  # every GroupNorm of diffusers' AutoencoderKL, attention included
LOGVAR_RANGE = (-30.0, 20.0)  # diffusers' DiagonalGaussianDistribution clamps the log-variance here


@dataclass(frozen=True)
class AutoencoderKLConfig:
    """The constructor arguments of diffusers' ``AutoencoderKL`` that shape the network or travel with
    it; the defaults are diffusers' own, so a config.json that omits a key means what it means there."""

    in_channels: int = 3
    out_channels: int = 3
    block_out_channels: tuple[int, ...] = (64,)
    """Channels of each down block, in encoder order; the decoder runs them in reverse."""
    layers_per_block: int = 1
    """ResNet blocks per encoder stage; each decoder stage has one more."""
    latent_channels: int = 4
    norm_num_groups: int = 32
    """GroupNorm groups everywhere; must divide every entry of block_out_channels."""
    sample_size: int | tuple[int, ...] = 32
    """The training image size; diffusers' tiling reads it, the network does not."""
    scaling_factor: float = 0.18215
    """Latents are scaled by this for diffusion training: about 1 / std of the trained latents."""
    shift_factor: float | None = None
    """Subtracted from z before scaling (FLUX's VAE); None: no shift."""
    latents_mean: tuple[float, ...] | None = None
    """Per-channel latent statistics some diffusers models carry; kept and written back, not applied."""
    latents_std: tuple[float, ...] | None = None
    force_upcast: bool = True
    """The VAE overflows in float16 and should run in float32 (Stable Diffusion's does)."""
    use_quant_conv: bool = True
    """A 1x1 conv on the encoder's moments (FLUX's VAE has none)."""
    use_post_quant_conv: bool = True
    """A 1x1 conv on z before the decoder."""
    mid_block_add_attention: bool = True

    @property
    def downsampling_factor(self) -> int:
        """f: each encoder stage but the last halves height and width."""
        return 2 ** (len(self.block_out_channels) - 1)


@dataclass(frozen=True)
class LatentMoments:
    """The encoder's diagonal Gaussian over spatial latents, each (B, latent_channels, H/f, W/f)."""

    mean: Tensor
    logvar: Tensor = field(repr=False)
    """Clamped to [-30, 20], as diffusers does."""


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=EPS)


class ResnetBlock2D(nn.Module):
    """Pre-activation residual block: GroupNorm, SiLU, 3x3 conv, twice; a 1x1 conv on the skip path
    where the width changes (diffusers' ``ResnetBlock2D`` without a time embedding)."""

    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.norm1 = group_norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels, groups)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C_out, H, W)
        h = self.conv2(F.silu(self.norm2(h)))
        skip = x if self.conv_shortcut is None else self.conv_shortcut(x)
        return skip + h


class Downsample2D(nn.Module):
    """Halve H and W: a stride-2 3x3 conv after padding one zero row and column at the bottom and
    right only, as the original LDM code does (the weights were trained with that alignment)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # (B, C, floor(H/2), floor(W/2))


class Upsample2D(nn.Module):
    """Double H and W: nearest-neighbour interpolation, then a 3x3 conv (no checkerboard artefacts
    from transposed convolutions)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))  # (B, C, 2H, 2W)


class SelfAttention(nn.Module):
    """Single-head self-attention over all H*W positions, residual (diffusers' ``Attention`` as the
    VAE's mid block builds it: heads = 1, head dim = channels, a GroupNorm in front)."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.group_norm = group_norm(channels, groups)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        # A list so the key is diffusers' ``to_out.0``; their index 1 is a Dropout(0) without weights.
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        tokens = self.group_norm(x.view(b, c, h * w)).transpose(1, 2)  # (B, HW, C)
        # One head as a head axis: the same kernel diffusers calls, so outputs agree to rounding.
        q, k, v = (proj(tokens).unsqueeze(1) for proj in (self.to_q, self.to_k, self.to_v))  # (B, 1, HW, C)
        attended = F.scaled_dot_product_attention(q, k, v).squeeze(1)  # (B, HW, C), scale 1/sqrt(C)
        # Residual added second: the sum keeps the projection's channels-last strides, as diffusers'
        # does, and the next convolution then rounds exactly as theirs (contiguous: ~1e-6 apart).
        return self.to_out[0](attended).transpose(1, 2).reshape(b, c, h, w) + x  # (B, C, H, W)


class MidBlock(nn.Module):
    """ResNet, attention, ResNet at the lowest resolution: the only layer that sees the whole image."""

    def __init__(self, channels: int, groups: int, attention: bool) -> None:
        super().__init__()
        # Without attention diffusers keeps a None in the list: no keys, as here with an empty one.
        # Registered in diffusers' order (attentions first), so state_dict() lists keys as theirs does.
        self.attentions = nn.ModuleList([SelfAttention(channels, groups)] if attention else [])
        self.resnets = nn.ModuleList([ResnetBlock2D(channels, channels, groups) for _ in range(2)])

    def forward(self, x: Tensor) -> Tensor:
        x = self.resnets[0](x)
        for attention in self.attentions:
            x = attention(x)
        return self.resnets[1](x)


class ResnetStage(nn.Module):
    """``layers`` ResNet blocks, then a resampler unless it is the last stage: diffusers'
    ``DownEncoderBlock2D`` (its resampler under ``downsamplers.0``) and ``UpDecoderBlock2D``
    (``upsamplers.0``), which differ in nothing else."""

    def __init__(self, in_channels: int, out_channels: int, layers: int, groups: int,
                 resampler: type[Downsample2D | Upsample2D] | None) -> None:
        super().__init__()
        widths = [in_channels] + [out_channels] * layers
        self.resnets = nn.ModuleList(ResnetBlock2D(n_in, n_out, groups)
                                     for n_in, n_out in zip(widths[:-1], widths[1:], strict=True))
        if resampler is not None:
            name = "downsamplers" if resampler is Downsample2D else "upsamplers"
            self.add_module(name, nn.ModuleList([resampler(out_channels)]))

    def forward(self, x: Tensor) -> Tensor:
        for layers in self.children():  # the resnets, then the resampler's list where there is one
            for layer in layers:
                x = layer(x)
        return x


class Encoder(nn.Module):
    """x (B, in_channels, H, W) -> moments (B, 2 * latent_channels, H/f, W/f): mean, then log-variance."""

    def __init__(self, config: AutoencoderKLConfig) -> None:
        super().__init__()
        channels, groups = config.block_out_channels, config.norm_num_groups
        self.conv_in = nn.Conv2d(config.in_channels, channels[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            ResnetStage(channels[max(i - 1, 0)], width, config.layers_per_block, groups,
                        Downsample2D if i < len(channels) - 1 else None)
            for i, width in enumerate(channels))
        self.mid_block = MidBlock(channels[-1], groups, config.mid_block_add_attention)
        self.conv_norm_out = group_norm(channels[-1], groups)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(channels[-1], 2 * config.latent_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)  # (B, C_0, H, W)
        for block in self.down_blocks:
            h = block(h)  # (B, C_i, H/2^i, W/2^i)
        h = self.mid_block(h)  # (B, C_last, H/f, W/f)
        return self.conv_out(self.conv_act(self.conv_norm_out(h)))  # (B, 2L, H/f, W/f)


class Decoder(nn.Module):
    """z (B, latent_channels, h, w) -> image (B, out_channels, h*f, w*f)."""

    def __init__(self, config: AutoencoderKLConfig) -> None:
        super().__init__()
        channels, groups = config.block_out_channels[::-1], config.norm_num_groups
        self.conv_in = nn.Conv2d(config.latent_channels, channels[0], 3, padding=1)
        # up_blocks registered before mid_block, as diffusers does: state_dict() keys in their order.
        self.up_blocks = nn.ModuleList(
            ResnetStage(channels[max(i - 1, 0)], width, config.layers_per_block + 1, groups,
                        Upsample2D if i < len(channels) - 1 else None)
            for i, width in enumerate(channels))
        self.mid_block = MidBlock(channels[0], groups, config.mid_block_add_attention)
        self.conv_norm_out = group_norm(channels[-1], groups)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(channels[-1], config.out_channels, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid_block(self.conv_in(z))  # (B, C_last, h, w)
        for block in self.up_blocks:
            h = block(h)  # doubles h and w, but in the last block
        return self.conv_out(self.conv_act(self.conv_norm_out(h)))  # (B, out_channels, h*f, w*f)


class AutoencoderKL(nn.Module):
    """Encoder, quant_conv, post_quant_conv and decoder, named as diffusers names them.

    Built from an :class:`AutoencoderKLConfig`, which it keeps as ``.config`` (the checkpoint
    carries its own config). PyTorch's default initialisation, as diffusers'.
    """

    def __init__(self, config: AutoencoderKLConfig) -> None:
        super().__init__()
        self.config = config
        moments = 2 * config.latent_channels
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quant_conv = nn.Conv2d(moments, moments, 1) if config.use_quant_conv else None
        self.post_quant_conv = (nn.Conv2d(config.latent_channels, config.latent_channels, 1)
                                if config.use_post_quant_conv else None)

    def encode(self, x: Tensor) -> LatentMoments:
        """Images (B, in_channels, H, W) -> the posterior's moments over (B, L, H/f, W/f); sides that
        are not multiples of f are floored at each halving, so only multiples decode to their own size."""
        moments = self.encoder(x)  # (B, 2L, H/f, W/f)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        mean, logvar = moments.chunk(2, dim=1)  # (B, L, H/f, W/f) each
        return LatentMoments(mean, logvar.clamp(*LOGVAR_RANGE))

    def decode(self, z: Tensor) -> Tensor:
        """Latents z (B, L, h, w), unscaled -> images (B, out_channels, h*f, w*f)."""
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruct from the posterior mean (no sampling: that takes an explicit generator)."""
        return self.decode(self.encode(x).mean)

    def sample_latents(self, moments: LatentMoments, generator: torch.Generator | None = None) -> Tensor:
        """z = mean + std * eps, eps drawn from ``generator`` (B, L, h, w)."""
        noise = torch.randn(moments.mean.shape, generator=generator, dtype=moments.mean.dtype,
                            device=moments.mean.device)
        return moments.mean + torch.exp(0.5 * moments.logvar) * noise

    def to_diffusion(self, z: Tensor) -> Tensor:
        """Latents as a diffusion model is trained on them: (z - shift_factor) * scaling_factor."""
        return (z - (self.config.shift_factor or 0.0)) * self.config.scaling_factor

    def from_diffusion(self, latents: Tensor) -> Tensor:
        """The inverse of :meth:`to_diffusion`, before :meth:`decode`."""
        return latents / self.config.scaling_factor + (self.config.shift_factor or 0.0)

