"""Latent optimisation of a molecular property (Gómez-Bombarelli et al. 2018, section "Bayesian
optimization" replaced by its simplest form): encode a seed molecule, climb the property head's
prediction by gradient ascent in z, and decode along the way.

The objective is the head's standardised prediction minus ``prior_weight`` times half the squared
norm of z: without that pull toward the prior's typical set the ascent runs to codes the decoder
never saw, where it writes nonsense that the head still scores highly. Each decoded molecule is
measured with RDKit as well, because the head's prediction is only a guess about the code.

Three things can make the answer worse than doing nothing, and each is said in one warning: the
seed's own code decodes to another molecule (an undertrained model, or a seed far from the training
data), no molecule along the path beats the seed (which stays a candidate, so the best answer is
never worse than it), and the head's predictions part from RDKit's values (the ascent follows the
head's errors rather than better molecules).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from vaekit.api import Run
from vaekit.data import properties
from vaekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SEED_STEP = -1  # the path's first row: the seed itself, measured, before any decoding
DECODINGS = ("greedy", "beam")  # deterministic, so that a path is reproducible
# A prediction this many training standard deviations from RDKit's value is no longer noise of the
# head (whose error is below one standard deviation wherever it explains any of the variance).
EXPLOITED_STDS = 2.0


@dataclass
class Step:
    """One point of the path: the step (``SEED_STEP`` for the seed itself), the decoding of z, whether
    RDKit reads it, the head's prediction at z and the property RDKit measures on the molecule (NaN if
    invalid)."""

    step: int
    smiles: str
    valid: bool
    predicted: float
    measured: float


def optimize_property(run: Run, seed: str, prop: str, steps: int = 200, lr: float = 0.05,
                      prior_weight: float = 0.05, every: int = 20, minimize: bool = False,
                      decoding: str = "greedy") -> list[Step]:
    """The path from ``seed`` (a SMILES string) under gradient ascent (descent with ``minimize``) of
    the head's ``prop``, starting at the seed's posterior mean: the seed itself first (step
    ``SEED_STEP``, its measured value), then one :class:`Step` every ``every`` steps decoded by
    ``decoding`` (greedy or beam). Warns when the seed's code does not decode to the seed, when no
    decoded molecule beats the seed, and when the head's predictions part from RDKit's values."""
    head = run.model.head("property_head")
    if head is None or not run.spec.properties:
        raise ConfigError("this run has no property head: train it on molecules with "
                          "--set 'data.properties=[qed,logp]'")
    if prop not in run.spec.properties:
        raise ConfigError(f"--property {prop!r}: this run's head predicts {', '.join(run.spec.properties)}")
    if steps < 1 or every < 1 or not lr > 0 or not prior_weight >= 0:
        raise ConfigError("--steps and --every must be 1 or more, --lr above 0 and --prior-weight 0 or more")
    if decoding not in DECODINGS:
        raise ConfigError(f"--decode {decoding!r}: expected {' or '.join(DECODINGS)} (a deterministic decoding)")
    seed_value = float(properties.compute([seed], [prop])[0, 0])
    if math.isnan(seed_value):
        raise DataError(f"--seed {seed!r}: RDKit cannot read it as a molecule (expected a SMILES string)")
    column = run.spec.properties.index(prop)
    sign = -1.0 if minimize else 1.0
    start = run.encode_all(np.array([seed], dtype=object), name="--seed")[0].to(run.device)  # (1, L), the mean
    z = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    path: list[Step] = []
    for step in range(steps + 1):
        with torch.enable_grad():
            standardised = head(z)[0, column]
            goal = sign * standardised - prior_weight * 0.5 * z.square().sum()
            (gradient,) = torch.autograd.grad(goal, z)
        if step % every == 0 or step == steps:
            with torch.no_grad():
                predicted = float(run.spec.property_units(head(z))[0, column])
            if step == 0:
                path.append(Step(SEED_STEP, seed, True, predicted, seed_value))
            path.append(_decoded(run, z.detach(), step, prop, predicted, decoding))
        if step == steps:
            break
        z.grad = -gradient  # the optimiser descends; we climb the goal
        optimizer.step()
    _check_reconstruction(run, start, path, prop, decoding)
    _check_improvement(path, prop, minimize)
    _check_predictions(path, prop, run.spec.property_std[column])
    return path


def _decoded(run: Run, z: torch.Tensor, step: int, prop: str, predicted: float, decoding: str) -> Step:
    from vaekit.applications.generate import sample_sequences

    smiles = sample_sequences(run, 1, decoding=decoding, z=z)[0]
    measured = float(properties.compute([smiles], [prop])[0, 0])
    return Step(step, smiles, not math.isnan(measured), predicted, measured)


def _check_reconstruction(run: Run, start: torch.Tensor, path: list[Step], prop: str, decoding: str) -> None:
    """Warn when the seed's code decodes to another molecule: the path then starts from that one.
    The other deterministic decoding is tried too, since beam search often writes back what greedy
    decoding misses."""
    from vaekit.applications.generate import sample_sequences
    from vaekit.evaluation.molecules import canonical

    seed, first = path[0], path[1]
    target = canonical([seed.smiles])[0]
    if canonical([first.smiles])[0] == target:
        return
    other = next(d for d in DECODINGS if d != decoding)
    if canonical(sample_sequences(run, 1, decoding=other, z=start))[0] == target:
        reason = f"; {other} decoding writes it back: try --decode {other}"
    else:
        reason = ": the model is undertrained or the seed is far from the training data"
    value = f"{prop} {first.measured:.3f}" if first.valid else "not a molecule"
    log.warning("the seed decodes to %s (%s), not to itself%s; the path starts from that decoding",
                first.smiles or "an empty string", value, reason)


def _check_improvement(path: list[Step], prop: str, minimize: bool) -> None:
    """Warn when no decoded molecule beats the seed (which then stays the best answer)."""
    seed, decoded = path[0], path[1:]
    top = best(decoded, minimize)
    if top is not None and (top.measured < seed.measured if minimize else top.measured > seed.measured):
        return
    found = "none of the decoded strings is a valid molecule" if top is None else f"best found {top.measured:.3f}"
    log.warning("no molecule along the path beat the seed (%s %.3f); %s", prop, seed.measured, found)


def _check_predictions(path: list[Step], prop: str, scale: float) -> None:
    """Warn when the head's prediction at some step is ``EXPLOITED_STDS`` training standard deviations
    from RDKit's value of the molecule decoded there: the climb then follows the head's errors."""
    decoded = [s for s in path[1:] if s.valid]  # the seed's row is measured, not decoded
    if not decoded:
        return
    worst = max(decoded, key=lambda s: abs(s.predicted - s.measured))
    apart = abs(worst.predicted - worst.measured) / scale
    if apart > EXPLOITED_STDS:
        log.warning("the head's %s prediction parts from RDKit's value along the path (step %d: predicted %.3f, "
                    "measured %.3f, %.1f training standard deviations apart): the climb follows the head's errors, "
                    "not better molecules; trust the measured values",
                    prop, worst.step, worst.predicted, worst.measured, apart)


def best(path: list[Step], minimize: bool = False) -> Step | None:
    """The valid molecule of the path with the best measured property (None if none is valid); the
    seed's row counts, so the answer is never worse than the seed."""
    valid = [s for s in path if s.valid]
    if not valid:
        return None
    return min(valid, key=lambda s: s.measured) if minimize else max(valid, key=lambda s: s.measured)
