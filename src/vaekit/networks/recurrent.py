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

The loop is one autograd node (:class:`_GRULoop`): its forward runs unrecorded and its backward is
backpropagation through time written out, so autograd neither records nor walks the ten or so nodes
of each step. Where that cannot be used (autocast, tracing, torch.func, a second derivative) the
same loop runs recorded op by op (:func:`_recorded`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

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
                  live: list[int], *, twice: bool = False) -> tuple[Tensor, Tensor]:
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
    twice
        Whether the result will be differentiated twice (``create_graph=True`` through its gradient):
        then the loop is recorded op by op, as it is under autocast, torch.compile or fx tracing, under
        torch.func transforms and for mixed dtypes. Otherwise :class:`_GRULoop` runs it, with a
        backward written out by hand.

    Returns
    -------
    The outputs, packed (P, H), and every row's last state (B, H), longest first.
    """
    if twice or not _fusable(inputs, state, weight_hh, bias_hh, live):
        return _recorded(inputs, state, weight_hh, bias_hh, live)
    return _GRULoop.apply(inputs, state, weight_hh, bias_hh, tuple(live))


def _fusable(inputs: Tensor, state: Tensor, weight_hh: Tensor, bias_hh: Tensor, live: list[int]) -> bool:
    """Whether :class:`_GRULoop` may run the loop: one dtype, no autocast (its casts happen per op, which
    the function's own ops would skip), not traced (torch.compile, torch.export, fx) and no torch.func
    transform (the function has no vmap or forward-mode rule)."""
    if not live or len({inputs.dtype, state.dtype, weight_hh.dtype, bias_hh.dtype}) > 1:
        return False
    traced = torch.compiler.is_compiling() or getattr(torch.fx._symbolic_trace, "_is_fx_tracing_flag", False)
    return not (traced or torch.is_autocast_enabled(inputs.device.type)
                or torch._C._are_functorch_transforms_active())


def _recorded(inputs: Tensor, state: Tensor, weight_hh: Tensor, bias_hh: Tensor,
              live: list[int]) -> tuple[Tensor, Tensor]:
    """:func:`gru_by_length` as small autograd ops, recorded step by step (about ten nodes a step)."""
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


def _final_states(state: Tensor, outputs: Tensor, live: tuple[int, ...], offsets: list[int]) -> Tensor:
    """Every row's last state (B, H), longest first: the rows running at the last step, then those that
    ended one step earlier, ..., then any row that never ran (its initial state)."""
    steps = len(live)
    pieces = [outputs[offsets[-1] : offsets[-1] + live[-1]]]
    for t in range(steps - 1, 0, -1):  # rows [live[t], live[t - 1]) ended after step t - 1
        if live[t] < live[t - 1]:
            pieces.append(outputs[offsets[t - 1] + live[t] : offsets[t - 1] + live[t - 1]])
    if live[0] < state.shape[0]:
        pieces.append(state[live[0] :])
    return torch.cat(pieces) if len(pieces) > 1 else pieces[0].clone()


class _GRULoop(torch.autograd.Function):
    """The loop of :func:`gru_by_length` as one autograd node: the forward runs it unrecorded and the
    backward runs backpropagation through time by hand.

    With gh = W_h h + b_h split as (reset, update, new), the step is r, z = sigmoid(x_r + gh_r),
    sigmoid(x_z + gh_z); n = tanh(x_n + r gh_n); h' = n + z (h - n). Given dh' (the gradient that
    reaches h' from the output at t and from step t + 1), with a the gates' pre-activations:

        da_n = dh' (1 - z) (1 - n^2)        (also the gradient of x_n)
        da_z = dh' (h - n) z (1 - z)        da_r = da_n gh_n r (1 - r)        dgh_n = da_n r
        dh = dh' z + [da_r, da_z, dgh_n] W_h

    The forward keeps, per packed item, (r, z, gh_n, n) in one buffer (P, 4, H): the step's addmm
    writes gh into its first three slots, the gates are then computed in place. The backward writes
    (dgh_n, da_r, da_z, da_n) into another (P, 4, H): slots 0-2 are the gradient of the step's
    recurrent product (W_h's rows taken in the order new, reset, update), slots 1-3 that of the
    inputs, returned as a view; W_h's and b_h's gradients are one GEMM against the packed previous
    states and one sum after the loop.

    Measured on the 2-core CPU (H = 256, 128 rows): a torch call costs several microseconds and a
    slice about four, as much as the arithmetic of a step's elementwise op, and a pass over a
    packed (P, H) tensor runs from memory at about 2 ns an item. So the loops make no slices (every
    per-step view comes from one ``split`` of a column view), a step's elementwise work is done on
    the step's rows while they are in cache (10 ops in the backward, 5 besides the addmm in the
    forward), and nothing is precomputed in whole-batch passes.
    """

    @staticmethod
    def forward(ctx, inputs: Tensor, state: Tensor, weight_hh: Tensor, bias_hh: Tensor,
                live: tuple[int, ...]) -> tuple[Tensor, Tensor]:
        inputs = inputs.contiguous()
        total, width = inputs.shape[0], state.shape[1]
        offsets = [0]
        for n in live[:-1]:
            offsets.append(offsets[-1] + n)
        saved = inputs.new_empty(total, 4, width)  # gh_r -> r, gh_z -> z, gh_n, n
        outputs = inputs.new_empty(total, width)
        by_step = [column.split(live) for column in (
            saved[:, 0:3].reshape(total, 3 * width), saved[:, 0:2], inputs[:, : 2 * width].view(total, 2, width),
            inputs[:, 2 * width :], saved[:, 0], saved[:, 2], saved[:, 3], saved[:, 1], outputs)]
        weight_t = weight_hh.t()
        h = state[: live[0]]
        for n, product, gates, x_gates, x_new, reset, hidden_new, new, update, out in zip(live, *by_step,
                                                                                          strict=True):
            if n < h.shape[0]:
                h = h[:n]
            torch.addmm(bias_hh, h, weight_t, out=product)  # gh
            gates.add_(x_gates).sigmoid_()  # r, z
            torch.addcmul(x_new, reset, hidden_new, out=new).tanh_()
            h = torch.lerp(new, h, update, out=out)  # n + z (h - n)
        ctx.save_for_backward(state, weight_hh, saved, outputs)
        ctx.live, ctx.offsets = live, offsets
        ctx.set_materialize_grads(False)
        return outputs, _final_states(state, outputs, live, offsets)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_outputs: Tensor | None, grad_final: Tensor | None):
        state, weight_hh, saved, outputs = ctx.saved_tensors
        live, offsets = ctx.live, ctx.offsets
        if grad_outputs is None and grad_final is None:
            return None, None, None, None, None
        rows, width = state.shape
        total = outputs.shape[0]
        weight = torch.cat([weight_hh[2 * width :], weight_hh[: 2 * width]])  # rows new, reset, update
        grads = saved.new_empty(total, 4, width)  # dgh_n, da_r, da_z, da_n
        # dh for the live rows; the rows that end at a step hold their final state's gradient until then
        carried = state.new_zeros(rows, width) if grad_final is None else state.new_empty(rows, width).copy_(grad_final)
        pairs, singles = saved.new_empty(rows, 2, width), saved.new_empty(rows, width)  # scratch
        prefixes = {n: (carried[:n], pairs[:n], singles[:n]) for n in dict.fromkeys(live)}
        # each step's h, packed as the inputs are (P, H), and a column of ones: one GEMM gives W_h's
        # gradient and b_h's (a sum over P rows of the strided gradients is a slower pass of its own)
        extended = state.new_empty(total, width + 1)
        extended[:, width] = 1
        previous = torch.cat([state[: live[0]], *(outputs[offsets[t - 1] : offsets[t - 1] + live[t]]
                                                   for t in range(1, len(live)))], out=extended[:, :width])
        by_step = [column.split(live) for column in (
            saved[:, 0:2], saved[:, 1], saved[:, 3], saved[:, 0::2], previous, grads[:, 3], grads[:, 2],
            grads[:, 3:4], grads[:, 0:2], grads[:, 1:3], grads[:, 0:3].reshape(total, 3 * width))]
        from_outputs = grad_outputs.split(live) if grad_outputs is not None else [None] * len(live)
        steps = list(zip(live, from_outputs, *by_step, strict=True))
        for (n, from_output, gates, update, new, reset_hidden, h, d_new, d_update, d_new_, d_reset_hidden,
             d_reset_update, d_product) in reversed(steps):
            dh, slopes, kept = prefixes[n]
            if from_output is not None:
                dh += from_output
            torch.addcmul(gates, gates, gates, value=-1, out=slopes)  # r (1 - r), z (1 - z)
            torch.addcmul(dh, dh, update, value=-1, out=kept)  # dh' (1 - z)
            torch.mul(new, new, out=d_new)
            torch.addcmul(kept, kept, d_new, value=-1, out=d_new)  # da_n
            torch.sub(h, new, out=d_update)
            torch.mul(d_new_, reset_hidden, out=d_reset_hidden)  # dgh_n = da_n r; da_n gh_n
            d_reset_update.mul_(slopes)  # da_r = da_n gh_n r (1 - r); (h - n) z (1 - z)
            d_update.mul_(dh)  # da_z
            dh.sub_(kept).addmm_(d_product, weight)  # dh' z + dgh W_h: the previous step's dh'
        grad_inputs = grads[:, 1:4].reshape(total, 3 * width) if ctx.needs_input_grad[0] else None
        grad_state = carried if ctx.needs_input_grad[1] else None
        grad_weight = grad_bias = None
        if ctx.needs_input_grad[2] or ctx.needs_input_grad[3]:
            d_products = grads[:, 0:3].reshape(total, 3 * width)  # rows new, reset, update
            both = d_products.t().mm(extended if ctx.needs_input_grad[3] else previous)
            grad_weight = both[:, :width].roll(-width, 0) if ctx.needs_input_grad[2] else None  # reset, update, new
            grad_bias = both[:, width].roll(-width, 0) if ctx.needs_input_grad[3] else None
        return grad_inputs, grad_state, grad_weight, grad_bias, None
