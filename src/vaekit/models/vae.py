"""The VAE: encoder -> posterior head -> q(z|x) -> z -> decoder -> p(x|z), with a prior p(z).

Every named variant (vae, beta-vae, cvae, ae, iwae, wae, vamp, …) is this one class with different
parts on its five axes (see :mod:`vaekit.presets`); the objective lives outside the model.
Conditioning (the CVAE) is an input, not a subclass: a condition vector c is appended to the
encoder's features and to z before the decoder. Integer labels become one-hot vectors.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from vaekit.distributions.likelihoods import LikelihoodFamily
from vaekit.distributions.priors import prior_draws
from vaekit.errors import DataError
from vaekit.models.heads import Head
from vaekit.models.outputs import VAEOutput


class VAE(nn.Module):
    """The generative story and its bound, each line naming the file that holds it:

        z ~ p(z)                 prior        distributions/priors.py (N(0, I), mixture, VampPrior, per class)
        x ~ p(x | z)             likelihood   decoder(z) -> distributions/likelihoods.py (tabular.py, sequence.py)
        q(z | x)                 posterior    posterior(encoder(x)) -> distributions/posteriors.py; networks/

        -ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || p(z))

        out = model(x)                                   # forward below: encode, z = mu + sigma * eps, decode
        loss = -out.px.log_prob(x) + beta * out.kl()     # models/objectives/elbo.py; kl: models/outputs.py

    The networks come from networks/ (chosen by the data's kind), the objective (ELBO, IWAE, MMD,
    total correlation, adversarial) from models/objectives/, and ``build_model`` (models/__init__.py)
    assembles all five parts from a config. ``examples/minimal_vae.py`` builds one by hand.
    """

    def __init__(self, encoder: nn.Module, posterior: nn.Module, decoder: nn.Module,
                 likelihood: LikelihoodFamily, prior: nn.Module, latent_dim: int, condition_dim: int = 0) -> None:
        super().__init__()
        self.encoder, self.posterior, self.decoder, self.prior = encoder, posterior, decoder, prior
        self.likelihood = likelihood  # stateless: maps decoder output to a distribution
        self.latent_dim, self.condition_dim = latent_dim, condition_dim
        # z is always a flat vector (B, latent_dim); a spatial code (the latent-diffusion autoencoders,
        # networks/ldm.py) is that vector read as latent_shape = (C, h, w), channels first.
        self.latent_shape: tuple[int, ...] = (latent_dim,)
        # How a diffusion model sees z (networks/ldm.py): {"scaling_factor": s, "shift_factor": t or
        # None} for latents = (z - t) * s; empty for a model that was not made for diffusion.
        self.latent_scaling: dict[str, float | None] = {}
        # Supervised heads on z (models/heads.py), e.g. molecules' property predictor, climbed by
        # applications/optimize.py. The attribute exists on every model (None: no head) so that a head
        # registered later by add_head keeps its place in the parameter order.
        self.property_head: nn.Module | None = None
        self.heads: list[Head] = []

    def add_head(self, head: Head, module: nn.Module) -> None:
        """Attach a supervised head on z, trained by every objective beside its bound."""
        setattr(self, head.name, module)
        self.heads.append(head)

    def head(self, name: str) -> nn.Module | None:
        """The head module called ``name``, or None when this model has none."""
        return next((getattr(self, h.name) for h in self.heads if h.name == name), None)

    def condition_vector(self, condition: Tensor | None, n: int) -> Tensor | None:
        """(n, C) float condition from labels (n,) or vectors (n, C); None for an unconditional model."""
        if self.condition_dim == 0:
            if condition is not None:
                raise DataError("this model is not conditional: it takes no label or condition vector")
            return None
        if condition is None:
            raise DataError("this model is conditional: pass a label or condition vector with each input")
        condition = torch.as_tensor(condition, device=self._device())
        if condition.ndim == 0:
            condition = condition.expand(n)
        if not condition.is_floating_point():
            # Training labels come from the validated data; checking them per step would sync the host.
            if not self.training and condition.numel() and (
                    int(condition.min()) < 0 or int(condition.max()) >= self.condition_dim):
                raise DataError(f"label out of range: expected 0..{self.condition_dim - 1}")
            labels = condition.long().reshape(-1, 1)
            condition = torch.zeros(labels.shape[0], self.condition_dim, device=labels.device).scatter_(1, labels, 1.0)
        if condition.shape != (n, self.condition_dim):
            raise DataError(f"condition of shape {tuple(condition.shape)}: expected ({n}, {self.condition_dim}) "
                            f"or ({n},) labels")
        return condition.to(self._dtype())

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def encode(self, x: Tensor, condition: Tensor | None = None) -> Distribution:
        """q(z|x) for x (B, *shape); its ``mean`` is the usual embedding."""
        return self.posterior_from(self.encoder(x), condition)

    def posterior_from(self, h: Tensor, condition: Tensor | None = None) -> Distribution:
        """The posterior head on features h (B, H), with the condition vector appended if any."""
        c = self.condition_vector(condition, h.shape[0])
        return self.posterior(h if c is None else torch.cat([h, c], -1))

    def decode(self, z: Tensor, condition: Tensor | None = None) -> Distribution:
        """p(x|z) for z (..., L); leading axes (samples, batch) are kept in the batch shape."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, z.shape[-1])
        c = self.condition_vector(condition, lead[-1] if lead else 1)
        if c is not None:
            flat = torch.cat([flat, c.expand(*lead, -1).reshape(-1, self.condition_dim)], -1)
        raw = self.decoder(flat)  # (N, P, *shape)
        return self.likelihood(raw.view(*lead, *raw.shape[1:]))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, condition: Tensor | None = None) -> Distribution:
        """p(x | z = the posterior mean): the usual deterministic reconstruction."""
        return self.decode(self.encode(x, condition).mean, condition)

    def prior_distribution(self, condition: Tensor | None = None, n: int = 1) -> Distribution:
        """p(z); for a class-conditional prior given ``condition`` (labels or vectors of ``n``
        items), p(z | c) with batch shape (n,)."""
        if condition is None or not self.prior.conditional:
            return self.prior(self)
        return self.prior(self, self.condition_vector(condition, n))

    def forward(self, x: Tensor, n_samples: int = 1, generator: torch.Generator | None = None,
                condition: Tensor | None = None, qz: Distribution | None = None) -> VAEOutput:
        """Encode (unless ``qz`` is given), draw z by reparameterisation (S = ``n_samples`` draws
        when > 1), decode."""
        qz = self.encode(x, condition) if qz is None else qz
        shape = () if n_samples == 1 else (n_samples,)
        z = qz.rsample(shape, generator=generator)  # (B, L) or (S, B, L)
        return VAEOutput(qz=qz, z=z, px=self.decode(z, condition), pz=self.prior_distribution(condition, len(x)))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0,
               condition: Tensor | None = None) -> Distribution:
        """p(x|z) for ``n`` draws z ~ p(z) at ``temperature`` (1.0 = the prior itself; lower values
        shrink each draw towards its mode: the origin for N(0, I), a component's mean for a mixture)."""
        z = prior_draws(self.prior_distribution(condition, n), n, generator, temperature)  # (n, L)
        return self.generate(z, condition, generator, temperature)

    def generate(self, z: Tensor, condition: Tensor | None = None, generator: torch.Generator | None = None,
                 temperature: float = 1.0) -> Distribution:
        """p(x | z) for a draw z from the prior. Here that is :meth:`decode`; a hierarchical model
        also draws the layers below z from their conditional priors. Differentiable (VAE-GAN's
        generated images backpropagate through it)."""
        return self.decode(z, condition)
