"""A GRU layer run over each sequence's own length: the CPU path of the sequence encoder and decoder.

``nn.GRU`` computes the same function; this loop exists for speed on the CPU, where it is measured
(bench/seq_reference.py) to beat both ways of using ``nn.GRU`` on token batches:

- packed (``pack_padded_sequence``), its CPU kernel narrows the precomputed input projection of the
  whole batch at every step, and the backward of each narrow fills and adds a zero tensor of that
  whole size: a cost quadratic in the length that took half of the seq-vae step on MOSES SMILES;
- padded, it runs every row to the batch's longest sequence, and the positions after a row's end
  count nothing.

Here the rows are sorted by length, so the live rows at step t are a prefix of the batch and each
step multiplies only those; the input projection is done once for all steps by the caller (a
lookup in the projected embedding table where the vocabulary is small, and the part of a
per-sequence context added once per sequence), so the loop only does the recurrent product and the
gates. The cell is ``nn.GRU``'s (Cho et al. 2014, as torch writes it), so the results agree with
``nn.GRU`` to float rounding (tests/unit/test_sequence_speed.py). On CUDA, cuDNN's fused GRU is
used instead: a Python loop of small kernels would be bound by launches there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DEVICES = ("cpu",)  # where the sequence models run their GRUs by length; nn.GRU elsewhere


@dataclass
class Schedule:
    """How a batch of sequences is stepped through: ``order`` sorts the rows by length, longest first
    (B,), ``lengths`` are theirs in that order, and ``live[t]`` rows (a prefix of that order) still
    run at step t. The loop's inputs and outputs are *packed*: the live rows of step 0, then those
    of step 1, ...; :meth:`positions` says where each packed item sits. Lengths are read on the host
    once here, as packing reads them."""

    order: Tensor
    lengths: Tensor
    live: list[int]

    @classmethod
    def of(cls, lengths: Tensor) -> Schedule:
        """The schedule for ``lengths`` (B,) long, each >= 1."""
        lengths, order = torch.sort(lengths, descending=True, stable=True)
        ending = torch.bincount(lengths, minlength=int(lengths[0]) + 1)  # rows whose length is t
        live = (len(lengths) - ending.cumsum(0))[:-1].tolist()  # rows longer than t, t = 0..max-1
        return cls(order, lengths, live)

    @property
    def steps(self) -> int:
        return len(self.live)

    def positions(self) -> tuple[Tensor, Tensor]:
        """Each packed item's step t and row of the batch as given (P,) each, P = sum(live)."""
        running = torch.arange(self.steps, device=self.lengths.device)[:, None] < self.lengths  # (T, B) sorted
        time, rank = running.nonzero(as_tuple=True)  # step by step, longest rows first: the packed order
        return time, self.order[rank]


def projected_inputs(embed: nn.Embedding, ids: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear(embed(ids), weight, bias)`` for ids (...,) long: (..., 3H). Where the vocabulary
    has fewer rows than there are ids, the embedding table is projected once and looked up (the same
    sums, in a different order)."""
    if embed.num_embeddings < ids.numel():
        table = embed.weight
        if embed.padding_idx is not None:  # as nn.Embedding: no gradient into the padding row
            table = table.index_fill(0, torch.tensor([embed.padding_idx], device=table.device), 0.0)
        return F.embedding(ids, F.linear(table, weight, bias))
    return F.linear(embed(ids), weight, bias)


def gru_by_length(inputs: Tensor, state: Tensor, weight_hh: Tensor, bias_hh: Tensor,
                  live: list[int]) -> tuple[Tensor, Tensor]:
    """One GRU layer over length-sorted rows.

    Parameters
    ----------
    inputs
        The input projections x_t W_ih^T + b_ih of the live rows, packed (P, 3H) (see :class:`Schedule`).
    state
        The initial hidden state of all rows (B, H), longest first.
    weight_hh, bias_hh
        The recurrent weights (3H, H) and bias (3H,), gates in ``nn.GRU``'s order (reset, update, new).
    live
        The rows still running at each step, non-increasing.

    Returns
    -------
    The outputs, packed (P, H), and every row's last state (B, H), longest first.
    """
    width = state.shape[1]
    outputs, finished = [], []  # finished: the last states of the rows that ended, latest rows first
    h = state  # (n, H): the live rows' state
    # split, not slicing: the backward of a split is one concatenation, that of a slice a zero fill and a copy
    for x, n in zip(inputs.split(live), live, strict=True):
        if n < h.shape[0]:
            h, ended = h.split([n, h.shape[0] - n])
            finished.append(ended)
        x_gates, x_new = x.split([2 * width, width], 1)  # (n, 2H), (n, H)
        h_gates, h_new = F.linear(h, weight_hh, bias_hh).split([2 * width, width], 1)
        reset, update = torch.sigmoid(x_gates + h_gates).chunk(2, 1)
        new = torch.tanh(x_new + reset * h_new)
        h = new + update * (h - new)  # (1 - update) * new + update * h
        outputs.append(h)
    return torch.cat(outputs), torch.cat([h, *reversed(finished)])
