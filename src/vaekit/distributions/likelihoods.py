"""Likelihoods p(x|z): the decoder's raw output becomes a distribution over one data sample.

-log p(x|z) is the reconstruction term, so binary cross-entropy (Bernoulli) and squared error
(Gaussian) are special cases of one code path, not branches. Every distribution here treats the
trailing ``event_ndim`` axes as one event (an image, a table row): ``log_prob`` returns one value per
sample. Bernoulli and continuous Bernoulli work from logits: sigmoid + BCE costs about 5x more than
BCE-with-logits on CPU (see shared/reference/perf-anchors.md).

A *family* (registered by name) says how many raw values the decoder must produce per data value
(``n_params``) and what data it accepts (``support``); calling it on the decoder output
``(*batch, n_params, *event)`` returns the distribution.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import ContinuousBernoulli as _TorchContinuousBernoulli
from torch.distributions import Distribution, constraints

from vaekit.registry import Registry

if TYPE_CHECKING:
    from vaekit.config import ModelConfig
    from vaekit.data.spec import DataSpec

Support = Literal["unit", "real", "levels"]
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _sum_event(values: Tensor, event_ndim: int) -> Tensor:
    return values.flatten(-event_ndim).sum(-1) if event_ndim else values


class _EventDistribution(Distribution):
    """Shared plumbing: batch/event shapes from a parameter tensor, no argument validation."""

    arg_constraints: ClassVar[dict] = {}
    support = constraints.real

    def __init__(self, param: Tensor, event_ndim: int) -> None:
        self.event_ndim = event_ndim
        split = param.ndim - event_ndim
        super().__init__(param.shape[:split], param.shape[split:], validate_args=False)

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError


class Bernoulli(_EventDistribution):
    """Independent Bernoulli per value, from logits; accepts targets in [0, 1] (the usual BCE)."""

    def __init__(self, logits: Tensor, event_ndim: int) -> None:
        self.logits = logits
        super().__init__(logits, event_ndim)

    @property
    def mean(self) -> Tensor:
        return torch.sigmoid(self.logits)

    def log_prob(self, x: Tensor) -> Tensor:
        bce = F.binary_cross_entropy_with_logits(self.logits, x.expand_as(self.logits), reduction="none")
        return -_sum_event(bce, self.event_ndim)

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        probs = self.mean.expand(torch.Size(sample_shape) + self.logits.shape)
        return torch.bernoulli(probs, generator=generator)


class ContinuousBernoulli(_EventDistribution):
    """The continuous Bernoulli (Loaiza-Ganem & Cunningham 2019): a normalised density on [0, 1]."""

    def __init__(self, logits: Tensor, event_ndim: int) -> None:
        self.logits = logits
        self._torch = _TorchContinuousBernoulli(logits=logits, validate_args=False)
        super().__init__(logits, event_ndim)

    @property
    def mean(self) -> Tensor:
        return self._torch.mean

    def log_prob(self, x: Tensor) -> Tensor:
        return _sum_event(self._torch.log_prob(x.expand_as(self.logits)), self.event_ndim)

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        shape = torch.Size(sample_shape) + self.logits.shape
        u = torch.rand(shape, dtype=self.logits.dtype, device=self.logits.device, generator=generator)
        return self._torch.icdf(u.clamp(1e-6, 1 - 1e-6))


class Gaussian(_EventDistribution):
    """Independent N(mu, sigma^2) per value; sigma is a tensor (learned) or a fixed float."""

    def __init__(self, loc: Tensor, log_scale: Tensor | float, event_ndim: int) -> None:
        self.loc, self.log_scale = loc, log_scale
        super().__init__(loc, event_ndim)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def scale(self) -> Tensor:
        log_scale = self.log_scale
        if isinstance(log_scale, Tensor):
            return torch.exp(log_scale)
        return torch.full_like(self.loc, math.exp(log_scale))

    def log_prob(self, x: Tensor) -> Tensor:
        log_scale = self.log_scale
        inv_var = torch.exp(-2 * log_scale) if isinstance(log_scale, Tensor) else math.exp(-2 * log_scale)
        values = -0.5 * (x - self.loc) ** 2 * inv_var - log_scale - HALF_LOG_2PI
        return _sum_event(values, self.event_ndim)

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        shape = torch.Size(sample_shape) + self.loc.shape
        eps = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device, generator=generator)
        return self.loc + self.scale * eps


class Categorical(_EventDistribution):
    """A categorical over K levels per value.

    With ``unit_levels`` the data are K evenly spaced values in [0, 1] (8-bit pixels scaled by 255,
    digits by 16) and the category of x is round(x * (K - 1)); otherwise x holds category indices.
    """

    def __init__(self, logits: Tensor, event_ndim: int, unit_levels: bool) -> None:
        self.logits = logits  # (*batch, *event, K)
        self.unit_levels = unit_levels
        super().__init__(logits[..., 0], event_ndim)

    def _values(self) -> Tensor:
        k = self.logits.shape[-1]
        levels = torch.arange(k, device=self.logits.device, dtype=self.logits.dtype)
        return levels / (k - 1) if self.unit_levels else levels

    @property
    def mean(self) -> Tensor:
        return (torch.softmax(self.logits, -1) * self._values()).sum(-1)

    @property
    def mode(self) -> Tensor:
        return self._values()[self.logits.argmax(-1)]

    def log_prob(self, x: Tensor) -> Tensor:
        k = self.logits.shape[-1]
        index = (x * (k - 1)).round() if self.unit_levels else x
        index = index.long().clamp(0, k - 1).expand(self.logits.shape[:-1])
        log_p = torch.log_softmax(self.logits, -1).gather(-1, index.unsqueeze(-1)).squeeze(-1)
        return _sum_event(log_p, self.event_ndim)

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        probs = torch.softmax(self.logits, -1).expand(torch.Size(sample_shape) + self.logits.shape)
        flat = probs.reshape(-1, probs.shape[-1])
        index = torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])
        return self._values()[index]


class LikelihoodFamily:
    """Builds p(x|z) from the decoder output of shape (*batch, n_params, *event)."""

    n_params: int = 1
    support: Support = "real"

    def __init__(self, event_ndim: int) -> None:
        self.event_ndim = event_ndim

    @classmethod
    def from_spec(cls, spec: DataSpec, config: ModelConfig) -> LikelihoodFamily:
        """The family for this data (one event = one sample of ``spec.shape``)."""
        return cls(len(spec.shape))

    def _split(self, raw: Tensor) -> tuple[Tensor, ...]:
        return raw.unbind(raw.ndim - self.event_ndim - 1)

    def __call__(self, raw: Tensor) -> Distribution:
        raise NotImplementedError


class BernoulliFamily(LikelihoodFamily):
    support: Support = "unit"

    def __call__(self, raw: Tensor) -> Bernoulli:
        return Bernoulli(self._split(raw)[0], self.event_ndim)


class ContinuousBernoulliFamily(LikelihoodFamily):
    support: Support = "unit"

    def __call__(self, raw: Tensor) -> ContinuousBernoulli:
        return ContinuousBernoulli(self._split(raw)[0], self.event_ndim)


class GaussianFamily(LikelihoodFamily):
    """Fixed sigma (``likelihood_scale``): -log p is the squared error / (2 sigma^2) plus a constant."""

    def __init__(self, event_ndim: int, scale: float = 1.0) -> None:
        super().__init__(event_ndim)
        self.log_scale = math.log(scale)

    @classmethod
    def from_spec(cls, spec: DataSpec, config: ModelConfig) -> GaussianFamily:
        return cls(len(spec.shape), scale=config.likelihood_scale)

    def __call__(self, raw: Tensor) -> Gaussian:
        return Gaussian(self._split(raw)[0], self.log_scale, self.event_ndim)


class LearnedGaussianFamily(LikelihoodFamily):
    """Mean and log-sigma per value from the decoder; log-sigma is bounded below for stability."""

    n_params = 2
    min_log_scale = math.log(1e-3)

    def __call__(self, raw: Tensor) -> Gaussian:
        loc, raw_scale = self._split(raw)
        log_scale = self.min_log_scale + F.softplus(raw_scale - self.min_log_scale)
        return Gaussian(loc, log_scale, self.event_ndim)


class CategoricalFamily(LikelihoodFamily):
    support: Support = "levels"

    def __init__(self, event_ndim: int, n_categories: int, unit_levels: bool = True) -> None:
        super().__init__(event_ndim)
        self.n_params = n_categories
        self.unit_levels = unit_levels

    @classmethod
    def from_spec(cls, spec: DataSpec, config: ModelConfig) -> CategoricalFamily:
        return cls(len(spec.shape), n_categories=spec.n_levels)

    def __call__(self, raw: Tensor) -> Categorical:
        logits = raw.movedim(raw.ndim - self.event_ndim - 1, -1)  # (*batch, *event, K)
        return Categorical(logits, self.event_ndim, self.unit_levels)


LIKELIHOODS: Registry[type[LikelihoodFamily]] = Registry("likelihood")
LIKELIHOODS.add("bernoulli", BernoulliFamily)
LIKELIHOODS.add("continuous_bernoulli", ContinuousBernoulliFamily)
LIKELIHOODS.add("gaussian", GaussianFamily)
LIKELIHOODS.add("gaussian_learned", LearnedGaussianFamily)
LIKELIHOODS.add("categorical", CategoricalFamily)
