"""Maximum mean discrepancy between the aggregate posterior and the prior: WAE and InfoVAE.

WAE-MMD (Tolstikhin et al. 2018) matches q(z) = E_x q(z|x) to p(z) with an MMD penalty instead of a
per-sample KL, usually with a deterministic encoder (beta = 0). InfoVAE (Zhao et al. 2019) keeps
the ELBO's KL and adds the same penalty. Both are this one objective with different weights.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from vaekit.distributions.priors import prior_draws
from vaekit.models.objectives.base import OBJECTIVES, Batch, Objective, ObjectiveOptions
from vaekit.models.outputs import LossOutput, VAEOutput

IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # WAE's sum of IMQ kernels at several widths


def kernel_matrix(a: Tensor, b: Tensor, kind: str) -> Tensor:
    """k(a_i, b_j) for (N, L) and (M, L): inverse multiquadrics summed over scales, or an RBF."""
    dim = a.shape[-1]
    dist = torch.cdist(a, b).square()  # (N, M)
    if kind == "rbf":
        return torch.exp(-dist / (2.0 * dim))
    return sum(2.0 * dim * s / (2.0 * dim * s + dist) for s in IMQ_SCALES)


def mmd(z: Tensor, z_prior: Tensor, kind: str = "imq") -> Tensor:
    """Unbiased estimate of MMD^2 between samples z (N, L) and z_prior (M, L) (Gretton et al. 2012)."""
    n, m = len(z), len(z_prior)
    if n < 2 or m < 2:  # a last batch of one: no unbiased estimate, no penalty
        return z.new_zeros(())
    k_zz, k_pp, k_zp = kernel_matrix(z, z, kind), kernel_matrix(z_prior, z_prior, kind), kernel_matrix(z, z_prior, kind)
    same_z = (k_zz.sum() - k_zz.diagonal().sum()) / (n * (n - 1))
    same_p = (k_pp.sum() - k_pp.diagonal().sum()) / (m * (m - 1))
    return same_z + same_p - 2.0 * k_zp.mean()


class MMDOptions(ObjectiveOptions):
    """The MMD objectives' options (WAE, InfoVAE)."""

    mmd_weight: float = Field(100.0, ge=0.0)
    """lambda of the MMD term (wae, infovae)."""
    mmd_kernel: Literal["imq", "rbf"] = "imq"
    """Kernel of the MMD term."""


class MMDObjective(Objective):
    """E_q[-log p(x|z)] + beta * KL + lambda * MMD(q(z), p(z)); beta = 0 allows a deterministic code."""

    def __init__(self, config: MMDOptions) -> None:
        super().__init__(config)
        self.weight, self.kernel = config.mmd_weight, config.mmd_kernel
        self.needs_density = config.beta > 0

    def terms(self, model: nn.Module, batch: Batch, out: VAEOutput) -> LossOutput:
        x = batch["x"]
        recon = -out.px.log_prob(x)  # (B,)
        z_prior = prior_draws(out.pz, len(x)).to(out.z.dtype)
        penalty = mmd(out.z, z_prior, self.kernel)
        scale = len(x) if self.reduction == "sum" else 1
        loss = self.reduce(recon) + self.weight * penalty * scale
        if self.needs_density:
            rate = out.kl()
            loss = loss + self.beta * self.kl_weight * self.reduce(rate)
            return LossOutput(loss=loss, per_sample=recon + rate, recon=recon, kl=rate, extras={"mmd": penalty})
        zero = torch.zeros_like(recon)
        return LossOutput(loss=loss, per_sample=recon, recon=recon, kl=zero, extras={"mmd": penalty}, bound=False)


OBJECTIVES.add("mmd", MMDObjective)
