"""Priors p(z). A prior is an ``nn.Module`` whose call, given the model, returns a distribution.

The model is passed because a VampPrior is defined through the encoder (a mixture of the posteriors
of learned pseudo-inputs); the other priors ignore it. A conditional model also passes its condition
vector, which only the class-conditional prior uses. Priors without a closed-form KL against the
Gaussian posterior are handled by the Monte Carlo fallback in :mod:`vaekit.distributions.kl`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

from vaekit.distributions.posteriors import LOG_2PI, DiagonalGaussian, randn
from vaekit.errors import ConfigError
from vaekit.networks.blocks import NetworkOptions
from vaekit.registry import Registry
from vaekit.sections import MAX_WIDTH, CoreOptions

if TYPE_CHECKING:
    from vaekit.data.spec import DataSpec


class PriorOptions(CoreOptions):
    """p(z)'s options (``model.*``)."""

    prior: str = "standard_normal"
    """p(z): standard_normal, mixture (of Gaussians) or vamp (the VampPrior)."""
    prior_components: int | None = Field(None, gt=0, le=MAX_WIDTH)
    """Components of a mixture prior (default 10) or pseudo-inputs of a VampPrior (default 500)."""


class _VampOptions(PriorOptions, NetworkOptions):
    """What a VampPrior reads: its own options and the network's normalisation (its pseudo-inputs
    pass through the encoder)."""


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
        return randn(shape, torch.empty((), device=self.device, dtype=self.dtype), generator)

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """Draws from N(0, T^2 I): ``temperature`` T < 1 keeps to the high-density region."""
        return self.rsample(sample_shape, generator) * temperature

    def log_prob(self, z: Tensor) -> Tensor:
        return -0.5 * (z * z + LOG_2PI).sum(-1)


class GaussianMixture(Distribution):
    """sum_k w_k N(z; mu_k, diag(sigma_k^2)) over the last axis; K components (K, L) parameters.

    ``log_prob`` forms the (rows, K, L) standardised differences directly (exact even for very
    narrow components, where expanding the square would cancel in float32), a block of rows at a
    time so that 500 components and thousands of importance samples stay in bounded memory.
    """

    arg_constraints = {}
    support = constraints.real_vector
    block_elements = 2**24  # rows x K x L evaluated at once by log_prob

    def __init__(self, loc: Tensor, logvar: Tensor, logits: Tensor | None = None) -> None:
        self.loc, self.logvar = loc, logvar  # (K, L)
        k = loc.shape[0]
        self.log_weights = torch.log_softmax(logits, -1) if logits is not None else \
            torch.full((k,), -math.log(k), device=loc.device, dtype=loc.dtype)
        super().__init__(torch.Size(), loc.shape[-1:], validate_args=False)

    @property
    def mean(self) -> Tensor:
        return (self.log_weights.exp().unsqueeze(-1) * self.loc).sum(0)

    def log_prob(self, z: Tensor) -> Tensor:
        lead, (k, dim) = z.shape[:-1], self.loc.shape
        flat = z.reshape(-1, dim)
        inv_std = torch.exp(-0.5 * self.logvar)  # (K, L)
        # log w_k - 0.5 (L log 2 pi + sum log sigma_k^2), one value per component
        const = self.log_weights - 0.5 * (self.logvar.sum(-1) + dim * LOG_2PI)
        rows = max(1, self.block_elements // (k * dim))
        parts = []
        for start in range(0, flat.shape[0], rows):
            diff = (flat[start : start + rows, None, :] - self.loc) * inv_std  # (rows, K, L)
            parts.append(torch.logsumexp(const - 0.5 * diff.square().sum(-1), dim=-1))
        return torch.cat(parts).reshape(lead) if parts else flat.new_zeros(lead)

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """Draws from the mixture; ``temperature`` T scales each component's spread around its mean."""
        with torch.no_grad():
            shape = torch.Size(sample_shape)
            n = max(1, math.prod(shape))
            index = torch.multinomial(self.log_weights.exp(), n, replacement=True, generator=generator)
            eps = randn((n, self.loc.shape[-1]), self.loc, generator)
            z = self.loc[index] + temperature * torch.exp(0.5 * self.logvar[index]) * eps
            return z.view(*shape, -1)


def prior_draws(pz: Distribution, n: int, generator: torch.Generator | None = None,
                temperature: float = 1.0) -> Tensor:
    """``n`` codes (n, L) from p(z) at ``temperature``. A prior with a batch shape (one Gaussian per
    item, p(z | c_i)) gives one draw per item, shrunk towards that item's mean."""
    if pz.batch_shape:
        return pz.loc + temperature * pz.scale * randn(pz.loc.shape, pz.loc, generator)  # (n, L)
    return pz.sample((n,), generator=generator, temperature=temperature)


class Prior(nn.Module):
    """Base of the priors: ``prior(model, condition)`` is p(z) (or p(z | c) where ``conditional``);
    ``from_spec`` builds one from the config."""

    conditional = False  # True: forward uses the condition vector (B, C) when one is given

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim

    @classmethod
    def from_spec(cls, spec: DataSpec, config: PriorOptions) -> Prior:
        return cls(config.latent_dim)

    def forward(self, model: Any = None, condition: Tensor | None = None) -> Distribution:
        raise NotImplementedError


class StandardNormalPrior(Prior):
    """The default prior; holds no parameters, only a buffer that tracks device and dtype."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def forward(self, model: Any = None, condition: Tensor | None = None) -> StandardNormal:
        return StandardNormal(self.latent_dim, self._anchor.device, self._anchor.dtype)


class MixturePrior(Prior):
    """A learned mixture of K diagonal Gaussians (weights, means and variances all trained).

    Means start spread as N(0, I) draws so the components do not collapse onto one another.
    """

    def __init__(self, latent_dim: int, n_components: int = 10) -> None:
        super().__init__(latent_dim)
        self.loc = nn.Parameter(torch.randn(n_components, latent_dim))
        self.logvar = nn.Parameter(torch.zeros(n_components, latent_dim))
        self.logits = nn.Parameter(torch.zeros(n_components))

    @classmethod
    def from_spec(cls, spec: DataSpec, config: PriorOptions) -> MixturePrior:
        return cls(config.latent_dim, config.prior_components or 10)

    def forward(self, model: Any = None, condition: Tensor | None = None) -> GaussianMixture:
        return GaussianMixture(self.loc, self.logvar, self.logits)


class VampPrior(Prior):
    """The VampPrior (Tomczak & Welling 2018): p(z) = (1/K) sum_k q(z | u_k) over K learned
    pseudo-inputs u_k, passed through the model's own encoder.

    Pseudo-inputs live in the data's model space; for data in [0, 1] they are a sigmoid of the
    trained values, so they stay valid inputs. They start near the middle of the data's range.
    """

    def __init__(self, latent_dim: int, shape: list[int], n_components: int = 500, unit: bool = True) -> None:
        super().__init__(latent_dim)
        self.unit = unit
        self.pseudo = nn.Parameter(0.1 * torch.randn(n_components, *shape))

    @classmethod
    def from_spec(cls, spec: DataSpec, config: _VampOptions) -> VampPrior:
        if config.condition != "none":
            raise ConfigError("model.prior='vamp' cannot be combined with model.condition (the pseudo-inputs "
                              "have no labels); use prior 'standard_normal' or 'mixture'")
        if config.norm == "batch":
            raise ConfigError("model.prior='vamp' with model.norm='batch': the pseudo-inputs would mix into the "
                              "batch statistics; use model.norm=layer or none")
        return cls(config.latent_dim, list(spec.shape), config.prior_components or 500, unit=spec.scale == "unit")

    def pseudo_inputs(self) -> Tensor:
        return torch.sigmoid(self.pseudo) if self.unit else self.pseudo

    def forward(self, model: Any = None, condition: Tensor | None = None) -> GaussianMixture:
        if model is None:
            raise ValueError("the VampPrior is defined through the encoder: call prior(model)")
        q = model.encode(self.pseudo_inputs())
        if not isinstance(q, DiagonalGaussian):
            raise ConfigError("model.prior='vamp' needs a Gaussian posterior")
        return GaussianMixture(q.loc, q.logvar)


class ClassConditionalPrior(Prior):
    """p(z | c) = N(mu_c, diag sigma_c^2): a learned Gaussian per class, for a conditional VAE.

    Why: with N(0, I) for every class, the codes of a cvae still carry class information (the
    encoder is never told to drop it), so each class's codes fill their own part of N(0, I). A
    prior draw for class c then often lands where another class's codes live, and the decoder,
    which never saw that pair, draws the other class: 59.7% of Fashion-MNIST samples were the
    class asked for, against 86.5% of reconstructions. Drawing z from where class c's codes are
    removes the mismatch (the prior network of Sohn et al. 2015, here a table over classes).
    A condition vector c (one-hot, or any vector) selects mu = c @ M, log sigma^2 = c @ V; with no
    condition p(z) is the classes' mixture. Both start at N(0, I).
    """

    conditional = True

    def __init__(self, latent_dim: int, n_classes: int) -> None:
        super().__init__(latent_dim)
        self.loc = nn.Parameter(torch.zeros(n_classes, latent_dim))  # (C, L)
        self.logvar = nn.Parameter(torch.zeros(n_classes, latent_dim))

    @classmethod
    def from_spec(cls, spec: DataSpec, config: PriorOptions) -> ClassConditionalPrior:
        if config.condition == "none" or spec.n_classes < 2:
            raise ConfigError("model.prior='class_conditional' is a prior per class: it needs a conditional model "
                              "(model.condition=label) on labelled data")
        return cls(config.latent_dim, spec.n_classes)

    def forward(self, model: Any = None, condition: Tensor | None = None) -> Distribution:
        if condition is None:
            return GaussianMixture(self.loc, self.logvar)
        return DiagonalGaussian(condition @ self.loc, condition @ self.logvar)  # (B, L)


PRIORS: Registry[type[Prior]] = Registry("prior")
PRIORS.add("standard_normal", StandardNormalPrior)
PRIORS.add("mixture", MixturePrior)
PRIORS.add("vamp", VampPrior)
PRIORS.add("class_conditional", ClassConditionalPrior)
