"""Latent diagnostics: KL per dimension, active units (Burda et al. 2016, sec. 5.2) and the mutual
information between x and z under the encoder (the posterior-collapse gauge of He et al. 2019)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vaekit.distributions.kl import kl_per_dim
from vaekit.distributions.posteriors import DiagonalGaussian
from vaekit.training.trainer import Callback, Trainer

ACTIVE_THRESHOLD = 0.01  # a unit is active when Cov_x(E_q[z_u]) exceeds this


def active_dims(means: Tensor) -> Tensor:
    """Which latent dimensions of posterior means (N, L) are active, a bool mask (L,); all of them
    when none is. Inactive units carry no information about x, and clustering them invites a
    mixture to fit their noise."""
    active = means.double().var(0, unbiased=False) > ACTIVE_THRESHOLD  # (L,)
    return active if bool(active.any()) else torch.ones_like(active)


class LatentStats:
    """Accumulates, batch by batch, the posterior means' moments and the KL per dimension."""

    def __init__(self, latent_dim: int, device: torch.device) -> None:
        self.n = 0
        self.sum = torch.zeros(latent_dim, device=device, dtype=torch.float64)
        self.sum_sq = torch.zeros_like(self.sum)
        self.kl = torch.zeros_like(self.sum)

    def update(self, qz: torch.distributions.Distribution) -> None:
        mean = qz.mean.double()  # (B, L)
        self.n += mean.shape[0]
        self.sum += mean.sum(0)
        self.sum_sq += (mean * mean).sum(0)
        if isinstance(qz, DiagonalGaussian):
            self.kl += kl_per_dim(qz).double().sum(0)

    def result(self) -> dict[str, Tensor]:
        n = max(self.n, 1)
        variance = self.sum_sq / n - (self.sum / n) ** 2  # Cov_x(E_q[z]) per unit
        return {
            "kl_per_dim": self.kl / n,
            "mean_variance": variance,
            "active_units": (variance > ACTIVE_THRESHOLD).sum(),
        }


def mutual_information(mean: Tensor, logvar: Tensor, seed: int = 0) -> float:
    """I(x; z) in nats under q(x, z) = p_data(x) q(z|x), estimated from N posteriors (N, L):
    E[log q(z|x)] - E[log q(z)], one draw z ~ q(z|x) per x, with q(z) the average of the N
    posteriors (Hoffman & Johnson 2016; the estimator of He et al. 2019). At most log N; a
    collapsed encoder (q(z|x) = p(z) for every x) gives about 0, an estimate that may dip a little
    below it."""
    mean, logvar = mean.double(), logvar.double()
    n, dims = mean.shape
    generator = torch.Generator(device=mean.device).manual_seed(seed)
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    z = mean + torch.exp(0.5 * logvar) * noise  # (N, L): one draw per x
    log_2pi = math.log(2 * math.pi)
    own = (-0.5 * (dims * log_2pi + logvar.sum(1) + dims)).mean()  # E log q(z|x): minus the entropy
    # log q(z_i | x_j) for every pair, (N, N), with the square expanded into matrix products so that
    # no (N, N, L) array is formed (2,000 codes of 32 dimensions would take 1 GB)
    precision = torch.exp(-logvar)  # (N, L)
    square = z.square() @ precision.T - 2 * z @ (mean * precision).T + (mean.square() * precision).sum(1)[None, :]
    pair = -0.5 * (dims * log_2pi + logvar.sum(1)[None, :] + square)
    aggregate = (torch.logsumexp(pair, 1) - math.log(n)).mean()  # E log q(z)
    return float(own - aggregate)


@torch.no_grad()
def latent_summary(model: torch.nn.Module, x: Tensor, condition: Tensor | None = None,
                   batch_size: int = 256) -> dict[str, Tensor] | None:
    """:meth:`LatentStats.result` of the posteriors of ``x`` (N, ...), in eval mode and
    ``batch_size`` at a time (with labels or condition vectors ``condition`` for a conditional
    model); None for a deterministic code."""
    stats = LatentStats(model.latent_dim, x.device)
    was_training = model.training
    model.eval()
    for start in range(0, len(x), batch_size):
        part = slice(start, start + batch_size)
        qz = model.encode(x[part], None if condition is None else condition[part])
        if not isinstance(qz, DiagonalGaussian):
            break
        stats.update(qz)
    model.train(was_training)
    return stats.result() if stats.n else None


class LatentMonitor(Callback):
    """Active units and the smallest and largest KL of a latent dimension, on up to ``limit``
    validation samples after every epoch (history.csv's ``active_units``, ``kl_dim_min``,
    ``kl_dim_max``), so posterior collapse shows while it happens rather than in metrics.json at
    the end. Nothing for a deterministic code. Must run before the callbacks that write the row."""

    def __init__(self, tensors: dict[str, Tensor], conditional: bool, limit: int = 2000, batch_size: int = 256) -> None:
        self.x = tensors["x"][:limit]
        self.y = tensors["y"][:limit] if conditional and "y" in tensors else None
        self.batch_size = batch_size

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        result = latent_summary(trainer.model, self.x, self.y, self.batch_size)
        if result is not None:
            row["active_units"] = int(result["active_units"])
            row["kl_dim_min"] = float(result["kl_per_dim"].min())
            row["kl_dim_max"] = float(result["kl_per_dim"].max())
