"""End-of-training diagnostics: one line for each way a finished run can look fine and not be.

:func:`end_of_training_warnings` runs after every training (the command line and the Python API
both end in :func:`vaekit.api.train`); each check reads what training already measured or a few
hundred held-out items, and returns a line that names what it saw and the remedy:

- posterior collapse: fewer than half of the latent dimensions active (or none);
- what only the data's kind shows (:meth:`DataKind.held_out_warnings
  <vaekit.data.kinds.base.DataKind.held_out_warnings>`): a sequence model that has not learnt to
  reconstruct, whose greedy decodings of held-out items get few tokens right, are mostly ``<unk>``,
  or are mostly one and the same string;
- training steps that gave NaN/Inf and were skipped;
- a metric that ended NaN or infinite.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from vaekit.data.kinds.base import either
from vaekit.evaluation.latent import ACTIVE_THRESHOLD, latent_summary
from vaekit.models.vae import VAE
from vaekit.networks.factory import network_kind

if TYPE_CHECKING:  # a run's whole configuration is above evaluation; its sections are not
    from vaekit.config import RunConfig

HELD_ITEMS = 2000  # held-out items whose posteriors are looked at, as LatentMonitor does


def collapse_warning(active: int, latent_dim: int, data_values: int, config: RunConfig,
                     conv: bool = False) -> str | None:
    """A line when fewer than half of the latent dimensions a code could use are active (a code of
    more dimensions than the data has values cannot use the rest), with the remedies the config
    does not apply yet (``conv``: the run has a convolutional network, which an MLP may replace)."""
    if active >= min(latent_dim, data_values) / 2:
        return None
    remedies = [f"more train.epochs (now {config.train.epochs})"]
    if config.train.kl_warmup == "none":
        remedies.append("train.kl_warmup=linear")
    if config.model.free_bits == 0:
        remedies.append("model.free_bits=0.1")
    if config.model.beta > 0.5:
        remedies.append(f"a smaller model.beta (now {config.model.beta:g})")
    if conv:
        remedies.append("model.network=mlp")
    if active == 0:
        what, advice = "posterior collapse", "try"
    else:  # a code wider than the data needs also ends so: say it, without calling it a failure
        what, advice = ("the others carry nothing about the data (a code wider than the data needs looks like "
                        "this too)"), "if more were expected, try"
    return (f"only {active} of {latent_dim} latent dimensions are active (their posterior mean varies across "
            f"items with variance > {ACTIVE_THRESHOLD}): {what}; {advice} {either(remedies)}")


def non_finite_warning(metrics: dict[str, Any]) -> str | None:
    """A line naming every metric that is NaN or infinite (a list by how many of its values are)."""
    bad = []
    for name, value in _flatten(metrics):
        if isinstance(value, list):
            count = sum(not math.isfinite(v) for v in value if isinstance(v, (int, float)))
            if count:
                bad.append(f"{name} ({count} of {len(value)} values)")
        elif isinstance(value, float) and not math.isfinite(value):
            bad.append(f"{name} = {value}")
    if not bad:
        return None
    return (f"metrics.json: {', '.join(bad)} not finite: training diverged or a quantity is undefined "
            "(a constant property's R^2); look at history.csv, lower train.lr or set train.grad_clip")


def skipped_steps_warning(history: list[dict[str, float]]) -> str | None:
    """A line when some training steps gave NaN/Inf and were skipped (their update not made):
    how many, in which epochs, and the remedy."""
    skipped = {int(row["epoch"]): int(row.get("skipped_steps", 0)) for row in history}
    epochs = [epoch for epoch, count in skipped.items() if count]
    if not epochs:
        return None
    total = sum(skipped.values())
    where = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {either([str(e) for e in epochs[:8]])}"
    return (f"{total} training step{'s' if total > 1 else ''} gave NaN/Inf and {'were' if total > 1 else 'was'} "
            f"skipped ({where}; history.csv counts them); if this recurs, lower train.lr or set train.grad_clip")


def _flatten(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items = []
    for key, value in tree.items():
        if isinstance(value, dict):
            items += _flatten(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", value))
    return items


@torch.no_grad()
def end_of_training_warnings(model: VAE, config: RunConfig, held: dict[str, Tensor] | None,
                             metrics: dict[str, Any] | None = None, spec: Any = None,
                             history: list[dict[str, float]] | None = None) -> list[str]:
    """Every diagnostic line for a trained ``model``: ``held`` are held-out tensors in model space
    (``x``, and ``y`` for a conditional model), ``metrics`` the evaluation's (its active units are
    used when given), ``spec`` the data spec (which turns a sequence model's ids into text),
    ``history`` the rows of history.csv."""
    lines = [skipped_steps_warning(history or [])]
    if held is not None and len(held["x"]):
        x = held["x"][:HELD_ITEMS]
        condition = held.get("y")[:HELD_ITEMS] if model.condition_dim and "y" in held else None
        active = (metrics or {}).get("active_units")
        if active is None:
            summary = latent_summary(model, x, condition)
            active = None if summary is None else int(summary["active_units"])
        if active is not None:
            conv = spec is not None and network_kind(spec, config.model) == "conv"
            lines.append(collapse_warning(active, model.latent_dim, x[0].numel(), config, conv))
        if spec is not None:  # what only this kind of data shows (sequences: undertrained decodings)
            lines += spec.data_kind.held_out_warnings(spec, model, x, condition, config)
    if metrics is not None:
        lines.append(non_finite_warning(metrics))
    return [line for line in lines if line is not None]
