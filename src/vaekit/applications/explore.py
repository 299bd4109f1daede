"""Looking inside a trained model: interpolation, latent traversals, attribute vectors, analogies and
class swaps. Each function takes a :class:`~vaekit.Run` and raw inputs in the data's units, does the
code arithmetic with :mod:`vaekit.applications.latent_ops`, and returns decoded data (N, *shape) in
the data's units, ready for :meth:`DataKind.write <vaekit.data.kinds.base.DataKind.write>`.

A conditional run encodes each input under its label and decodes under the label given (by default
the input's own), so the codes carry the style and the label the content. Attribute vectors and
analogies are for unconditional runs: in a conditional one the label, not the code, carries the class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vaekit.api import Run
from vaekit.applications import latent_ops
from vaekit.distributions.kl import kl_per_dim
from vaekit.distributions.posteriors import DiagonalGaussian
from vaekit.errors import DataError


def _labels(run: Run, labels: np.ndarray | Tensor | None, n: int, what: str) -> Tensor | None:
    """The labels a conditional run needs for ``n`` inputs (None for an unconditional run)."""
    if not run.model.condition_dim:
        return None
    if labels is None:
        raise DataError(f"{what}: this run is conditional and needs the inputs' labels")
    labels = torch.as_tensor(labels, device=run.device).reshape(-1)
    if len(labels) != n:
        raise DataError(f"{what}: expected {n} labels, one per input, got {len(labels)}")
    return labels


def _unconditional(run: Run, what: str) -> None:
    if run.model.condition_dim:
        raise DataError(f"{what}: works on unconditional runs; a conditional run's class is its label "
                        "(use swap_labels)")


def interpolate(run: Run, a: np.ndarray | Tensor, b: np.ndarray | Tensor, steps: int = 10, path: str = "linear",
                labels: Sequence[int] | None = None) -> Tensor:
    """Decoded points on the path between the posterior means of two inputs ``a`` and ``b`` (each
    (*shape) or (1, *shape)): (steps, *shape), both ends included. ``path`` is "linear" or
    "spherical" (slerp; White 2016). A conditional run takes the two labels and decodes under
    ``a``'s."""
    x = run.spec.data_kind.as_batch(run.spec, [a, b])  # (2, *shape), or two strings
    condition = _labels(run, labels, 2, "interpolate")
    z = run.encode(x, condition=condition).mean  # (2, L)
    codes = latent_ops.interpolation_path(z[0], z[1], steps, path)  # (steps, L)
    return run.decode(codes, condition=None if condition is None else condition[:1].expand(steps))


@dataclass
class LatentSummary:
    """How a set of inputs uses the latent space: their posterior ``means`` (N, L), each dimension's
    mean ``kl`` to the prior (L,) (for a deterministic code, its mean square), the dimensions by KL
    (``order``, most informative first) and the spread of the means per dimension (L,)."""

    means: Tensor
    kl: Tensor
    order: list[int]
    spread: Tensor


def summarize(run: Run, x: np.ndarray | Tensor, labels: np.ndarray | Tensor | None = None,
              batch_size: int = 1024) -> LatentSummary:
    """:class:`LatentSummary` of inputs ``x`` (at least 2), a conditional run's encoded under ``labels``."""
    if len(x) < 2:  # x stays as given: a table's rows may hold text
        raise DataError(f"expected at least 2 inputs to measure each latent dimension's spread, got {len(x)}")
    condition = _labels(run, labels, len(x), "summarize")
    mean, logvar = run.encode_all(x, condition=condition, batch_size=batch_size)  # (N, L) each
    kl = (mean.pow(2) if logvar is None else kl_per_dim(DiagonalGaussian(mean, logvar))).mean(0)  # (L,)
    return LatentSummary(means=mean, kl=kl, order=latent_ops.order_by_kl(kl), spread=latent_ops.latent_std(mean))


@dataclass
class Traversal:
    """A traversal grid: ``images`` (rows * steps, *shape), one row per latent dimension in ``dims``
    (most informative first), columns at ``values`` standard deviations from the centre."""

    images: Tensor
    dims: list[int]
    values: Tensor  # (steps,) offsets in units of each dimension's spread
    kl: Tensor  # (L,) mean KL per dimension on the reference inputs (a deterministic code: mean squared code)


def traverse(run: Run, reference: np.ndarray | Tensor, center: np.ndarray | Tensor | None = None,
             n_dims: int | None = 10, span: float = 3.0, steps: int = 9, labels: np.ndarray | Tensor | None = None,
             batch_size: int = 1024, center_label: int | None = None) -> Traversal:
    """Vary one latent dimension at a time (Higgins et al. 2017): rows ordered by each dimension's
    mean KL to N(0, 1) on ``reference`` inputs (at least 2; for a deterministic code, its mean
    square), values across +-``span`` times the spread of that dimension's posterior means on them,
    every other dimension at ``center``'s code (default: the mean code).
    A conditional run encodes and decodes a given ``center`` under its ``center_label`` (then
    required); with no centre, every row is decoded under ``center_label``, by default the first
    reference input's label."""
    reference = torch.as_tensor(np.asarray(reference))
    if len(reference) < 2:
        raise DataError(f"traverse: expected at least 2 reference inputs to measure each dimension's spread, "
                        f"got {len(reference)}")
    condition = _labels(run, labels, len(reference), "traverse")
    summary = summarize(run, reference, condition, batch_size)
    kl, order = summary.kl, summary.order[: n_dims or len(summary.kl)]
    if center is not None and run.model.condition_dim and center_label is None:
        raise DataError("traverse: this run is conditional and needs the centre input's label (center_label)")
    row_condition = condition[:1] if center_label is None and condition is not None else _labels(
        run, None if center_label is None else [center_label], 1, "traverse")
    if center is None:
        origin = summary.means.mean(0)  # (L,)
    else:
        x = torch.as_tensor(np.asarray(center)).reshape(1, *run.spec.shape)  # (1, *shape)
        origin = run.encode(x, condition=row_condition).mean[0]  # (L,)
    grid = latent_ops.traversal_grid(origin.cpu(), order, span, steps, summary.spread)  # (R, S, L)
    codes = grid.reshape(-1, grid.shape[-1])  # (R * S, L)
    decoded = run.decode(codes, condition=None if row_condition is None else row_condition.expand(len(codes)))
    return Traversal(images=decoded, dims=order, values=torch.linspace(-span, span, steps), kl=kl)


def shift_attribute(run: Run, codes_of: np.ndarray | Tensor, in_a: Tensor | Sequence, in_b: Tensor | Sequence,
                    apply_to: np.ndarray | Tensor, strengths: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0),
                    batch_size: int = 1024) -> Tensor:
    """Add the attribute vector "mean code of group A minus mean code of group B" (both groups
    indices or masks into ``codes_of``; Larsen et al. 2016, White 2016) to the codes of ``apply_to``
    at each strength: (len(apply_to) * len(strengths), *shape), one row per input."""
    _unconditional(run, "shift_attribute")
    codes, _ = run.encode_all(torch.as_tensor(np.asarray(codes_of)), batch_size=batch_size)  # (N, L)
    vector = latent_ops.attribute_vector(codes, in_a, in_b)  # (L,)
    start = run.encode(torch.as_tensor(np.asarray(apply_to))).mean.cpu()  # (M, L)
    moved = latent_ops.apply_attribute(start, vector, list(strengths))  # (M, S, L)
    return run.decode(moved.reshape(-1, moved.shape[-1]))


def analogy(run: Run, a: np.ndarray | Tensor, b: np.ndarray | Tensor, c: np.ndarray | Tensor) -> Tensor:
    """"a is to b as c is to ?": decode z_c + (z_b - z_a) for each row of ``c`` (N, *shape); returns
    (N, *shape)."""
    _unconditional(run, "analogy")
    x = torch.stack([torch.as_tensor(np.asarray(v)).reshape(run.spec.shape) for v in (a, b)])  # (2, *shape)
    za, zb = run.encode(x).mean  # (L,) each
    zc = run.encode(torch.as_tensor(np.asarray(c)).reshape(-1, *run.spec.shape)).mean
    return run.decode(latent_ops.analogy(za, zb, zc))


def swap_labels(run: Run, x: np.ndarray | Tensor, labels: np.ndarray | Tensor) -> Tensor:
    """Style and content apart (Kingma et al. 2014, sec. 5.2): each input encoded under its own label,
    decoded under every label; (N * K, *shape), row i is input i drawn as class 0..K-1."""
    k = run.model.condition_dim
    if not k:
        raise DataError("swap_labels: this run is not conditional (train the cvae preset)")
    x = torch.as_tensor(np.asarray(x))
    condition = _labels(run, labels, len(x), "swap_labels")
    z = run.encode(x, condition=condition).mean  # (N, L)
    codes = z.repeat_interleave(k, 0)  # (N * K, L)
    return run.decode(codes, condition=torch.arange(k, device=run.device).repeat(len(x)))
