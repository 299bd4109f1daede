"""The VAE: encoder -> posterior head -> q(z|x) -> z -> decoder -> p(x|z), with a prior p(z).

Every named variant (vae, beta-vae, ae, iwae, …) is this one class with different parts on its five
axes (see :mod:`vaekit.models.presets`); the objective lives outside the model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from vaekit.distributions.likelihoods import LikelihoodFamily
from vaekit.models.outputs import VAEOutput


class VAE(nn.Module):
    def __init__(self, encoder: nn.Module, posterior: nn.Module, decoder: nn.Module,
                 likelihood: LikelihoodFamily, prior: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.encoder, self.posterior, self.decoder, self.prior = encoder, posterior, decoder, prior
        self.likelihood = likelihood  # stateless: maps decoder output to a distribution
        self.latent_dim = latent_dim

    def encode(self, x: Tensor) -> Distribution:
        """q(z|x) for x (B, *shape); its ``mean`` is the usual embedding."""
        return self.posterior(self.encoder(x))

    def decode(self, z: Tensor) -> Distribution:
        """p(x|z) for z (..., L); leading axes (samples, batch) are kept in the batch shape."""
        lead = z.shape[:-1]
        raw = self.decoder(z.reshape(-1, self.latent_dim))  # (N, P, *shape)
        return self.likelihood(raw.view(*lead, *raw.shape[1:]))

    def forward(self, x: Tensor, n_samples: int = 1, generator: torch.Generator | None = None) -> VAEOutput:
        """Encode, draw z by reparameterisation (S = ``n_samples`` draws when > 1), decode."""
        qz = self.encode(x)
        shape = () if n_samples == 1 else (n_samples,)
        z = qz.rsample(shape, generator=generator)  # (B, L) or (S, B, L)
        return VAEOutput(qz=qz, z=z, px=self.decode(z), pz=self.prior())

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> Distribution:
        """p(x|z) for ``n`` draws z ~ p(z), scaled by ``temperature`` (1.0 = the prior itself)."""
        z = self.prior().sample((n,), generator=generator) * temperature  # (n, L)
        return self.decode(z)
