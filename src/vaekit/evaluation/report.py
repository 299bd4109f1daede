"""The evaluation written to metrics.json: bounds and latent diagnostics on held-out data."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from vaekit.data.tokens import PAD
from vaekit.distributions.posteriors import DiagonalGaussian
from vaekit.errors import DataError
from vaekit.evaluation.latent import LatentStats, mutual_information
from vaekit.evaluation.likelihood import bounds
from vaekit.models.vae import VAE
from vaekit.training import cpu
from vaekit.training.trainer import Callback, Trainer

MI_SAMPLES = 2000  # posteriors for the mutual information estimate: all pairs of them are compared


@torch.no_grad()
def evaluate(model: VAE, x: Tensor, *, k: int = 100, batch_size: int = 256, seed: int = 0,
             y: Tensor | None = None, t: Tensor | None = None, property_names: list[str] | None = None,
             feature_names: list[str] | None = None, what: str = "held-out data") -> dict[str, Any]:
    """Mean -ELBO, recon, KL and k-sample NLL (nats and bits/dim) over ``x``, plus latent stats.

    A model with a deterministic code has no bound; it reports the reconstruction term only. A
    conditional model takes the labels ``y``. KL per dimension and active units describe the top
    layer's posterior against N(0, I), whatever the prior. A model with a property head and the
    standardised targets ``t`` also reports R^2 of each property (``property_names``) from the
    posterior mean.

    Raises
    ------
    DataError
        A row whose bound is not finite (NaN or infinite), naming the row and, for a table
        (``feature_names``), the column farthest outside the training data, rather than a NaN metric.
    """
    model.eval()
    device = next(model.parameters()).device
    if device.type == "cpu":
        cpu.tune()
    generator = torch.Generator(device=device).manual_seed(seed)
    stats = LatentStats(model.latent_dim, device)
    condition = (lambda part: None) if y is None or not model.condition_dim else (lambda part: y[part].to(device))
    stochastic = isinstance(model.encode(x[:1].to(device), condition(slice(0, 1))), DiagonalGaussian)
    totals: dict[str, float] = {}
    kept: list[tuple[Tensor, Tensor]] = []  # posteriors for the mutual information, MI_SAMPLES at most
    head = getattr(model, "property_head", None) if t is not None else None
    predicted: list[Tensor] = []
    for start in range(0, len(x), batch_size):
        part = slice(start, start + batch_size)
        batch, c = x[part].to(device), condition(part)
        qz = model.encode(batch, c)
        stats.update(qz)
        if head is not None:
            predicted.append(head(qz.mean.float()).cpu())
        if stochastic and start < MI_SAMPLES:
            kept.append((qz.mean[: MI_SAMPLES - start].detach(), qz.logvar[: MI_SAMPLES - start].detach()))
        if stochastic:
            values = bounds(model, batch, k, generator, qz, c)
        else:
            values = {"recon": -model.decode(qz.mean, c).log_prob(batch)}
        check_finite(next(iter(values.values())), batch, start, feature_names, what)
        for name, value in values.items():
            totals[name] = totals.get(name, 0.0) + float(value.double().sum())
    n, dims = len(x), x[0].numel()
    metrics: dict[str, Any] = {name: total / n for name, total in totals.items()}
    metrics["n_samples"] = n
    if stochastic:
        metrics["elbo"] = -metrics["neg_elbo"]
        metrics["k"] = k
        if getattr(model.likelihood, "support", None) == "tokens":  # text, molecules: per token, not per position
            tokens = float((x[:, 1:] != PAD).sum())  # every predicted token, <eos> included
            metrics["tokens_per_sample"] = tokens / n
            metrics["nll_per_token"] = metrics["nll"] * n / tokens
            metrics["perplexity"] = math.exp(metrics["nll_per_token"])
        elif model.likelihood.discrete:  # a pmf, so -log p is a code length; a density's is not
            metrics["bits_per_dim"] = metrics["nll"] / (dims * math.log(2))
        latent = stats.result()
        metrics["kl_per_dim"] = [round(v, 5) for v in latent["kl_per_dim"].tolist()]
        metrics["active_units"] = int(latent["active_units"])
        metrics["mutual_information"] = mutual_information(torch.cat([m for m, _ in kept]),
                                                           torch.cat([v for _, v in kept]), seed)
    if head is not None:
        metrics["property_r2"] = property_r2(torch.cat(predicted), t.cpu(), property_names)
    metrics["latent_dim"] = model.latent_dim
    return metrics


def property_r2(predicted: Tensor, target: Tensor, names: list[str] | None) -> dict[str, float]:
    """Coefficient of determination per property over the samples that have a target."""
    out = {}
    for j in range(target.shape[1]):
        known = ~torch.isnan(target[:, j])
        truth, guess = target[known, j].double(), predicted[known, j].double()
        total = float((truth - truth.mean()).square().sum())
        r2 = 1.0 - float((truth - guess).square().sum()) / total if total else float("nan")
        out[names[j] if names else str(j)] = r2
    return out


def check_finite(losses: Tensor, x: Tensor, offset: int, feature_names: list[str] | None, what: str) -> None:
    """Raise a DataError if a row's loss (B,) is not finite: such rows lie so far outside the
    training data that the model overflows, and one of them would make every averaged metric NaN.
    The message names the first such row and, for a table, its column farthest from the training
    data (model space is standardised: its largest magnitude)."""
    bad = torch.nonzero(~torch.isfinite(losses)).flatten()
    if not len(bad):
        return
    row = int(bad[0])
    where = f"row {offset + row}"
    if feature_names is not None:
        values = torch.nan_to_num(x[row].double().abs(), nan=0.0)  # (D,): a hole is no departure
        column = int(values.argmax())
        where += f": column {feature_names[column]!r} is {float(x[row, column]):.3g} training standard deviations out"
    raise DataError(f"{what}: {len(bad)} rows get no finite loss from the model ({where}): values far outside "
                    "the training data; remove or correct them")


class FiniteValidation(Callback):
    """Stops training with :func:`check_finite`'s error when the validation loss is not finite, before
    the NaN is printed or written (must run before the callbacks that write the row)."""

    def __init__(self, tensors: dict[str, Tensor], conditional: bool, feature_names: list[str] | None,
                 batch_size: int = 256) -> None:
        self.x, self.y = tensors["x"], tensors.get("y") if conditional else None
        self.feature_names, self.batch_size = feature_names, batch_size

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        from vaekit.training.checkpoint import unwrap

        if math.isfinite(row.get("val_loss", 0.0)):
            return
        model = unwrap(trainer.model)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for start in range(0, len(self.x), self.batch_size):
                part = slice(start, start + self.batch_size)
                out = model(self.x[part], condition=None if self.y is None else self.y[part])
                losses = -out.px.log_prob(self.x[part])
                if isinstance(out.qz, DiagonalGaussian):
                    losses = losses + out.kl()
                check_finite(losses, self.x[part], start, self.feature_names, "validation split")
        model.train(was_training)
