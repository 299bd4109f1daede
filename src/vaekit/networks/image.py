"""Convolutional encoder and decoder built from any image shape (C, H, W).

Each encoder stage halves the spatial size with a stride-2 3x3 convolution (ceil(H/2)); the decoder
records those sizes and mirrors them with transposed convolutions whose ``output_padding`` restores
odd sizes exactly, so 8x8, 28x28, 27x31 and 64x64 all round-trip to their own shape.

:func:`conv_networks` (the ``conv`` entry of NETWORKS) starts them from He initialisation.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from torch import Tensor, nn

from vaekit.networks.blocks import NETWORKS, activation, he_init, norm_2d

if TYPE_CHECKING:
    from vaekit.data.spec import DataSpec
    from vaekit.networks.blocks import NetworkOptions


def stage_sizes(height: int, width: int, n_channels: int, min_size: int = 4) -> list[tuple[int, int]]:
    """Spatial sizes after each stage: halve while the smaller side exceeds ``min_size``."""
    sizes = [(height, width)]
    while len(sizes) <= n_channels and min(sizes[-1]) > min_size:
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


class ConvEncoder(nn.Module):
    """x (B, C, H, W) -> features (B, feature_dim)."""

    def __init__(self, shape: list[int], channels: list[int], feature_dim: int,
                 act: str = "relu", norm: str = "none") -> None:
        super().__init__()
        c, h, w = shape
        self.sizes = stage_sizes(h, w, len(channels))
        widths = [c, *channels[: len(self.sizes) - 1]]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Conv2d(n_in, n_out, 3, stride=2, padding=1), norm_2d(norm, n_out), activation(act)]
        self.convs = nn.Sequential(*layers)
        flat = widths[-1] * math.prod(self.sizes[-1])
        self.fc = nn.Sequential(nn.Linear(flat, feature_dim), activation(act))
        self.widths, self.out_features = widths, feature_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.convs(x).flatten(1))  # (B, F)


class ConvDecoder(nn.Module):
    """z (B, L) -> raw likelihood parameters (B, n_params, C, H, W), mirroring a ConvEncoder."""

    def __init__(self, latent_dim: int, encoder: ConvEncoder, n_params: int,
                 act: str = "relu", norm: str = "none") -> None:
        super().__init__()
        sizes, widths = encoder.sizes, encoder.widths
        self.start = (widths[-1], *sizes[-1])
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, encoder.out_features), activation(act),
            nn.Linear(encoder.out_features, math.prod(self.start)), activation(act),
        )
        layers: list[nn.Module] = []
        for stage in range(len(sizes) - 1, 0, -1):
            (h_in, w_in), (h_out, w_out) = sizes[stage], sizes[stage - 1]
            n_in, n_out = widths[stage], widths[stage - 1] if stage > 1 else widths[1]
            pad = (h_out - (2 * h_in - 1), w_out - (2 * w_in - 1))  # 1 for even targets, 0 for odd
            layers += [
                nn.ConvTranspose2d(n_in, n_out, 3, stride=2, padding=1, output_padding=pad),
                norm_2d(norm, n_out), activation(act),
            ]
        self.deconvs = nn.Sequential(*layers)
        last = widths[1] if len(widths) > 1 else widths[0]
        self.out = nn.Conv2d(last, n_params * widths[0], 3, padding=1)
        self.out_shape = (n_params, widths[0], *sizes[0])

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).view(-1, *self.start)  # (B, C_last, h, w)
        return self.out(self.deconvs(h)).view(-1, *self.out_shape)  # (B, P, C, H, W)


@NETWORKS.register("conv")
def conv_networks(spec: DataSpec, config: NetworkOptions, n_params: int, decoder_input: int,
                  out_shape: list[int]) -> tuple[nn.Module, nn.Module]:
    """Images (C, H, W): the conv encoder and its mirror, from He init (see
    :func:`~vaekit.networks.blocks.he_init`: the conv VAE collapsed without it)."""
    act, norm = config.activation, config.norm
    feature_dim = config.hidden[-1] if config.hidden else 256
    encoder = ConvEncoder(spec.shape, config.conv_channels, feature_dim, act, norm)
    decoder = ConvDecoder(decoder_input, encoder, n_params, act, norm)
    return he_init(encoder, act), he_init(decoder, act, output=decoder.out)
