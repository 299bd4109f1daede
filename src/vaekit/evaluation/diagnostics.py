"""End-of-training diagnostics: one line for each way a finished run can look fine and not be.

:func:`end_of_training_warnings` runs after every training (the command line and the Python API
both end in :func:`vaekit.api.train`); each check reads what training already measured or a few
hundred held-out items, and returns a line that names what it saw and the remedy:

- posterior collapse: fewer than half of the latent dimensions active (or none);
- a sequence model that has not learnt to reconstruct: its greedy decodings of held-out items get
  few tokens right, are mostly ``<unk>``, or are mostly one and the same string;
- training steps that gave NaN/Inf and were skipped;
- a metric that ended NaN or infinite.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import torch
from torch import Tensor

from vaekit.config import RunConfig
from vaekit.data.tokens import BOS, EOS, PAD, UNK
from vaekit.evaluation.latent import ACTIVE_THRESHOLD, latent_summary
from vaekit.models.vae import VAE
from vaekit.networks.factory import network_kind

HELD_ITEMS = 2000  # held-out items whose posteriors are looked at, as LatentMonitor does
DECODED_ITEMS = 200  # held-out sequences decoded greedily (step by step, so kept few)
LOW_ACCURACY = 0.3  # share of tokens a sequence model's reconstructions get right, below which it warns
MOSTLY = 0.5  # share of <unk> tokens, or of one repeated string, that counts as "mostly"


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
            f"items with variance > {ACTIVE_THRESHOLD}): {what}; {advice} {_either(remedies)}")


def sequence_warning(inputs: Tensor, decoded: Tensor, texts: list[str], config: RunConfig) -> str | None:
    """A line when greedy reconstructions ``decoded`` (N, T) of token ids ``inputs`` (N, T), shown
    as ``texts``, get less than ``LOW_ACCURACY`` of the tokens right, are mostly ``<unk>`` or
    mostly one string: what was seen, and the remedy."""
    targets = inputs[:, 1:]  # (N, T-1) <bos> is given, never predicted
    known = targets != PAD
    accuracy = float((decoded[:, 1:] == targets)[known].double().mean())
    words = decoded[:, 1:][(decoded[:, 1:] != PAD) & (decoded[:, 1:] != EOS) & (decoded[:, 1:] != BOS)]
    unknown = float((words == UNK).double().mean()) if words.numel() else 0.0
    common, count = Counter(texts).most_common(1)[0]
    repeated = count / len(texts)
    if accuracy >= LOW_ACCURACY and unknown < MOSTLY and repeated < MOSTLY:
        return None
    seen = [f"{accuracy:.0%} of tokens right"]
    if unknown >= MOSTLY:
        seen.append(f"{unknown:.0%} of the decoded tokens <unk>")
    if repeated >= MOSTLY:
        seen.append(f"{repeated:.0%} of them the same string {common[:40]!r}")
    remedies = [f"more train.epochs (now {config.train.epochs})"]
    if unknown >= MOSTLY:
        remedies.append(f"a smaller data.min_freq (now {config.data.min_freq}) so fewer words become <unk>")
    if repeated >= MOSTLY:  # the decoder ignores z
        remedies += ["train.kl_warmup=linear"] * (config.train.kl_warmup == "none")
        remedies += ["model.word_dropout=0.3"] * (config.model.word_dropout == 0)
    return (f"the sequence model looks undertrained: greedy reconstructions of {len(texts)} held-out items get "
            f"{', '.join(seen)}; try {_either(remedies)}")


def _either(options: list[str]) -> str:
    return options[0] if len(options) == 1 else f"{', '.join(options[:-1])} or {options[-1]}"


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
    where = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {_either([str(e) for e in epochs[:8]])}"
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
        if spec is not None and spec.vocabulary is not None:
            x, condition = x[:DECODED_ITEMS], None if condition is None else condition[:DECODED_ITEMS]
            decoded = model.reconstruct(x, condition).mean.long()  # (N, T) greedy
            lines.append(sequence_warning(x.long(), decoded, spec.to_text(decoded), config))
    if metrics is not None:
        lines.append(non_finite_warning(metrics))
    return [line for line in lines if line is not None]
