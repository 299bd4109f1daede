"""Build encoder and decoder from the data's shape and the model config (never per dataset)."""

from __future__ import annotations

from torch import nn

from vaekit.config import ModelConfig
from vaekit.data.spec import DataSpec
from vaekit.errors import ConfigError
from vaekit.networks.blocks import he_init
from vaekit.networks.image import ConvDecoder, ConvEncoder
from vaekit.networks.mlp import MLPDecoder, MLPEncoder


def network_kind(spec: DataSpec, config: ModelConfig) -> str:
    """'conv' for images of at least 16 px a side unless the config says otherwise, else 'mlp'."""
    if config.network != "auto":
        if config.network == "conv" and spec.kind != "image":
            raise ConfigError(f"model.network='conv' needs images (C, H, W); this data has shape {spec.shape}")
        return config.network
    return "conv" if spec.kind == "image" and min(spec.shape[1:]) >= 16 else "mlp"


class TableEncoder(nn.Module):
    """A table row -> features: :class:`~vaekit.distributions.tabular.TableInput` (codes expanded,
    holes masked) then the MLP. A class because the MLP's width depends on the expanded input."""

    def __init__(self, spec: DataSpec, hidden: list[int], act: str, norm: str) -> None:
        super().__init__()
        from vaekit.distributions.tabular import TableInput

        self.input = TableInput(spec.columns)
        self.mlp = MLPEncoder([self.input.out_features], hidden, act, norm)
        self.out_features = self.mlp.out_features

    def forward(self, x):
        return self.mlp(self.input(x))


class SequenceEncoder(nn.Module):
    """Token ids (B, T) -> features (B, 2H): an embedding and a bidirectional GRU over each sequence
    up to its ``<eos>`` (padding never enters), its two final states side by side. On the CPU the
    GRU runs by length (networks/recurrent.py), elsewhere as ``nn.GRU`` over packed sequences."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden: int) -> None:
        super().__init__()
        from vaekit.data.tokens import PAD

        self.pad = PAD
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.rnn = nn.GRU(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.out_features = 2 * hidden

    def forward(self, x):
        import torch
        from torch.nn.utils.rnn import pack_padded_sequence

        from vaekit.networks import recurrent

        ids = x.long()
        lengths = (ids != self.pad).sum(1).clamp_min(1)  # (B,)
        if ids.device.type in recurrent.DEVICES:
            return self._by_length(ids, lengths)
        packed = pack_padded_sequence(self.embed(ids), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)  # (2, B, H): the forward and backward final states
        return torch.cat([state[0], state[1]], -1)

    def _by_length(self, ids, lengths):
        """The packed GRU's final states, computed by :func:`~vaekit.networks.recurrent.gru_by_length`."""
        import torch

        from vaekit.networks.recurrent import Schedule, gru_by_length, projected_inputs

        schedule = Schedule.of(lengths)
        time, row = schedule.positions()  # (P,) each
        forward = ids[row, time]
        backward = ids[row, lengths[row] - 1 - time]  # each row read from its end
        rnn, states = self.rnn, []
        for suffix, tokens in (("", forward), ("_reverse", backward)):
            weights = [getattr(rnn, f"{name}_l0{suffix}") for name in ("weight_ih", "bias_ih", "weight_hh", "bias_hh")]
            inputs = projected_inputs(self.embed, tokens, weights[0], weights[1])  # (P, 3H)
            start = torch.zeros(len(ids), rnn.hidden_size, dtype=inputs.dtype, device=ids.device)
            states.append(gru_by_length(inputs, start, weights[2], weights[3], schedule.live)[1])
        features = torch.cat(states, -1)  # (B, 2H), longest first
        return features[schedule.order.argsort()]


def build_networks(spec: DataSpec, config: ModelConfig, n_params: int, decoder_input: int | None = None,
                   out_shape: list[int] | None = None) -> tuple[nn.Module, nn.Module]:
    """Encoder x -> features (``.out_features`` wide) and decoder z -> (B, n_params, *out_shape).

    The decoder takes ``decoder_input`` values (default ``latent_dim``; more when a condition
    vector is appended, or a hierarchical model's top-down state instead of z) and emits
    ``out_shape`` (default the data's shape; the table likelihood's flat parameter vector)."""
    act, norm = config.activation, config.norm
    n_in = decoder_input or config.latent_dim
    out_shape = list(spec.shape) if out_shape is None else out_shape
    if spec.vocabulary is not None:  # text, molecules: a GRU reads the tokens; z -> the token model's context
        if config.network == "conv":
            raise ConfigError("model.network='conv' needs images (C, H, W); this data is token sequences")
        encoder = SequenceEncoder(len(spec.vocabulary), config.embed_dim, config.rnn_hidden)
        return encoder, MLPDecoder(n_in, out_shape, [], n_params, act, norm)
    if spec.columns is not None:
        if config.network == "conv":
            raise ConfigError(f"model.network='conv' needs images (C, H, W); this data has shape {spec.shape}")
        return TableEncoder(spec, config.hidden, act, norm), MLPDecoder(n_in, out_shape, config.hidden, n_params,
                                                                        act, norm)
    if network_kind(spec, config) == "conv":
        feature_dim = config.hidden[-1] if config.hidden else 256
        encoder = ConvEncoder(spec.shape, config.conv_channels, feature_dim, act, norm)
        decoder = ConvDecoder(n_in, encoder, n_params, act, norm)
    else:
        encoder = MLPEncoder(spec.shape, config.hidden, act, norm)
        decoder = MLPDecoder(n_in, out_shape, config.hidden, n_params, act, norm)
    # Images start from He init (see he_init: the conv VAE collapsed without it); tables and token
    # models keep PyTorch's, with which their learned-scale likelihoods train better (measured).
    return he_init(encoder, act), he_init(decoder, act, output=decoder.out)
