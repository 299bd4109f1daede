"""VAE-GAN (Larsen et al. 2016): a discriminator on x whose hidden features define the
reconstruction error, plus an adversarial term for reconstructions and prior samples.

The paper's remedy for blurry samples: an element-wise likelihood rewards the average of plausible
images, a learned feature space does not. The discriminator is built like the encoder (same network
kind for the same data) with one logit on top; its layer before the logit is "Dis_l".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from vaekit.distributions.priors import prior_draws
from vaekit.errors import ConfigError
from vaekit.models.objectives.base import OBJECTIVES, Batch, Objective, ObjectiveOptions, frozen
from vaekit.models.outputs import LossOutput, VAEOutput
from vaekit.networks.blocks import NetworkOptions
from vaekit.networks.factory import build_networks


class GANOptions(ObjectiveOptions):
    """VAE-GAN's option (its discriminator's trunk is the encoder network's)."""

    adv_weight: float = Field(1.0, ge=0.0)
    """vae-gan: weight of the generator's adversarial term."""


class FeatureDiscriminator(nn.Module):
    """x -> (logit real vs generated (B,), features (B, F))."""

    def __init__(self, trunk: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = nn.Linear(trunk.out_features, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.trunk(x)
        return self.head(features).squeeze(-1), features


class VAEGAN(Objective):
    """Encoder and decoder minimise

        -log p(x|z) + 0.5 ||Dis_l(x) - Dis_l(x~)||^2 + beta * KL + adv_weight * GAN_gen,

    where GAN_gen asks the discriminator to call both the reconstruction x~ and a prior sample x_p
    real (the non-saturating form); the discriminator minimises its cross-entropy on x (real), x~
    and x_p (generated). Two departures from the paper's Algorithm 1: the element-wise likelihood
    term is kept (it anchors early training), and the encoder also receives the adversarial term
    through x~ (the paper trains it with the prior and feature terms only). The per-sample bound
    reported is the plain -ELBO.
    """

    def __init__(self, config: GANOptions, trunk: nn.Module) -> None:
        super().__init__(config)
        self.adv_weight = config.adv_weight
        self.aux_module = FeatureDiscriminator(trunk)

    @classmethod
    def from_config(cls, config: GANOptions, **context) -> VAEGAN:
        spec = context.get("spec")
        if spec is None:
            raise ConfigError("the vae-gan objective needs the data spec to build its discriminator")
        if not isinstance(config, NetworkOptions):  # the model's options: the trunk is its encoder network
            raise ConfigError("the vae-gan objective needs the model's network options to build its discriminator")
        trunk, _ = build_networks(spec, config, 1)
        return cls(config, trunk)

    def terms(self, model: nn.Module, batch: Batch, out: VAEOutput) -> LossOutput:
        x = batch["x"]
        recon, rate = -out.px.log_prob(x), out.kl()
        x_rec = out.px.mean
        prior_z = prior_draws(out.pz, len(x)).to(out.z.dtype)
        condition = batch.get("y") if self.conditional else None
        x_gen = model.generate(prior_z, condition).mean  # a hierarchical model draws its lower layers too
        disc = frozen(self.aux_module)  # the encoder and decoder's view: gradients reach x~, not D
        _, feat_real = disc(x)
        logit_rec, feat_rec = disc(x_rec)
        logit_gen, _ = disc(x_gen)
        feature_error = 0.5 * (feat_rec - feat_real.detach()).square().sum(-1)  # (B,)
        ones = torch.ones_like(logit_rec)
        gan_gen = F.binary_cross_entropy_with_logits(logit_rec, ones, reduction="none") + \
            F.binary_cross_entropy_with_logits(logit_gen, ones, reduction="none")
        loss = self.reduce(recon + feature_error + self.adv_weight * gan_gen) + \
            self.beta * self.kl_weight * self.reduce(rate)
        logit_all, _ = self.aux_module(torch.cat([x, x_rec.detach(), x_gen.detach()]))
        targets = torch.zeros_like(logit_all)
        targets[: len(x)] = 1.0  # real x; reconstructions and prior samples are "generated"
        aux_loss = F.binary_cross_entropy_with_logits(logit_all, targets)
        return LossOutput(loss=loss, per_sample=recon + rate, recon=recon, kl=rate,
                          extras={"feature_error": feature_error, "disc_loss": aux_loss.detach()},
                          aux_loss=aux_loss)


OBJECTIVES.add("vae-gan", VAEGAN)
