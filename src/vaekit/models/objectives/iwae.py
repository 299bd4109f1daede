"""The importance-weighted bound (Burda, Grosse & Salakhutdinov 2016, eq. 8)."""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import nn

from vaekit.models.objectives.base import OBJECTIVES, Batch, Objective, ObjectiveOptions
from vaekit.models.outputs import LossOutput, VAEOutput


class IWAEOptions(ObjectiveOptions):
    """The importance-weighted bound's options."""

    k: int = Field(5, gt=0)
    """Importance samples of the IWAE training bound (Burda et al. 2016)."""


class IWAE(Objective):
    """-log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x); k = 1 is the ELBO, larger k is tighter."""

    def __init__(self, config: IWAEOptions) -> None:
        super().__init__(config)
        self.k = self.n_samples = config.k  # z: (k, B, L)

    def terms(self, model: nn.Module, batch: Batch, out: VAEOutput) -> LossOutput:
        x = batch["x"]
        log_px = out.px.log_prob(x).reshape(self.k, -1)  # (k, B); k = 1 draws no sample axis
        log_ratio = out.log_ratio().reshape(self.k, -1)  # (k, B)
        bound = torch.logsumexp(log_px - log_ratio, dim=0) - math.log(self.k)  # (B,)
        return LossOutput(
            loss=self.reduce(-bound),
            per_sample=-bound,
            recon=-log_px.mean(0),
            kl=log_ratio.mean(0),
        )


OBJECTIVES.add("iwae", IWAE)
