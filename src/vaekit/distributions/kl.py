"""KL(q || p): analytic where a closed form is registered, a Monte Carlo estimate otherwise."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution, kl_divergence, register_kl

from vaekit.distributions.posteriors import DiagonalGaussian
from vaekit.distributions.priors import StandardNormal


@register_kl(DiagonalGaussian, StandardNormal)
def _kl_gaussian_standard(q: DiagonalGaussian, p: StandardNormal) -> Tensor:
    return kl_per_dim(q).sum(-1)


@register_kl(DiagonalGaussian, DiagonalGaussian)
def _kl_gaussian_gaussian(q: DiagonalGaussian, p: DiagonalGaussian) -> Tensor:
    ratio = torch.exp(q.logvar - p.logvar)
    return 0.5 * (ratio + (q.loc - p.loc) ** 2 * torch.exp(-p.logvar) - 1.0 - (q.logvar - p.logvar)).sum(-1)


def kl_per_dim(q: DiagonalGaussian) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per latent dimension, (B, L) (Kingma & Welling 2014, app. B)."""
    return 0.5 * (q.loc * q.loc + torch.exp(q.logvar) - 1.0 - q.logvar)


def kl(q: Distribution, p: Distribution, z: Tensor | None = None) -> Tensor:
    """KL(q || p) per sample.

    Uses the analytic form when one is registered; otherwise the single-sample estimate
    log q(z) - log p(z) at ``z`` (which must then be given, drawn from q).
    """
    try:
        return kl_divergence(q, p)
    except NotImplementedError:
        if z is None:
            raise ValueError(f"no analytic KL({type(q).__name__} || {type(p).__name__}); pass z") from None
        return q.log_prob(z) - p.log_prob(z)
