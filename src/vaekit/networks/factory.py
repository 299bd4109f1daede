"""Build encoder and decoder from the data's kind and shape and the model config (never per dataset)."""

from __future__ import annotations

from torch import nn

from vaekit.data.spec import DataSpec
from vaekit.networks import NETWORKS
from vaekit.networks.blocks import NetworkOptions
from vaekit.networks.ldm_vae import ldm_latent_dim


def network_kind(spec: DataSpec, config: NetworkOptions) -> str:
    """The NETWORKS entry this config builds on this data: 'conv' for images of at least 16 px a side
    unless the config says otherwise, 'ldm', a table's or a sequence's own, else 'mlp' (refusing a
    network that cannot read the data)."""
    return spec.data_kind.network(spec, config.network)


def fixed_latent_dim(spec: DataSpec, config: NetworkOptions) -> int | None:
    """The size of z when the network fixes it (the ldm network's spatial latent grid: model.latent_dim
    is then derived, C * H/f * W/f), else None."""
    return ldm_latent_dim(spec, config) if spec.data_kind.network(spec, config.network) == "ldm" else None


def build_networks(spec: DataSpec, config: NetworkOptions, n_params: int, decoder_input: int | None = None,
                   out_shape: list[int] | None = None) -> tuple[nn.Module, nn.Module]:
    """Encoder x -> features (``.out_features`` wide) and decoder z -> (B, n_params, *out_shape), by
    the NETWORKS entry the data's kind names.

    The decoder takes ``decoder_input`` values (default ``latent_dim``; more when a condition
    vector is appended, or a hierarchical model's top-down state instead of z) and emits
    ``out_shape`` (default the data's shape; the table likelihood's flat parameter vector)."""
    n_in = decoder_input or config.latent_dim
    out_shape = list(spec.shape) if out_shape is None else out_shape
    build = NETWORKS.get(spec.data_kind.network(spec, config.network))
    return build(spec, config, n_params, n_in, out_shape)
