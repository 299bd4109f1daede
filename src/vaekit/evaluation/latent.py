"""Latent diagnostics: KL per dimension and active units (Burda et al. 2016, sec. 5.2)."""

from __future__ import annotations

import torch
from torch import Tensor

from vaekit.distributions.kl import kl_per_dim
from vaekit.distributions.posteriors import DiagonalGaussian

ACTIVE_THRESHOLD = 0.01  # a unit is active when Cov_x(E_q[z_u]) exceeds this


def active_dims(means: Tensor) -> Tensor:
    """Which latent dimensions of posterior means (N, L) are active, a bool mask (L,); all of them
    when none is. Inactive units carry no information about x, and clustering them invites a
    mixture to fit their noise."""
    active = means.double().var(0, unbiased=False) > ACTIVE_THRESHOLD  # (L,)
    return active if bool(active.any()) else torch.ones_like(active)


class LatentStats:
    """Accumulates, batch by batch, the posterior means' moments and the KL per dimension."""

    def __init__(self, latent_dim: int, device: torch.device) -> None:
        self.n = 0
        self.sum = torch.zeros(latent_dim, device=device, dtype=torch.float64)
        self.sum_sq = torch.zeros_like(self.sum)
        self.kl = torch.zeros_like(self.sum)

    def update(self, qz: torch.distributions.Distribution) -> None:
        mean = qz.mean.double()  # (B, L)
        self.n += mean.shape[0]
        self.sum += mean.sum(0)
        self.sum_sq += (mean * mean).sum(0)
        if isinstance(qz, DiagonalGaussian):
            self.kl += kl_per_dim(qz).double().sum(0)

    def result(self) -> dict[str, Tensor]:
        n = max(self.n, 1)
        variance = self.sum_sq / n - (self.sum / n) ** 2  # Cov_x(E_q[z]) per unit
        return {
            "kl_per_dim": self.kl / n,
            "mean_variance": variance,
            "active_units": (variance > ACTIVE_THRESHOLD).sum(),
        }
