"""Typed records passed between the model, the objectives and the trainer (no bare tuples)."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor
from torch.distributions import Distribution


@dataclass
class VAEOutput:
    """One forward pass: posterior q(z|x), its sample z, likelihood p(x|z) and prior p(z)."""

    qz: Distribution
    z: Tensor  # (B, L), or (S, B, L) with S samples per input
    px: Distribution
    pz: Distribution


@dataclass
class LossOutput:
    """What an objective returns. Per-sample terms are (B,) tensors, in nats.

    ``loss`` is the scalar to minimise; ``per_sample`` is the negative bound for each sample
    (-ELBO, -IWAE bound, or the reconstruction error of a plain autoencoder).
    """

    loss: Tensor
    per_sample: Tensor
    recon: Tensor  # distortion: -log p(x|z)
    kl: Tensor  # rate: KL(q(z|x) || p(z)), zero for a deterministic code
    extras: dict[str, Tensor] = field(default_factory=dict)
    bound: bool = True  # per_sample is a bound on -log p(x) (False for a plain autoencoder)

    def metrics(self) -> dict[str, Tensor]:
        """Batch means of the logged quantities, as detached 0-d tensors (no host sync)."""
        values = {"loss": self.per_sample, "recon": self.recon, "kl": self.kl, **self.extras}
        means = {name: value.detach().mean() for name, value in values.items()}
        if self.bound:
            means["elbo"] = -means["loss"]
        return means
