"""Posteriors q(z|x): distribution objects and the heads that produce them from features.

The distributions here treat the last axis as the event (the latent vector): ``log_prob`` returns
one value per sample, as ``torch.distributions.Independent`` would, without its wrapper overhead.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

from vaekit.registry import Registry

LOG_2PI = math.log(2 * math.pi)


def randn(shape: torch.Size | tuple, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Standard normal noise with ``like``'s dtype and device. Without a generator it calls plain
    ``torch.randn``, which torch.compile traces with dynamic batch sizes (the generator overload fails)."""
    if generator is None:
        return torch.randn(shape, dtype=like.dtype, device=like.device)
    return torch.randn(shape, dtype=like.dtype, device=like.device, generator=generator)


class _LatentDistribution(Distribution):
    """Shared by posteriors: the last axis is the event, ``loc`` is the mean and the mode."""

    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc: Tensor) -> None:
        self.loc = loc  # (..., L)
        super().__init__(loc.shape[:-1], loc.shape[-1:], validate_args=False)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape, generator)


class DiagonalGaussian(_LatentDistribution):
    """N(mu, diag(sigma^2)) over the last axis, parameterised by the log-variance.

    ``rsample`` is the reparameterisation z = mu + sigma * eps (Kingma & Welling 2014, eq. 10).
    """

    arg_constraints = {"loc": constraints.real, "logvar": constraints.real}

    def __init__(self, loc: Tensor, logvar: Tensor) -> None:
        self.logvar = logvar  # (..., L)
        super().__init__(loc)

    @property
    def scale(self) -> Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def variance(self) -> Tensor:
        return torch.exp(self.logvar)

    def rsample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        shape = torch.Size(sample_shape) + self.loc.shape
        eps = randn(shape, self.loc, generator)
        return self.loc + self.scale * eps  # (*S, ..., L)

    def log_prob(self, z: Tensor) -> Tensor:
        return -0.5 * (((z - self.loc) ** 2) * torch.exp(-self.logvar) + self.logvar + LOG_2PI).sum(-1)

    def entropy(self) -> Tensor:
        return 0.5 * (self.logvar + 1.0 + LOG_2PI).sum(-1)


class PointMass(_LatentDistribution):
    """A deterministic 'posterior' z = f(x): the plain autoencoder's code, with no density."""

    arg_constraints = {"loc": constraints.real}

    def rsample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        return self.loc.expand(torch.Size(sample_shape) + self.loc.shape)


class GaussianHead(nn.Module):
    """Features (B, H) -> q(z|x) = N(mu, diag(exp(logvar))), one Linear producing both halves."""

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_features, 2 * latent_dim)

    def forward(self, h: Tensor) -> DiagonalGaussian:
        loc, logvar = self.proj(h).chunk(2, dim=-1)  # (B, L) each
        return DiagonalGaussian(loc, logvar)


class DeterministicHead(nn.Module):
    """Features (B, H) -> a point mass at a Linear projection (plain or denoising autoencoder)."""

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_features, latent_dim)

    def forward(self, h: Tensor) -> PointMass:
        return PointMass(self.proj(h))


POSTERIORS: Registry[type[nn.Module]] = Registry("posterior")
POSTERIORS.add("gaussian", GaussianHead)
POSTERIORS.add("deterministic", DeterministicHead)
