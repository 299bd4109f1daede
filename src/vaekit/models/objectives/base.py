"""The objective interface and its registry."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vaekit.config import ModelConfig
from vaekit.models.outputs import LossOutput
from vaekit.registry import Registry

Batch = dict[str, Tensor]


class Objective:
    """A training loss over the five-part model.

    ``kl_weight`` is a 0-d tensor that schedules (KL warm-up) change in place, so a compiled step
    never recompiles when it moves. ``needs_density`` says the posterior must have a density.
    """

    needs_density = True

    def __init__(self, config: ModelConfig) -> None:
        self.beta = config.beta
        self.reduction = config.reduction
        self.kl_weight = torch.ones(())

    @classmethod
    def from_config(cls, config: ModelConfig) -> Objective:
        return cls(config)

    def to(self, device: torch.device | str) -> Objective:
        self.kl_weight = self.kl_weight.to(device)
        return self

    def reduce(self, per_sample: Tensor) -> Tensor:
        return per_sample.sum() if self.reduction == "sum" else per_sample.mean()

    def __call__(self, model: nn.Module, batch: Batch) -> LossOutput:
        raise NotImplementedError


OBJECTIVES: Registry[type[Objective]] = Registry("objective")
