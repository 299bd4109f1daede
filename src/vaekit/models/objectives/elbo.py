"""The evidence lower bound with a KL weight, and the plain autoencoder's reconstruction loss."""

from __future__ import annotations

import torch
from torch import nn

from vaekit.distributions.kl import kl
from vaekit.models.objectives.base import OBJECTIVES, Batch, Objective
from vaekit.models.outputs import LossOutput


class ELBO(Objective):
    """-ELBO = E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z)), one sample of z per input.

    Kingma & Welling 2014 (eq. 3); beta > 1 is the beta-VAE of Higgins et al. 2017. The reported
    ``per_sample`` bound always uses beta = 1, so runs with different betas compare fairly.
    """

    def __call__(self, model: nn.Module, batch: Batch) -> LossOutput:
        x = batch["x"]
        out = model(x)
        recon = -out.px.log_prob(x)  # (B,)
        rate = kl(out.qz, out.pz, out.z)  # (B,)
        loss = self.reduce(recon + (self.beta * self.kl_weight) * rate)
        return LossOutput(loss=loss, per_sample=recon + rate, recon=recon, kl=rate)


class Autoencoder(Objective):
    """Reconstruction only: a deterministic autoencoder (no prior term, so no generative bound)."""

    needs_density = False

    def __call__(self, model: nn.Module, batch: Batch) -> LossOutput:
        x = batch["x"]
        out = model(x)
        recon = -out.px.log_prob(x)  # (B,)
        return LossOutput(loss=self.reduce(recon), per_sample=recon, recon=recon, kl=torch.zeros_like(recon),
                          bound=False)


OBJECTIVES.add("elbo", ELBO)
OBJECTIVES.add("ae", Autoencoder)
