"""p(x|z) for token sequences: an autoregressive language model conditioned on z (Bowman et al. 2016).

On the VAE's five axes the autoregression belongs to the likelihood:
p(x|z) = prod_t p(x_t | x_<t, z). So :class:`TokenFamily` is the likelihood family *and* an ``nn.Module`` that owns the
autoregressive network (:class:`~vaekit.networks.sequence.TokenDecoder`, which it inherits); the
VAE's decoder maps z to a context vector, and the family turns that context into a
:class:`TokenSequence` distribution. Its ``log_prob`` runs the network with teacher forcing (the
data's own previous token at each step, some replaced by ``<unk>`` under word dropout while
training); its ``mean``, ``sample`` and :meth:`TokenSequence.generate` decode step by step (greedy,
temperature, top-k or beam search). The context enters at every step (and the GRU's initial state),
so the decoder cannot forget z along the way.

The network is a GRU (the default) or, with ``model.seq_decoder=transformer``, a causal Transformer
(pre-norm, learned positions, ``rnn_hidden`` wide). Both are the same family because only the
factorisation over t matters to the VAE: each gives next-token logits for a prefix, so teacher
forcing, word dropout, the IWAE sample axis and one shared generation code serve both. The
Transformer keeps no cache: each decoding step recomputes its prefix (causal, so earlier logits do
not change), cheap at the lengths of sentences and molecules.

Token ids travel as float32 (N, T) in model space (``<bos>``, tokens, ``<eos>``, ``<pad>``...), as
every other part of vaekit expects; positions after ``<eos>`` count nothing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution

from vaekit.data.tokens import BOS, EOS, PAD, UNK
from vaekit.distributions.likelihoods import LIKELIHOODS, LikelihoodFamily
from vaekit.errors import ConfigError
from vaekit.networks import recurrent
from vaekit.networks.sequence import SequenceOptions, TokenDecoder

if TYPE_CHECKING:
    from vaekit.data.spec import DataSpec

STRATEGIES = ("greedy", "sample", "top-k", "beam")


class TokenFamily(TokenDecoder, LikelihoodFamily):
    """The ``tokens`` likelihood (the default for sequence data): the autoregressive network of
    :class:`~vaekit.networks.sequence.TokenDecoder` (inherited, so its weights are this module's own)
    and the distribution it gives over sequences. A module, unlike the other families, because the
    autoregressive network is part of p(x|z)."""

    support = "tokens"
    discrete = True
    comparable_values = False  # token ids: per-token bounds, no reconstruction error

    @property
    def values_per_item(self) -> int:
        return self.vocab_size

    def __init__(self, vocab_size: int, length: int, context_dim: int, embed_dim: int = 128, hidden: int = 256,
                 word_dropout: float = 0.0, decoder: str = "gru", layers: int = 2, heads: int = 4,
                 dropout: float = 0.0) -> None:
        TokenDecoder.__init__(self, vocab_size, length, context_dim, embed_dim, hidden, decoder, layers, heads,
                              dropout)
        self.event_ndim = 1
        self.word_dropout = word_dropout

    @classmethod
    def from_spec(cls, spec: DataSpec, config: SequenceOptions) -> TokenFamily:
        return cls(len(spec.vocabulary), spec.vocabulary.length, config.rnn_hidden, config.embed_dim,
                   config.rnn_hidden, config.word_dropout, decoder=config.seq_decoder, layers=config.seq_layers,
                   heads=config.seq_heads)

    def output_shape(self, shape: list[int]) -> list[int]:
        return [self.context_dim]  # the decoder's z -> context

    def __call__(self, raw: Tensor) -> TokenSequence:  # not nn.Module's __call__: this builds a distribution
        return TokenSequence(raw.squeeze(-2), self)  # (*batch, 1, C) -> (*batch, C)


class TokenSequence(Distribution):
    """p(x|z) for token-id sequences (*batch, T); see the module docstring."""

    arg_constraints: dict = {}  # noqa: RUF012 (torch's own attribute)

    def __init__(self, context: Tensor, family: TokenFamily) -> None:
        self.context, self.family = context, family
        super().__init__(context.shape[:-1], torch.Size([family.length]), validate_args=False)

    def _flat(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Contexts (N, C) and targets (N, T) long, x broadcast over the leading sample axes."""
        lead = self.context.shape[:-1]
        x = x.expand(*lead, x.shape[-1]) if x.shape[:-1] != lead else x
        return self.context.reshape(-1, self.context.shape[-1]), x.reshape(-1, x.shape[-1]).long()

    def log_prob_elements(self, x: Tensor) -> Tensor:
        """log p(x_t | x_<t, z) per position (*batch, T): 0 at ``<bos>`` (given) and after ``<eos>``."""
        context, ids = self._flat(x)
        inputs, targets = ids[:, :-1], ids[:, 1:]
        family = self.family
        if family.training and family.word_dropout > 0:  # Bowman et al. 2016: lean on z, not the prefix
            drop = torch.rand(inputs.shape, device=inputs.device) < family.word_dropout
            inputs = torch.where(drop & (inputs != BOS) & (inputs != PAD), torch.full_like(inputs, UNK), inputs)
        if family.decoder == "gru" and context.device.type in recurrent.DEVICES:
            values = family.teacher_forced(context, inputs, targets)
        else:
            logits, _ = family.logits(context, inputs)  # (N, T-1, V)
            values = -F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (N, T-1)
            values = torch.where(targets != PAD, values, values.new_zeros(()))
        values = torch.cat([values.new_zeros(values.shape[0], 1), values], 1)  # <bos> is given
        return values.view(*self.context.shape[:-1], -1)

    def log_prob(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.log_prob_elements(x).sum(-1)

    @property
    def mean(self) -> Tensor:
        """The greedy decoding (the most likely token at each step): ids (*batch, T) as float."""
        return self.generate("greedy")

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        if tuple(sample_shape):
            return torch.stack([self.generate("sample", generator=generator) for _ in range(math.prod(sample_shape))]
                               ).view(*sample_shape, *self.batch_shape, self.family.length)
        return self.generate("sample", generator=generator)

    @torch.no_grad()
    def generate(self, strategy: str = "greedy", temperature: float = 1.0, top_k: int = 0, beam: int = 4,
                 generator: torch.Generator | None = None) -> Tensor:
        """Token ids (*batch, T) float, decoded step by step: ``greedy``; ``sample`` at ``temperature``
        (``top_k`` > 0 keeps the k likeliest tokens only); ``top-k`` (sample, k = ``top_k`` or 10);
        ``beam`` search of width ``beam`` (the sequence with the highest total log-probability)."""
        if strategy not in STRATEGIES:
            raise ConfigError(f"decoding {strategy!r}: expected one of {', '.join(STRATEGIES)}")
        if not temperature > 0:
            raise ConfigError(f"temperature {temperature}: expected a number > 0")
        context = self.context.reshape(-1, self.context.shape[-1])
        if strategy == "beam":
            ids = _beam_search(self.family, context, beam)
        else:
            k = top_k or (10 if strategy == "top-k" else 0)
            ids = _step_by_step(self.family, context, strategy == "greedy", temperature, k, generator)
        return ids.to(self.context.dtype).view(*self.batch_shape, self.family.length)


def _step_by_step(family: TokenFamily, context: Tensor, greedy: bool, temperature: float, top_k: int,
                  generator: torch.Generator | None) -> Tensor:
    n, length = len(context), family.length
    ids = torch.full((n, length), PAD, dtype=torch.long, device=context.device)
    ids[:, 0] = BOS
    done = torch.zeros(n, dtype=torch.bool, device=context.device)
    state = None
    for t in range(1, length):
        logits, state = family.logits(context, ids[:, t - 1 : t], state)
        logits = logits[:, -1]  # (N, V)
        logits[:, PAD] = logits[:, BOS] = -math.inf  # never produced
        if t == length - 1:  # the last position can only end the sequence
            token = torch.full((n,), EOS, dtype=torch.long, device=context.device)
        elif greedy:
            token = logits.argmax(-1)
        else:
            logits = logits / temperature
            if top_k:
                kth = torch.topk(logits, min(top_k, logits.shape[-1]), -1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, -math.inf)
            token = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)
        ids[:, t] = torch.where(done, torch.full_like(token, PAD), token)
        done |= token == EOS
        if bool(done.all()):
            break
    return ids


def _beam_search(family: TokenFamily, context: Tensor, width: int) -> Tensor:
    """Beam search per sequence (width ``width``): the finished sequence with the highest total
    log-probability; every beam ends at ``<eos>`` by the last position."""
    if width < 1:
        raise ConfigError(f"beam width {width}: expected 1 or more")
    n, length, device = len(context), family.length, context.device
    contexts = context.repeat_interleave(width, 0)  # (N*W, C)
    ids = torch.full((n * width, length), PAD, dtype=torch.long, device=device)
    ids[:, 0] = BOS
    scores = torch.full((n, width), -math.inf, device=device)
    scores[:, 0] = 0.0  # one live beam at the start
    done = torch.zeros(n * width, dtype=torch.bool, device=device)
    state = None
    for t in range(1, length):
        logits, state = family.logits(contexts, ids[:, t - 1 : t], state)
        logp = torch.log_softmax(logits[:, -1], -1)  # (N*W, V)
        logp[:, PAD] = logp[:, BOS] = -math.inf
        if t == length - 1:
            keep = torch.full_like(logp, -math.inf)
            keep[:, EOS] = logp[:, EOS]
            logp = keep
        # a finished beam carries on unchanged: one continuation (PAD) at no cost
        finished = torch.full_like(logp, -math.inf)
        finished[:, PAD] = 0.0
        logp = torch.where(done[:, None], finished, logp)
        total = (scores.view(-1, 1) + logp).view(n, width * family.vocab_size)
        scores, flat = torch.topk(total, width, -1)  # (N, W)
        parent = flat // family.vocab_size + torch.arange(n, device=device)[:, None] * width
        token = flat % family.vocab_size
        parent, token = parent.view(-1), token.view(-1)
        ids = ids[parent]
        ids[:, t] = token
        state = family.reorder(state, parent)
        done = done[parent] | (token == EOS)
        if bool(done.all()):
            break
    best = scores.argmax(-1) + torch.arange(n, device=device) * width
    return ids[best]


LIKELIHOODS.add("tokens", TokenFamily)
