"""ELBO and the importance-sampled estimate of -log p(x) (Burda et al. 2016, eq. 12).

The k importance samples are drawn in chunks sized to a fixed number of elements, so k = 5000
runs in bounded memory while each chunk fills the device. Both go through the model's forward
pass, so hierarchical models (several stochastic layers) and conditional ones are estimated alike.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution

from vaekit.distributions.posteriors import KeyedNoise
from vaekit.models.vae import VAE

# Elements (k_chunk x batch x data values) evaluated at once by the importance sampler.
CHUNK_ELEMENTS = 2**23


@torch.no_grad()
def log_weights(model: VAE, x: Tensor, k: int, generator: torch.Generator | KeyedNoise | None = None,
                qz: Distribution | None = None, condition: Tensor | None = None, chunk: int | None = None) -> Tensor:
    """log p(x, z_i) - log q(z_i|x) for k draws z_i ~ q(z|x): (k, B). Pass ``qz`` if already known;
    ``chunk`` draws per forward pass (default: as many as fit in ``CHUNK_ELEMENTS``)."""
    if chunk is None:
        # values the likelihood holds per data value: its parameters, or a token model's logit per word
        width = model.likelihood.values_per_item
        per_draw = max(1, x[0].numel() * x.shape[0] * width)
        chunk = max(1, min(k, CHUNK_ELEMENTS // per_draw))
    parts = []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        out = model(x, n_samples=n, generator=generator, condition=condition, qz=qz)
        parts.append((out.px.log_prob(x) - out.log_ratio()).reshape(n, -1))  # (n, B)
    return torch.cat(parts)


@torch.no_grad()
def bounds(model: VAE, x: Tensor, k: int, generator: torch.Generator | None = None,
           qz: Distribution | None = None, condition: Tensor | None = None) -> dict[str, Tensor]:
    """Per-sample -ELBO (one draw, analytic KL when known), its recon/KL parts, and the k-sample NLL."""
    out = model(x, generator=generator, condition=condition, qz=qz)
    recon = -out.px.log_prob(x)  # (B,)
    rate = out.kl()  # (B,)
    weights = log_weights(model, x, k, generator, qz, condition)
    nll = -(torch.logsumexp(weights, dim=0) - math.log(k))  # (B,)
    return {"neg_elbo": recon + rate, "recon": recon, "kl": rate, "nll": nll}
