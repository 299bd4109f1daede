"""The evidence lower bound with a KL weight, capacity and free bits; the plain autoencoder's loss."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from vaekit.distributions.kl import kl, kl_per_dim
from vaekit.distributions.posteriors import DiagonalGaussian
from vaekit.distributions.priors import StandardNormal
from vaekit.errors import ConfigError
from vaekit.models.objectives.base import OBJECTIVES, Batch, Objective, ObjectiveOptions
from vaekit.models.outputs import LossOutput, VAEOutput


class ELBOOptions(ObjectiveOptions):
    """Ways to shape the ELBO's KL term."""

    capacity_max: float = Field(0.0, ge=0.0)
    """Capacity C in nats that gamma * |KL - C| raises linearly over train.capacity_epochs (Burgess et al.
    2018); 0: off."""
    capacity_gamma: float = Field(1000.0, gt=0.0)
    """gamma of the capacity objective."""
    free_bits: float = Field(0.0, ge=0.0)
    """KL per latent dimension below which it is not penalised, in nats (Kingma et al. 2016); 0: off."""
    kl_balance: bool = False
    """A hierarchical model's KL per layer weighted by its own size while train.kl_warmup runs (NVAE)."""


class ELBO(Objective):
    """-ELBO = E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z)), one sample of z per input.

    Kingma & Welling 2014 (eq. 3); beta > 1 is the beta-VAE of Higgins et al. 2017. Two ways to
    shape the KL term instead of a fixed beta:

    - capacity (Burgess et al. 2018): gamma * |KL - C|, with C raised from 0 to ``capacity_max``
      nats by a schedule that writes ``self.capacity`` in place;
    - free bits (Kingma et al. 2016, eq. 15): each latent dimension's batch-mean KL counts as at
      least ``free_bits`` nats, so the optimiser gains nothing by collapsing it further.

    - KL balancing (Vahdat & Kautz 2020, app. A): while a KL warm-up runs, a hierarchical model's
      layers are weighted in proportion to their own batch-mean KL (renormalised to mean 1), so a
      layer that carries little is penalised little and is not switched off before it is used.

    The reported ``per_sample`` bound always uses the plain KL (beta = 1), so runs with different
    betas, capacities or free bits compare fairly.
    """

    def __init__(self, config: ELBOOptions) -> None:
        super().__init__(config)
        self.capacity_max, self.gamma = config.capacity_max, config.capacity_gamma
        self.capacity = torch.zeros(())
        self.free_bits = config.free_bits
        self.kl_balance = config.kl_balance and config.stochastic_layers > 1
        if self.capacity_max and self.free_bits:
            raise ConfigError("model.capacity_max and model.free_bits both reshape the KL term; choose one")
        if self.free_bits and config.stochastic_layers > 1:
            raise ConfigError("model.free_bits applies to one Gaussian latent layer, not a hierarchical model")

    def kl_term(self, out: VAEOutput, rate: Tensor) -> Tensor:
        """The KL part of the loss, reduced over the batch like the reconstruction."""
        n = rate.shape[0] if self.reduction == "sum" else 1
        if self.capacity_max:
            return self.gamma * (rate.mean() - self.capacity).abs() * n
        if self.free_bits:
            if not (isinstance(out.qz, DiagonalGaussian) and isinstance(out.pz, StandardNormal)):
                raise ConfigError("model.free_bits needs a Gaussian posterior and the standard normal prior")
            per_dim = kl_per_dim(out.qz).mean(0)  # (L,)
            return self.beta * torch.clamp(per_dim, min=self.free_bits).sum() * n
        return self.beta * self.reduce(rate)

    def balanced_rate(self, out: VAEOutput) -> Tensor:
        """Sum over layers of each layer's KL times its balancing coefficient (B,); the coefficients
        (no gradient) are 1 once the warm-up is over. The small constant keeps an empty layer's
        coefficient above 0, as in NVAE."""
        per_layer = torch.stack([kl(layer.qz, layer.pz, layer.z) for layer in out.layers()])  # (G, B)
        size = torch.tensor([layer.z.shape[-1] for layer in out.layers()], dtype=per_layer.dtype,
                            device=per_layer.device)
        weight = (per_layer.detach().abs().mean(1) + 0.01) / (size / size.mean())  # (G,)
        weight = torch.where(self.kl_weight < 1, weight / weight.mean(), torch.ones_like(weight))
        return (weight[:, None] * per_layer).sum(0)

    def terms(self, model: nn.Module, batch: Batch, out: VAEOutput) -> LossOutput:
        x = batch["x"]
        recon = -out.px.log_prob(x)  # (B,)
        rate = out.kl()  # (B,)
        penalised = self.balanced_rate(out) if self.kl_balance else rate
        loss = self.reduce(recon) + self.kl_weight * self.kl_term(out, penalised)
        return LossOutput(loss=loss, per_sample=recon + rate, recon=recon, kl=rate)


class Autoencoder(Objective):
    """Reconstruction only: a deterministic autoencoder (no prior term, so no generative bound)."""

    needs_density = False

    def terms(self, model: nn.Module, batch: Batch, out: VAEOutput) -> LossOutput:
        x = batch["x"]
        recon = -out.px.log_prob(x)  # (B,)
        return LossOutput(loss=self.reduce(recon), per_sample=recon, recon=recon, kl=torch.zeros_like(recon),
                          bound=False)


OBJECTIVES.add("elbo", ELBO)
OBJECTIVES.add("ae", Autoencoder)
