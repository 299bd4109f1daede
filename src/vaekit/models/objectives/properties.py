"""A property head's squared error added to any objective (Gómez-Bombarelli et al. 2018).

A wrapper rather than a sixth axis or a new objective: the head predicts observed properties from
the posterior mean, so its error is a supervised term beside the bound. The bound itself
(``per_sample``) is left as the inner objective computed it, so NLL and ELBO stay comparable with
runs that have no head. The wrapper shares the inner objective's scheduled tensors (KL weight,
capacity) and its auxiliary module, so warm-up and discriminators work unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vaekit.models.objectives.base import Batch, Objective
from vaekit.models.outputs import LossOutput


def property_head(latent_dim: int, n_properties: int, hidden: int = 64) -> nn.Module:
    """z (..., L) -> standardised properties (..., P): the small MLP of chemical_vae's predictor."""
    return nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, n_properties))


def squared_error(prediction: Tensor, target: Tensor) -> Tensor:
    """Per-sample squared error (B,) summed over the properties that have a target (NaN: none)."""
    known = ~torch.isnan(target)
    return torch.where(known, prediction - torch.nan_to_num(target), torch.zeros_like(prediction)).square().sum(-1)


class PropertyObjective:
    """``inner``'s loss plus ``weight`` times the head's squared error on standardised properties.
    Every other attribute (kl_weight, capacity, aux_module, needs_density...) is the inner
    objective's, read and written through."""

    _own = ("inner", "weight")

    def __init__(self, inner: Objective, weight: float) -> None:
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "weight", weight)
        inner.keep_output = True

    def __getattr__(self, name: str):
        if name in PropertyObjective._own:
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value) -> None:
        if name in PropertyObjective._own:
            object.__setattr__(self, name, value)
        else:
            setattr(self.inner, name, value)

    def to(self, device: torch.device | str) -> PropertyObjective:
        self.inner.to(device)
        return self

    def __call__(self, model: nn.Module, batch: Batch) -> LossOutput:
        out = self.inner(model, batch)
        passed = self.inner.__dict__.pop("last_output")  # not kept past the step
        error = squared_error(model.property_head(passed.qz.mean.float()), batch["t"])  # (B,)
        out.loss = out.loss + self.weight * self.inner.reduce(error)
        out.extras = {**out.extras, "property_mse": error}
        return out
