"""Objectives: ``objective(model, batch) -> LossOutput``. Each runs the forward pass it needs."""

from __future__ import annotations

from vaekit.models.objectives import adversarial, elbo, iwae, mmd, patchgan, tc  # noqa: F401  (registers)
from vaekit.models.objectives.base import OBJECTIVES, Objective

__all__ = ["OBJECTIVES", "Objective"]
