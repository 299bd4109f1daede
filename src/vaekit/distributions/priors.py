"""Priors p(z). Each prior is an ``nn.Module`` whose call returns a distribution on its device."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

from vaekit.distributions.posteriors import LOG_2PI
from vaekit.registry import Registry


class StandardNormal(Distribution):
    """N(0, I) over a latent vector of size L (last axis is the event)."""

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, latent_dim: int, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        self.latent_dim, self.device, self.dtype = latent_dim, device, dtype
        super().__init__(torch.Size(), torch.Size([latent_dim]), validate_args=False)

    @property
    def mean(self) -> Tensor:
        return torch.zeros(self.latent_dim, device=self.device, dtype=self.dtype)

    @property
    def mode(self) -> Tensor:
        return self.mean

    def rsample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        shape = torch.Size(sample_shape) + self.event_shape
        return torch.randn(shape, device=self.device, dtype=self.dtype, generator=generator)

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        return self.rsample(sample_shape, generator)

    def log_prob(self, z: Tensor) -> Tensor:
        return -0.5 * (z * z + LOG_2PI).sum(-1)


class StandardNormalPrior(nn.Module):
    """The default prior; holds no parameters, only a buffer that tracks device and dtype."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def forward(self) -> StandardNormal:
        return StandardNormal(self.latent_dim, self._anchor.device, self._anchor.dtype)


PRIORS: Registry[type[nn.Module]] = Registry("prior")
PRIORS.add("standard_normal", StandardNormalPrior)
