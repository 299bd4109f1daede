"""Total correlation of the aggregate posterior: beta-TCVAE (Chen et al. 2018) and FactorVAE
(Kim & Mnih 2018). Both penalise TC(q(z)) = KL(q(z) || prod_d q(z_d)); they differ in how they
estimate it: minibatch-weighted sampling, or a discriminator between q(z) and its permuted copy.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from vaekit.distributions.posteriors import LOG_2PI, DiagonalGaussian
from vaekit.errors import ConfigError
from vaekit.models.objectives.base import OBJECTIVES, Batch, Objective, ObjectiveOptions, frozen
from vaekit.models.outputs import LossOutput, VAEOutput
from vaekit.sections import Width


def _gaussian(out) -> DiagonalGaussian:
    if not isinstance(out.qz, DiagonalGaussian):
        raise ConfigError("a total-correlation objective needs the Gaussian posterior (model.posterior=gaussian)")
    return out.qz


class TCOptions(ObjectiveOptions):
    """The total-correlation objectives' options (beta-TCVAE, FactorVAE)."""

    tc_weight: float = Field(6.0, ge=0.0)
    """Total-correlation weight (beta-tc's beta, factor's gamma)."""
    disc_hidden: list[Width] = Field(default_factory=lambda: [1000, 1000, 1000])
    """Layer widths of factor-vae's discriminator."""


class BetaTCVAE(Objective):
    """recon + alpha * MI + beta * TC + gamma * dimension-wise KL, alpha = gamma = 1, beta = ``tc_weight``.

    log q(z) and log prod_d q(z_d) are estimated by minibatch-weighted sampling (Chen et al. 2018,
    eq. 5): log q(z_i) ~ logsumexp_j log q(z_i | x_j) - log(N M) for a batch of M out of N samples.
    """

    def __init__(self, config: TCOptions, dataset_size: int) -> None:
        super().__init__(config)
        self.tc_weight, self.dataset_size = config.tc_weight, dataset_size

    @classmethod
    def from_config(cls, config: TCOptions, **context) -> BetaTCVAE:
        if not context.get("dataset_size"):
            raise ConfigError("the beta-TCVAE objective needs the training set's size")
        return cls(config, context["dataset_size"])

    def decompose(self, qz: DiagonalGaussian, z: Tensor, log_pz: Tensor) -> dict[str, Tensor]:
        """Per-sample MI, TC and dimension-wise KL (each (M,)) at z (M, L) drawn from qz."""
        m = z.shape[0]
        # log q(z_i,d | x_j) for every pair: (M, M, L)
        diff = z.unsqueeze(1) - qz.loc.unsqueeze(0)
        log_q_pairs = -0.5 * (diff.square() * torch.exp(-qz.logvar).unsqueeze(0) + qz.logvar.unsqueeze(0) + LOG_2PI)
        norm = math.log(self.dataset_size * m)
        log_qz = torch.logsumexp(log_q_pairs.sum(-1), dim=1) - norm  # (M,)
        log_prod_qzd = (torch.logsumexp(log_q_pairs, dim=1) - norm).sum(-1)  # (M,)
        log_qzx = qz.log_prob(z)
        return {"mi": log_qzx - log_qz, "tc": log_qz - log_prod_qzd, "dim_kl": log_prod_qzd - log_pz}

    def terms(self, model: nn.Module, batch: Batch, out: VAEOutput) -> LossOutput:
        x = batch["x"]
        qz = _gaussian(out)
        recon = -out.px.log_prob(x)
        parts = self.decompose(qz, out.z, out.pz.log_prob(out.z))
        penalty = parts["mi"] + self.tc_weight * parts["tc"] + parts["dim_kl"]
        for layer in out.lower:  # a hierarchical model's lower layers keep their plain KL (MC estimate)
            penalty = penalty + layer.qz.log_prob(layer.z) - layer.pz.log_prob(layer.z)
        loss = self.reduce(recon) + self.kl_weight * self.reduce(penalty)
        rate = out.kl()
        return LossOutput(loss=loss, per_sample=recon + rate, recon=recon, kl=rate,
                          extras={"tc": parts["tc"], "mi": parts["mi"]})


def permute_dims(z: Tensor) -> Tensor:
    """Shuffle each latent dimension independently across the batch: a sample of prod_d q(z_d)."""
    index = torch.argsort(torch.rand(z.shape, device=z.device), dim=0)
    return torch.gather(z, 0, index)


class Discriminator(nn.Module):
    """z (B, L) -> two logits: drawn from q(z) (class 0) or from its permuted copy (class 1).
    The FactorVAE paper uses 6 layers of 1000 units with leaky ReLU; ``hidden`` sets the widths."""

    def __init__(self, latent_dim: int, hidden: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        widths = [latent_dim, *hidden]
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(n_in, n_out), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], 2))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class FactorVAE(Objective):
    """ELBO + gamma * TC, TC estimated by a discriminator as E_q[log D(z) / (1 - D(z))] (Kim & Mnih
    2018, eq. 3); the discriminator learns to tell z from its dimension-wise permutation.

    The permuted codes come from the same batch (detached), not from a second batch as in the paper,
    which halves the cost; the discriminator sees each code in both roles only across steps.
    """

    def __init__(self, config: TCOptions) -> None:
        super().__init__(config)
        self.tc_weight = config.tc_weight
        self.aux_module = Discriminator(config.latent_dim, config.disc_hidden)

    def terms(self, model: nn.Module, batch: Batch, out: VAEOutput) -> LossOutput:
        x = batch["x"]
        _gaussian(out)
        recon, rate = -out.px.log_prob(x), out.kl()
        logits = frozen(self.aux_module)(out.z)
        tc = logits[:, 0] - logits[:, 1]  # (B,) log D(z) / (1 - D(z))
        loss = self.reduce(recon) + self.kl_weight * self.reduce(self.beta * rate + self.tc_weight * tc)
        z = out.z.detach()
        both = self.aux_module(torch.cat([z, permute_dims(z)]))
        labels = torch.arange(2, device=z.device).repeat_interleave(len(z))  # z: class 0, permuted: class 1
        aux_loss = F.cross_entropy(both, labels)
        return LossOutput(loss=loss, per_sample=recon + rate, recon=recon, kl=rate,
                          extras={"tc": tc, "disc_loss": aux_loss.detach()}, aux_loss=aux_loss)


OBJECTIVES.add("beta-tc", BetaTCVAE)
OBJECTIVES.add("factor", FactorVAE)
