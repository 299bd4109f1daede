"""Likelihoods p(x|z): the decoder's raw output becomes a distribution over one data sample.

-log p(x|z) is the reconstruction term, so binary cross-entropy (Bernoulli) and squared error
(Gaussian) are special cases of one code path, not branches. The distributions themselves, one event
(an image, a table row) per sample, are in :mod:`vaekit.distributions.elementwise`; they are importable
from here too.

A *family* (registered by name) says how many raw values the decoder must produce per data value
(``n_params``), what data it accepts (``support``) and whether it is a pmf (``discrete``: only then is
-log p in bits/dim a code length); calling it on the decoder output ``(*batch, n_params, *event)``
returns the distribution. Location-scale families (Gaussian, Laplace, discretised logistic) share one
distribution base and one family base per scale kind (fixed or learned).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor
from torch.distributions import Distribution

from vaekit.distributions.elementwise import (
    HALF_LOG_2PI,
    LOG_2,
    Bernoulli,
    Categorical,
    ContinuousBernoulli,
    DiscretizedLogistic,
    EventDistribution,
    Gaussian,
    Laplace,
    LocationScale,
)
from vaekit.registry import Registry
from vaekit.sections import Section

if TYPE_CHECKING:
    from vaekit.data.spec import DataSpec

__all__ = [
    "HALF_LOG_2PI", "LIKELIHOODS", "LOG_2", "Bernoulli", "BernoulliFamily", "Categorical", "CategoricalFamily",
    "ContinuousBernoulli", "ContinuousBernoulliFamily", "DiscretizedLogistic", "DiscretizedLogisticFamily",
    "EventDistribution", "Gaussian", "GaussianFamily", "Laplace", "LaplaceFamily", "LearnedGaussianFamily",
    "LearnedLaplaceFamily", "LikelihoodFamily", "LocationScale", "Support",
]

Support = Literal["unit", "real", "levels", "table", "tokens"]


class LikelihoodOptions(Section):
    """p(x|z)'s options (``model.*``)."""

    likelihood: str = "auto"
    """p(x|z): a registered likelihood (bernoulli, gaussian, laplace, categorical, ...); auto: picked from the
    data's value range."""
    likelihood_scale: float = Field(1.0, gt=0.0)
    """Fixed scale of the likelihood: the Gaussian's sigma, the Laplace's b."""


class LikelihoodFamily:
    """Builds p(x|z) from the decoder output of shape (*batch, n_params, *event)."""

    n_params: int = 1
    support: Support = "real"
    discrete: bool = False  # a pmf: -log p is a code length, so bits/dim are reported
    comparable_values: bool = True  # values are quantities (a squared error means something); token ids are not

    @property
    def values_per_item(self) -> int:
        """Numbers the likelihood holds per data value (its parameters; a token model: a logit per word)."""
        return self.n_params

    def __init__(self, event_ndim: int) -> None:
        self.event_ndim = event_ndim

    @classmethod
    def from_spec(cls, spec: DataSpec, config: LikelihoodOptions) -> LikelihoodFamily:
        """The family for this data (one event = one sample of ``spec.shape``)."""
        return cls(len(spec.shape))

    def output_shape(self, shape: list[int]) -> list[int]:
        """The decoder's output per sample, after the ``n_params`` axis: the data's own shape here."""
        return list(shape)

    def _split(self, raw: Tensor) -> tuple[Tensor, ...]:
        return raw.unbind(raw.ndim - self.event_ndim - 1)

    def __call__(self, raw: Tensor) -> Distribution:
        raise NotImplementedError


class BernoulliFamily(LikelihoodFamily):
    support: Support = "unit"
    discrete = True

    def __call__(self, raw: Tensor) -> Bernoulli:
        return Bernoulli(self._split(raw)[0], self.event_ndim)


class ContinuousBernoulliFamily(LikelihoodFamily):
    support: Support = "unit"

    def __call__(self, raw: Tensor) -> ContinuousBernoulli:
        return ContinuousBernoulli(self._split(raw)[0], self.event_ndim)


class _FixedScaleFamily(LikelihoodFamily):
    """Location from the decoder, one fixed scale for every value (``likelihood_scale``)."""

    distribution: ClassVar[type[LocationScale]]

    def __init__(self, event_ndim: int, scale: float = 1.0) -> None:
        super().__init__(event_ndim)
        self.log_scale = math.log(scale)

    @classmethod
    def from_spec(cls, spec: DataSpec, config: LikelihoodOptions) -> _FixedScaleFamily:
        return cls(len(spec.shape), scale=config.likelihood_scale)

    def __call__(self, raw: Tensor) -> LocationScale:
        return self.distribution(self._split(raw)[0], self.log_scale, self.event_ndim)


class _LearnedScaleFamily(LikelihoodFamily):
    """Location and log-scale per value from the decoder; log-scale is bounded below for stability."""

    n_params = 2
    min_log_scale = math.log(1e-3)
    distribution: ClassVar[type[LocationScale]]

    def _loc_and_log_scale(self, raw: Tensor) -> tuple[Tensor, Tensor]:
        loc, raw_scale = self._split(raw)
        return loc, self.min_log_scale + F.softplus(raw_scale - self.min_log_scale)

    def __call__(self, raw: Tensor) -> LocationScale:
        return self.distribution(*self._loc_and_log_scale(raw), self.event_ndim)


class GaussianFamily(_FixedScaleFamily):
    """Fixed sigma (``likelihood_scale``): -log p is the squared error / (2 sigma^2) plus a constant."""

    distribution = Gaussian


class LearnedGaussianFamily(_LearnedScaleFamily):
    """Mean and log-sigma per value from the decoder."""

    distribution = Gaussian


class LaplaceFamily(_FixedScaleFamily):
    """Fixed b (``likelihood_scale``): -log p is the L1 error / b plus a constant."""

    distribution = Laplace


class LearnedLaplaceFamily(_LearnedScaleFamily):
    """Location and log-b per value from the decoder."""

    distribution = Laplace


class DiscretizedLogisticFamily(_LearnedScaleFamily):
    """Location and log-scale per value, discretised onto the data's ``n_levels`` (256 for 8-bit images)."""

    support: Support = "levels"
    discrete = True

    def __init__(self, event_ndim: int, n_levels: int = 256) -> None:
        super().__init__(event_ndim)
        self.n_levels = n_levels

    @classmethod
    def from_spec(cls, spec: DataSpec, config: LikelihoodOptions) -> DiscretizedLogisticFamily:
        return cls(len(spec.shape), n_levels=spec.n_levels)

    def __call__(self, raw: Tensor) -> DiscretizedLogistic:
        return DiscretizedLogistic(*self._loc_and_log_scale(raw), self.event_ndim, self.n_levels)


class CategoricalFamily(LikelihoodFamily):
    support: Support = "levels"
    discrete = True

    def __init__(self, event_ndim: int, n_categories: int, unit_levels: bool = True) -> None:
        super().__init__(event_ndim)
        self.n_params = n_categories
        self.unit_levels = unit_levels

    @classmethod
    def from_spec(cls, spec: DataSpec, config: LikelihoodOptions) -> CategoricalFamily:
        return cls(len(spec.shape), n_categories=spec.n_levels)

    def __call__(self, raw: Tensor) -> Categorical:
        logits = raw.movedim(raw.ndim - self.event_ndim - 1, -1)  # (*batch, *event, K)
        return Categorical(logits, self.event_ndim, self.unit_levels)


LIKELIHOODS: Registry[type[LikelihoodFamily]] = Registry("likelihood")
LIKELIHOODS.add("bernoulli", BernoulliFamily)
LIKELIHOODS.add("continuous_bernoulli", ContinuousBernoulliFamily)
LIKELIHOODS.add("gaussian", GaussianFamily)
LIKELIHOODS.add("gaussian_learned", LearnedGaussianFamily)
LIKELIHOODS.add("laplace", LaplaceFamily)
LIKELIHOODS.add("laplace_learned", LearnedLaplaceFamily)
LIKELIHOODS.add("categorical", CategoricalFamily)
LIKELIHOODS.add("discretized_logistic", DiscretizedLogisticFamily)
