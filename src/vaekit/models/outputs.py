"""Typed records passed between the model, the objectives and the trainer (no bare tuples)."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor
from torch.distributions import Distribution

from vaekit.distributions.kl import kl


@dataclass
class StochasticLayer:
    """One stochastic layer of a hierarchical model: q(z_l | x, z_>l), p(z_l | z_>l) and the drawn z_l."""

    qz: Distribution
    pz: Distribution
    z: Tensor


@dataclass
class VAEOutput:
    """One forward pass: posterior q(z|x), its sample z, likelihood p(x|z) and prior p(z).

    A hierarchical model puts its top layer in ``qz``/``z``/``pz`` and the layers below in
    ``lower``; :meth:`kl` and :meth:`log_ratio` sum over all of them, so objectives and evaluation
    never need to know how many stochastic layers there are.
    """

    qz: Distribution
    z: Tensor  # (B, L), or (S, B, L) with S samples per input
    px: Distribution
    pz: Distribution
    lower: list[StochasticLayer] = field(default_factory=list)

    def layers(self) -> list[StochasticLayer]:
        return [StochasticLayer(self.qz, self.pz, self.z), *self.lower]

    def kl(self) -> Tensor:
        """KL(q || p) per sample, summed over layers: analytic where known, else log q(z) - log p(z)."""
        return sum(kl(layer.qz, layer.pz, layer.z) for layer in self.layers())

    def log_ratio(self) -> Tensor:
        """log q(z|x) - log p(z) at the drawn z, summed over layers (the IWAE weights' latent part)."""
        return sum(layer.qz.log_prob(layer.z) - layer.pz.log_prob(layer.z) for layer in self.layers())


@dataclass
class LossOutput:
    """What an objective returns. Per-sample terms are (B,) tensors, in nats.

    ``loss`` is the scalar to minimise; ``per_sample`` is the negative bound for each sample
    (-ELBO, -IWAE bound, or the reconstruction error of a plain autoencoder). ``aux_loss`` is the
    loss of the objective's own auxiliary module (a discriminator), minimised by its own optimizer.
    """

    loss: Tensor
    per_sample: Tensor
    recon: Tensor  # distortion: -log p(x|z)
    kl: Tensor  # rate: KL(q(z|x) || p(z)), zero for a deterministic code
    extras: dict[str, Tensor] = field(default_factory=dict)
    bound: bool = True  # per_sample is a bound on -log p(x) (False for a plain autoencoder)
    aux_loss: Tensor | None = None

    def metrics(self) -> dict[str, Tensor]:
        """Batch means of the logged quantities, as detached 0-d tensors (no host sync)."""
        values = {"loss": self.per_sample, "recon": self.recon, "kl": self.kl, **self.extras}
        means = {name: value.detach().mean() for name, value in values.items()}
        if self.bound:
            means["elbo"] = -means["loss"]
        return means
