"""Latent optimisation of a molecular property (Gómez-Bombarelli et al. 2018, section "Bayesian
optimization" replaced by its simplest form): encode a seed molecule, climb the property head's
prediction by gradient ascent in z, and decode along the way.

The objective is the head's standardised prediction minus ``prior_weight`` times half the squared
norm of z: without that pull toward the prior's typical set the ascent runs to codes the decoder
never saw, where it writes nonsense that the head still scores highly. Each decoded molecule is
measured with RDKit as well, because the head's prediction is only a guess about the code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from vaekit.api import Run
from vaekit.data import properties
from vaekit.errors import ConfigError, DataError


@dataclass
class Step:
    """One decoded point of the path: the step, the greedy decoding of z, whether RDKit reads it,
    the head's prediction at z and the property RDKit measures on the molecule (NaN if invalid)."""

    step: int
    smiles: str
    valid: bool
    predicted: float
    measured: float


def optimize_property(run: Run, seed: str, prop: str, steps: int = 200, lr: float = 0.05,
                      prior_weight: float = 0.05, every: int = 20, minimize: bool = False) -> list[Step]:
    """The path from ``seed`` (a SMILES string) under gradient ascent (descent with ``minimize``) of
    the head's ``prop``: one :class:`Step` every ``every`` steps, the seed's code first."""
    head = getattr(run.model, "property_head", None)
    if head is None or not run.spec.properties:
        raise ConfigError("this run has no property head: train it on molecules with "
                          "--set 'data.properties=[qed,logp]'")
    if prop not in run.spec.properties:
        raise ConfigError(f"--property {prop!r}: this run's head predicts {', '.join(run.spec.properties)}")
    if steps < 1 or every < 1 or not lr > 0 or not prior_weight >= 0:
        raise ConfigError("--steps and --every must be 1 or more, --lr above 0 and --prior-weight 0 or more")
    if not isinstance(seed, str) or math.isnan(properties.compute([seed], [prop])[0, 0]):
        raise DataError(f"--seed {seed!r}: RDKit cannot read it as a molecule (expected a SMILES string)")
    column = run.spec.properties.index(prop)
    sign = -1.0 if minimize else 1.0
    z = run.encode_all(np.array([seed], dtype=object), name="--seed")[0].to(run.device)  # (1, L), the mean
    z.requires_grad_(True)
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
            path.append(_decoded(run, z.detach(), step, prop, predicted))
        if step == steps:
            break
        z.grad = -gradient  # the optimiser descends; we climb the goal
        optimizer.step()
    return path


def _decoded(run: Run, z: torch.Tensor, step: int, prop: str, predicted: float) -> Step:
    from vaekit.applications.generate import sample_sequences

    smiles = sample_sequences(run, 1, decoding="greedy", z=z)[0]
    measured = float(properties.compute([smiles], [prop])[0, 0])
    return Step(step, smiles, not math.isnan(measured), predicted, measured)


def best(path: list[Step], minimize: bool = False) -> Step | None:
    """The valid molecule of the path with the best measured property (None if none is valid)."""
    valid = [s for s in path if s.valid]
    if not valid:
        return None
    return min(valid, key=lambda s: s.measured) if minimize else max(valid, key=lambda s: s.measured)
