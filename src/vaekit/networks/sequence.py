"""Sequence networks: the GRU that reads token ids, and the autoregressive network of p(x|z).

:class:`SequenceEncoder` is the VAE's encoder for text and molecules. :class:`TokenDecoder` is the
network half of the ``tokens`` likelihood: :class:`~vaekit.distributions.sequence.TokenFamily`
inherits it (so its weights are the likelihood's own, ``likelihood.embed``, ``likelihood.rnn``...)
and adds the distribution over sequences.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from vaekit.data.tokens import PAD
from vaekit.errors import ConfigError
from vaekit.networks import recurrent
from vaekit.networks.blocks import NETWORKS, NetworkOptions
from vaekit.networks.mlp import MLPDecoder
from vaekit.sections import MAX_WIDTH

if TYPE_CHECKING:
    from vaekit.data.spec import DataSpec

DECODERS = ("gru", "transformer")


class SequenceOptions(NetworkOptions):
    """Text and molecules: the token networks' options (``model.*``)."""

    embed_dim: int = Field(128, gt=0, le=MAX_WIDTH)
    """Sequences (text, molecules): token embedding width."""
    rnn_hidden: int = Field(256, gt=0, le=MAX_WIDTH)
    """Sequences: network width (the encoder's GRU per direction, and the GRU or Transformer decoder)."""
    word_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Sequences: share of the decoder's input tokens replaced by <unk> while training, so that it leans
    on z (Bowman et al. 2016)."""
    seq_decoder: Literal["gru", "transformer"] = "gru"
    """Sequences: the decoder, a GRU or a causal Transformer conditioned on z at every position."""
    seq_layers: int = Field(2, gt=0)
    """Sequences: layers of the Transformer decoder."""
    seq_heads: int = Field(4, gt=0)
    """Sequences: attention heads of the Transformer decoder."""


class SequenceEncoder(nn.Module):
    """Token ids (B, T) -> features (B, 2H): an embedding and a bidirectional GRU over each sequence
    up to its ``<eos>`` (padding never enters), its two final states side by side. On the CPU the
    GRU runs by length (networks/recurrent.py), elsewhere as ``nn.GRU`` over packed sequences."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden: int) -> None:
        super().__init__()
        self.pad = PAD
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.rnn = nn.GRU(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.out_features = 2 * hidden

    def forward(self, x):
        ids = x.long()
        lengths = (ids != self.pad).sum(1).clamp_min(1)  # (B,)
        if ids.device.type in recurrent.DEVICES:
            return self._by_length(ids, lengths)
        packed = pack_padded_sequence(self.embed(ids), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)  # (2, B, H): the forward and backward final states
        return torch.cat([state[0], state[1]], -1)

    def _by_length(self, ids, lengths):
        """The packed GRU's final states, computed by :func:`~vaekit.networks.recurrent.gru_by_length`."""
        schedule = recurrent.Schedule.of(lengths)
        time, row = schedule.positions()  # (P,) each
        forward = ids[row, time]
        backward = ids[row, lengths[row] - 1 - time]  # each row read from its end
        rnn, states = self.rnn, []
        for suffix, tokens in (("", forward), ("_reverse", backward)):
            weights = [getattr(rnn, f"{name}_l0{suffix}") for name in ("weight_ih", "bias_ih", "weight_hh", "bias_hh")]
            inputs = recurrent.projected_inputs(self.embed, tokens, weights[0], weights[1])  # (P, 3H)
            start = torch.zeros(len(ids), rnn.hidden_size, dtype=inputs.dtype, device=ids.device)
            states.append(recurrent.gru_by_length(inputs, start, weights[2], weights[3], schedule.live)[1])
        features = torch.cat(states, -1)  # (B, 2H), longest first
        return features[schedule.order.argsort()]


class TokenDecoder(nn.Module):
    """Next-token logits for a prefix under a context vector: an embedding, an autoregressive
    network whose input at each step is the previous token's embedding and the context, and a linear
    map to the vocabulary. ``decoder="gru"``: a GRU of width ``hidden`` (weights ``embed``, ``initial``,
    ``rnn``, ``out``); ``"transformer"``: ``layers`` causal pre-norm Transformer layers of width
    ``hidden`` with ``heads`` heads over learned positions (``embed``, ``project``, ``position``,
    ``transformer``, ``out``)."""

    def __init__(self, vocab_size: int, length: int, context_dim: int, embed_dim: int = 128, hidden: int = 256,
                 decoder: str = "gru", layers: int = 2, heads: int = 4, dropout: float = 0.0) -> None:
        nn.Module.__init__(self)
        if decoder not in DECODERS:
            raise ConfigError(f"sequence decoder {decoder!r}: expected one of {', '.join(DECODERS)}")
        if decoder == "transformer" and hidden % heads:
            raise ConfigError(f"model.seq_heads={heads} must divide model.rnn_hidden={hidden} "
                              "(the Transformer decoder's width)")
        self.vocab_size, self.length, self.context_dim = vocab_size, length, context_dim
        self.decoder = decoder
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        if decoder == "gru":
            self.initial = nn.Linear(context_dim, hidden)
            self.rnn = nn.GRU(embed_dim + context_dim, hidden, batch_first=True)
        else:
            self.project = nn.Linear(embed_dim + context_dim, hidden)  # the GRU's step input, projected
            self.position = nn.Embedding(length, hidden)
            nn.init.normal_(self.position.weight, std=0.02)
            layer = nn.TransformerEncoderLayer(hidden, heads, 4 * hidden, dropout, activation="gelu",
                                               batch_first=True, norm_first=True)
            self.transformer = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(hidden),
                                                     enable_nested_tensor=False)
        self.out = nn.Linear(hidden, vocab_size)

    def start(self, context: Tensor) -> Tensor:
        """The GRU's first state for contexts (N, C): (1, N, H)."""
        return torch.tanh(self.initial(context)).unsqueeze(0)

    def logits(self, context: Tensor, inputs: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Next-token logits (N, S, V) for input tokens (N, S) long under contexts (N, C), and the
        state to go on from. The GRU's state is its hidden state (1, N, H), from :meth:`start` unless
        ``state`` is given; the Transformer's is the prefix read so far (N, P) long, which ``inputs``
        extend (the whole prefix is recomputed, the logits returned are those of ``inputs``)."""
        if self.decoder == "gru":
            output, state = self.rnn(self._steps(context, inputs), self.start(context) if state is None else state)
            return self.out(output), state
        prefix = inputs if state is None else torch.cat([state, inputs], 1)
        n = prefix.shape[1]
        hidden = self.project(self._steps(context, prefix)) + self.position.weight[:n]
        causal = torch.ones(n, n, dtype=torch.bool, device=prefix.device).triu(1)  # True: not attended
        hidden = self.transformer(hidden, mask=causal, is_causal=True)
        return self.out(hidden[:, n - inputs.shape[1] :]), prefix

    def teacher_forced(self, context: Tensor, inputs: Tensor, targets: Tensor) -> Tensor:
        """log p(target_t | inputs_<=t, context) (N, S), 0 where the target is ``<pad>``: what
        :meth:`logits` and a cross-entropy give, computed on the CPU with less arithmetic (GRU only;
        see networks/recurrent.py). Each row runs to its last target that is not ``<pad>``, only those
        positions reach the output layer, and the GRU's input projection is split as
        W_ih [e; c] = W_e e + W_c c, so the context's share is computed once per sequence."""
        span = torch.arange(1, targets.shape[1] + 1, device=targets.device)
        lengths = ((targets != PAD) * span).amax(1).clamp_min(1)  # (N,): steps up to the last real target
        schedule = recurrent.Schedule.of(lengths)
        time, row = schedule.positions()  # (P,) each
        rnn, embed_dim = self.rnn, self.embed.embedding_dim
        weight = rnn.weight_ih_l0  # (3H, E + C): the token's embedding, then the context
        per_sequence = F.linear(context, weight[:, embed_dim:], rnn.bias_ih_l0)  # (N, 3H)
        steps = recurrent.projected_inputs(self.embed, inputs[row, time], weight[:, :embed_dim], None)  # (P, 3H)
        outputs, _ = recurrent.gru_by_length(steps + per_sequence[row], self.start(context[schedule.order])[0],
                                             rnn.weight_hh_l0, rnn.bias_hh_l0, schedule.live)  # (P, H)
        target = targets[row, time]  # (P,)
        values = -F.cross_entropy(self.out(outputs), target, reduction="none")  # (P,)
        values = torch.where(target != PAD, values, values.new_zeros(()))
        return values.new_zeros(targets.shape).index_put((row, time), values)  # (N, S)

    def _steps(self, context: Tensor, ids: Tensor) -> Tensor:
        """The network's input at each position: the token's embedding and the context (N, S, E + C)."""
        return torch.cat([self.embed(ids), context.unsqueeze(1).expand(-1, ids.shape[1], -1)], -1)

    def reorder(self, state: Tensor, index: Tensor) -> Tensor:
        """The decoding state of the sequences ``index`` (beam search keeps the best continuations)."""
        return state[:, index] if self.decoder == "gru" else state[index]


@NETWORKS.register("sequence")
def sequence_networks(spec: DataSpec, config: SequenceOptions, n_params: int, decoder_input: int,
                      out_shape: list[int]) -> tuple[nn.Module, nn.Module]:
    """Text, molecules: a GRU reads the tokens; the decoder maps z to the token model's context
    (:class:`TokenDecoder`, in the likelihood, does the rest). PyTorch's init."""
    encoder = SequenceEncoder(len(spec.vocabulary), config.embed_dim, config.rnn_hidden)
    return encoder, MLPDecoder(decoder_input, out_shape, [], n_params, config.activation, config.norm)
