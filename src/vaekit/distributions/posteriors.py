"""Posteriors q(z|x): distribution objects and the heads that produce them from features.

The distributions here treat the last axis as the event (the latent vector): ``log_prob`` returns
one value per sample, as ``torch.distributions.Independent`` would, without its wrapper overhead.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

from vaekit.networks.ldm import LOGVAR_RANGE
from vaekit.registry import Registry
from vaekit.sections import Section

LOG_2PI = math.log(2 * math.pi)


def _as_int64(value: int) -> int:
    """An unsigned 64-bit constant as the signed int64 with the same bits."""
    return value - 2**64 if value >= 2**63 else value


_GOLDEN = _as_int64(0x9E3779B97F4A7C15)
_MIX_1 = _as_int64(0xBF58476D1CE4E5B9)
_MIX_2 = _as_int64(0x94D049BB133111EB)


def _shift_right(z: Tensor, bits: int) -> Tensor:
    """Logical right shift of int64 bit patterns (torch's ``>>`` is arithmetic)."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def _splitmix64(z: Tensor) -> Tensor:
    """The splitmix64 finaliser (Steele et al. 2014) on int64 tensors; products wrap modulo 2^64."""
    z = z + _GOLDEN
    z = (z ^ _shift_right(z, 30)) * _MIX_1
    z = (z ^ _shift_right(z, 27)) * _MIX_2
    return z ^ _shift_right(z, 31)


class KeyedNoise:
    """Standard normal noise keyed per item: per-sample seeds, so a score never depends on the batch.

    Pass it where a ``generator`` goes. Item b's draws are a hash of (seed, ``keys[b]``, the draw's
    number, the position within the item), so they are the same whichever items share its batch,
    in what order, on CPU or GPU: a counter-based generator in the spirit of Philox (Salmon et al.
    2011), vectorised with int64 arithmetic and Box-Muller. The batch axis of a requested shape is
    the one before the last (``(B, L)`` or ``(S, B, L)``, as posteriors draw). Draws are counted, so
    successive draws (the layers of a hierarchical model) differ; the same sequence of calls
    reproduces the same noise.
    """

    def __init__(self, keys: Tensor, seed: int = 0) -> None:
        self.keys = torch.as_tensor(keys).long().reshape(-1)  # (B,)
        self.seed = int(seed)
        self.draws = 0

    def normal(self, shape: torch.Size | tuple, like: Tensor) -> Tensor:
        shape = torch.Size(shape)
        if len(shape) < 2 or shape[-2] != len(self.keys):
            raise ValueError(f"keyed noise for {len(self.keys)} items cannot fill shape {tuple(shape)}")
        lead, width = shape[:-2], shape[-1]
        per_item = math.prod(lead) * width
        keys = self.keys.to(like.device)
        stream = _splitmix64(torch.tensor([self.seed, self.draws], dtype=torch.long, device=like.device))
        self.draws += 1
        item = _splitmix64(keys ^ stream[0]) + stream[1]  # (B,)
        position = torch.arange(per_item, device=like.device).view(*lead, 1, width)  # (*S, 1, L)
        bits = _splitmix64(_splitmix64(item.unsqueeze(-1) + position * _GOLDEN))  # (*S, B, L)
        scale = 2.0**-24  # two 24-bit uniforms in (0, 1) from one 64-bit hash
        u1 = (_shift_right(bits, 40).float() + 0.5) * scale
        u2 = (((bits >> 8) & 0xFFFFFF).float() + 0.5) * scale
        z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)
        return z.to(like.dtype)


def content_keys(x: Tensor) -> Tensor:
    """One int64 key per sample of x (N, ...), a hash of its values' bits and positions: equal
    samples get equal keys, wherever they are in a batch."""
    flat = x.detach().float().reshape(len(x), -1).contiguous()
    bits = flat.view(torch.int32).long()  # (N, D)
    position = torch.arange(flat.shape[1], device=x.device) * _GOLDEN
    return _splitmix64(bits + position).sum(1)  # (N,), the sum wraps modulo 2^64


def randn(shape: torch.Size | tuple, like: Tensor, generator: torch.Generator | KeyedNoise | None = None) -> Tensor:
    """Standard normal noise with ``like``'s dtype and device. Without a generator it calls plain
    ``torch.randn``, which torch.compile traces with dynamic batch sizes (the generator overload fails).
    A :class:`KeyedNoise` gives per-item noise."""
    if isinstance(generator, KeyedNoise):
        return generator.normal(shape, like)
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


class MomentsHead(nn.Module):
    """Features that already are q(z|x)'s moments (B, 2L), mean then log-variance -> N(mu, diag(exp(logvar))),
    the log-variance clamped to [-30, 20]; for an encoder that ends in its own moments layer
    (networks/ldm_vae.py). No parameters: a Linear over a latent grid of thousands would break its
    spatial structure. ``deterministic`` keeps the mean only (a plain autoencoder's code)."""

    def __init__(self, deterministic: bool = False) -> None:
        super().__init__()
        self.deterministic = deterministic

    def forward(self, h: Tensor) -> DiagonalGaussian | PointMass:
        loc, logvar = h.chunk(2, dim=-1)  # (B, L) each
        return PointMass(loc) if self.deterministic else DiagonalGaussian(loc, logvar.clamp(*LOGVAR_RANGE))


class PosteriorOptions(Section):
    """q(z|x)'s options (``model.*``)."""

    posterior: str = "gaussian"
    """q(z|x): gaussian, or deterministic (a plain autoencoder's code)."""


POSTERIORS: Registry[type[nn.Module]] = Registry("posterior")
POSTERIORS.add("gaussian", GaussianHead)
POSTERIORS.add("deterministic", DeterministicHead)
