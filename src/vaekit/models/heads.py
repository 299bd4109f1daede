"""Supervised heads on z: small networks that predict observed targets from the posterior mean,
trained with the VAE (Gómez-Bombarelli et al. 2018's property predictor is one).

A head is a part of the model (``VAE.add_head``), registered after every other module so that a
model without heads keeps its parameter order, and its error is a term every objective adds beside
its bound (``Objective.__call__``). The bound itself is left as the objective computed it, so NLL
and ELBO stay comparable with runs that have no head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import Field
from torch import Tensor, nn

from vaekit.data.spec import DataSpec
from vaekit.sections import Section


class HeadOptions(Section):
    """The supervised heads' options."""

    property_weight: float = Field(1.0, ge=0.0)
    """Weight of the property head's squared error (data.properties)."""


@dataclass(frozen=True)
class Head:
    """What a head predicts and how it is trained: the model's module ``name`` maps the posterior
    mean (B, L) to ``outputs`` values scored against ``batch[target]`` (NaN: no target) by squared
    error, weighted by ``weight`` in the loss and logged as ``metric``."""

    name: str
    target: str
    outputs: int
    weight: float
    metric: str
    hidden: int = 64


def heads_for(spec: DataSpec, config: HeadOptions) -> list[Head]:
    """The heads this data and config ask for: molecules with ``data.properties`` (standardised by
    the spec) get a property head while ``model.property_weight`` is above 0."""
    if not spec.properties or config.property_weight <= 0:
        return []
    return [Head("property_head", "t", len(spec.properties), config.property_weight, "property_mse")]


def mlp_head(latent_dim: int, outputs: int, hidden: int = 64) -> nn.Module:
    """z (..., L) -> (..., outputs): the small MLP of chemical_vae's predictor."""
    return nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, outputs))


def squared_error(prediction: Tensor, target: Tensor) -> Tensor:
    """Per-sample squared error (B,) summed over the outputs that have a target (NaN: none)."""
    known = ~torch.isnan(target)
    return torch.where(known, prediction - torch.nan_to_num(target), torch.zeros_like(prediction)).square().sum(-1)
