"""Element-wise distributions over one data sample: the decoder's raw output read as p(x|z).

-log p(x|z) is the reconstruction term, so binary cross-entropy (Bernoulli) and squared error
(Gaussian) are special cases of one code path, not branches. Every distribution here treats the
trailing ``event_ndim`` axes as one event (an image, a table row): ``log_prob`` returns one value per
sample. Bernoulli and continuous Bernoulli work from logits: sigmoid + BCE costs about 5x more than
BCE-with-logits on CPU (see shared/reference/perf-anchors.md). Location-scale distributions (Gaussian,
Laplace, discretised logistic) share one base. The families that build them from the decoder's output
are in :mod:`vaekit.distributions.likelihoods`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import ContinuousBernoulli as _TorchContinuousBernoulli
from torch.distributions import Distribution, constraints

from vaekit.distributions.posteriors import randn

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
LOG_2 = math.log(2)


def _sum_event(values: Tensor, event_ndim: int) -> Tensor:
    return values.flatten(-event_ndim).sum(-1) if event_ndim else values


class EventDistribution(Distribution):
    """Shared plumbing: batch/event shapes from a parameter tensor, no argument validation."""

    arg_constraints: ClassVar[dict] = {}
    support = constraints.real

    def __init__(self, param: Tensor, event_ndim: int) -> None:
        self.event_ndim = event_ndim
        split = param.ndim - event_ndim
        super().__init__(param.shape[:split], param.shape[split:], validate_args=False)

    def log_prob_elements(self, x: Tensor) -> Tensor:
        """log p of each value of x, not summed over the event: (*batch, *event)."""
        raise NotImplementedError

    def log_prob(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """log p(x) per sample; with a boolean ``mask`` (broadcastable to x) only the values where it
        is True count: the observed part of a partly missing sample (x may hold anything, NaN
        included, where the mask is False)."""
        if mask is None:
            return _sum_event(self.log_prob_elements(x), self.event_ndim)
        # A stand-in for the missing values first: NaN there would give NaN gradients through where.
        values = self.log_prob_elements(torch.where(mask, x, x.new_zeros(())))
        return _sum_event(torch.where(mask, values, values.new_zeros(())), self.event_ndim)

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError


class Bernoulli(EventDistribution):
    """Independent Bernoulli per value, from logits; accepts targets in [0, 1] (the usual BCE)."""

    def __init__(self, logits: Tensor, event_ndim: int) -> None:
        self.logits = logits
        super().__init__(logits, event_ndim)

    @property
    def mean(self) -> Tensor:
        return torch.sigmoid(self.logits)

    def log_prob_elements(self, x: Tensor) -> Tensor:
        return -F.binary_cross_entropy_with_logits(self.logits, x.expand_as(self.logits), reduction="none")

    def log_prob(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """log p(x) per sample. Without gradients (evaluation: k importance samples per item) as
        x . logits - sum softplus(logits): one elementwise pass and a dot product, where the
        BCE-with-logits kernel makes about six passes over (k, B, D) values; with gradients the
        BCE kernel, whose backward is fused."""
        if (mask is not None or self.event_ndim == 0 or x.dtype != self.logits.dtype
                or (torch.is_grad_enabled() and self.logits.requires_grad)):
            return super().log_prob(x, mask)
        logits = self.logits.flatten(-self.event_ndim)  # (*S, B, D)
        target = x.flatten(-self.event_ndim)  # (B, D), or any shape that broadcasts
        if target.ndim == 2:  # x (B, D) against (*S, B, D): a batched matrix product, no (*S, B, D) product written
            cross = torch.einsum("...bd,bd->...b", logits, target)
        else:
            cross = torch.linalg.vecdot(logits, target)
        return cross - F.softplus(logits).sum(-1)

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        probs = self.mean.expand(torch.Size(sample_shape) + self.logits.shape)
        return torch.bernoulli(probs, generator=generator)


class ContinuousBernoulli(EventDistribution):
    """The continuous Bernoulli (Loaiza-Ganem & Cunningham 2019): a normalised density on [0, 1]."""

    def __init__(self, logits: Tensor, event_ndim: int) -> None:
        self.logits = logits
        self._torch = _TorchContinuousBernoulli(logits=logits, validate_args=False)
        super().__init__(logits, event_ndim)

    @property
    def mean(self) -> Tensor:
        return self._torch.mean

    def log_prob_elements(self, x: Tensor) -> Tensor:
        return self._torch.log_prob(x.expand_as(self.logits))

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        shape = torch.Size(sample_shape) + self.logits.shape
        u = torch.rand(shape, dtype=self.logits.dtype, device=self.logits.device, generator=generator)
        return self._torch.icdf(u.clamp(1e-6, 1 - 1e-6))


def _open_uniform(shape: torch.Size, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """U(0, 1) draws without 0 (``torch.rand`` never returns 1), so log u and log(1 - u) are finite."""
    u = torch.rand(shape, dtype=like.dtype, device=like.device, generator=generator)
    return u.clamp_min(torch.finfo(like.dtype).tiny)


class LocationScale(EventDistribution):
    """Independent loc + scale * noise per value; log-scale is a tensor (learned) or one fixed float.

    A fixed scale stays a Python float, so -log p is the plain error (squared, absolute) times a
    constant, with no tensor of scales built per batch.
    """

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

    def _inv_scale(self) -> Tensor | float:
        log_scale = self.log_scale
        return torch.exp(-log_scale) if isinstance(log_scale, Tensor) else math.exp(-log_scale)

    def _standard_noise(self, shape: torch.Size, generator: torch.Generator | None) -> Tensor:
        """Draws of the family's standard (loc 0, scale 1) distribution."""
        raise NotImplementedError

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        shape = torch.Size(sample_shape) + self.loc.shape
        return self.loc + self.scale * self._standard_noise(shape, generator)


class Gaussian(LocationScale):
    """Independent N(mu, sigma^2) per value; sigma is a tensor (learned) or a fixed float."""

    def log_prob_elements(self, x: Tensor) -> Tensor:
        z = (x - self.loc) * self._inv_scale()
        return -0.5 * z.square() - self.log_scale - HALF_LOG_2PI

    def _standard_noise(self, shape: torch.Size, generator: torch.Generator | None) -> Tensor:
        return randn(shape, self.loc, generator)


class Laplace(LocationScale):
    """Independent Laplace(mu, b) per value: density exp(-|x - mu| / b) / (2b), an L1 reconstruction loss."""

    def log_prob_elements(self, x: Tensor) -> Tensor:
        return -(x - self.loc).abs() * self._inv_scale() - self.log_scale - LOG_2

    def _standard_noise(self, shape: torch.Size, generator: torch.Generator | None) -> Tensor:
        u = _open_uniform(shape, self.loc, generator)
        return torch.where(u < 0.5, torch.log(2 * u), -torch.log(2 * (1 - u)))  # inverse CDF


def _log1mexp(log_d: Tensor) -> Tensor:
    """log(1 - exp(-d)) for d = exp(log_d) > 0, finite (with finite gradients) even where d underflows."""
    small = log_d < -10.0  # d < 5e-5: log(1 - e^-d) = log d - d/2 + O(d^2)
    series = log_d - 0.5 * torch.exp(log_d.clamp_max(-10.0))
    exact = torch.log(-torch.expm1(-torch.exp(log_d.clamp_min(-10.0))))
    return torch.where(small, series, exact)


class DiscretizedLogistic(LocationScale):
    """A logistic per value, discretised onto ``n_levels`` evenly spaced levels in [0, 1].

    Salimans et al. 2017 (PixelCNN++), eq. 2, with one logistic per sub-pixel: level k gets the
    logistic mass of its bin [k - 1/2, k + 1/2] / (n_levels - 1); the lowest level takes all mass
    below, the highest all mass above, so the levels' probabilities sum to 1. A value x is read as
    the nearest level, round(x * (n_levels - 1)).

    The bin mass sigma(u) - sigma(l) is computed in log space as
    log sigma(u) + log(1 - sigma(l)) + log(1 - exp(-(u - l))), with u - l = bin width / scale known
    exactly, so nothing cancels: a value far in a tail, or a scale much wider than a bin, gets its
    tiny log-probability exactly, where PixelCNN++ falls back to the density at the bin centre.
    """

    def __init__(self, loc: Tensor, log_scale: Tensor, event_ndim: int, n_levels: int) -> None:
        self.n_levels = n_levels
        super().__init__(loc, log_scale, event_ndim)

    @property
    def mean(self) -> Tensor:
        return self.loc.clamp(0.0, 1.0)

    def log_prob_elements(self, x: Tensor) -> Tensor:
        top = self.n_levels - 1
        level = (x * top).round().clamp(0, top)  # the nearest level's index: robust to x = k / 255 rounding
        half_width = 0.5 / top
        centred = level / top - self.loc
        inv_scale = self._inv_scale()
        upper = (centred + half_width) * inv_scale  # the bin's edges, standardised
        lower = (centred - half_width) * inv_scale
        log_cdf_upper = -F.softplus(-upper)  # log P(X <= upper edge): the lowest level's mass
        log_sf_lower = -F.softplus(lower)  # log P(X > lower edge): the highest level's mass
        log_width = -math.log(top) - self.log_scale  # log((upper - lower) in standard units)
        log_bin = log_cdf_upper + log_sf_lower + _log1mexp(log_width)
        return torch.where(level == 0, log_cdf_upper, torch.where(level == top, log_sf_lower, log_bin))

    def _standard_noise(self, shape: torch.Size, generator: torch.Generator | None) -> Tensor:
        u = _open_uniform(shape, self.loc, generator)
        return torch.log(u) - torch.log1p(-u)  # the logistic's inverse CDF

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        top = self.n_levels - 1
        return (super().sample(sample_shape, generator) * top).round().clamp(0, top) / top


class Categorical(EventDistribution):
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

    def log_prob_elements(self, x: Tensor) -> Tensor:
        k = self.logits.shape[-1]
        index = (x * (k - 1)).round() if self.unit_levels else x
        index = index.long().clamp(0, k - 1).expand(self.logits.shape[:-1])
        return torch.log_softmax(self.logits, -1).gather(-1, index.unsqueeze(-1)).squeeze(-1)

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        probs = torch.softmax(self.logits, -1).expand(torch.Size(sample_shape) + self.logits.shape)
        flat = probs.reshape(-1, probs.shape[-1])
        index = torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])
        return self._values()[index]
