"""Fully connected encoder and decoder for any sample shape (flattened)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from torch import Tensor, nn

from vaekit.networks.blocks import NETWORKS, activation, he_init, norm_1d

if TYPE_CHECKING:
    from vaekit.data.spec import DataSpec
    from vaekit.networks.blocks import NetworkOptions


def _stack(widths: list[int], act: str, norm: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(n_in, n_out), norm_1d(norm, n_out), activation(act)]
    return nn.Sequential(*[layer for layer in layers if not isinstance(layer, nn.Identity)])


class MLPEncoder(nn.Module):
    """x (B, *shape) -> features (B, hidden[-1])."""

    def __init__(self, shape: list[int], hidden: list[int], act: str = "relu", norm: str = "none") -> None:
        super().__init__()
        self.net = _stack([math.prod(shape), *hidden], act, norm)
        self.out_features = hidden[-1] if hidden else math.prod(shape)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))  # (B, H)


class MLPDecoder(nn.Module):
    """z (B, L) -> raw likelihood parameters (B, n_params, *shape); hidden widths mirror the encoder."""

    def __init__(self, latent_dim: int, shape: list[int], hidden: list[int], n_params: int,
                 act: str = "relu", norm: str = "none") -> None:
        super().__init__()
        widths = [latent_dim, *reversed(hidden)]
        self.net = _stack(widths, act, norm)
        self.out = nn.Linear(widths[-1], n_params * math.prod(shape))
        self.out_shape = (n_params, *shape)

    def forward(self, z: Tensor) -> Tensor:
        return self.out(self.net(z)).view(-1, *self.out_shape)  # (B, P, *shape)


@NETWORKS.register("mlp")
def mlp_networks(spec: DataSpec, config: NetworkOptions, n_params: int, decoder_input: int,
                 out_shape: list[int]) -> tuple[nn.Module, nn.Module]:
    """Fully connected encoder and decoder for samples of any shape, from He init (images: see
    :func:`~vaekit.networks.blocks.he_init`)."""
    act, norm = config.activation, config.norm
    encoder = MLPEncoder(spec.shape, config.hidden, act, norm)
    decoder = MLPDecoder(decoder_input, out_shape, config.hidden, n_params, act, norm)
    return he_init(encoder, act), he_init(decoder, act, output=decoder.out)
