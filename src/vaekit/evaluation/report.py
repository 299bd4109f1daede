"""The evaluation written to metrics.json: bounds and latent diagnostics on held-out data.

Items are visited in a seeded random order, so that any leading part of them (the posteriors kept
for the mutual information, or the items a time budget leaves room for) is a fair sample even of a
file sorted by label. With a budget, a short timed pilot (twice 8 items) sets how many items and
importance samples fit in it (:func:`plan_evaluation`), and the evaluation says what it cut.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.distributions import Distribution

from vaekit.data.tokens import PAD
from vaekit.distributions.posteriors import DiagonalGaussian
from vaekit.errors import DataError, DivergenceError
from vaekit.evaluation.latent import LatentStats, mutual_information
from vaekit.evaluation.likelihood import bounds
from vaekit.evaluation.reconstruction import UnitScale, reconstruction_scores, ssim_refusal, unit_scale
from vaekit.models.vae import VAE
from vaekit.training import cpu
from vaekit.training.callbacks import progress_bar
from vaekit.training.trainer import Callback, Trainer

if TYPE_CHECKING:
    from vaekit.data.spec import DataSpec

log = logging.getLogger(__name__)

MI_SAMPLES = 2000  # posteriors for the mutual information estimate: all pairs of them are compared
PILOT_ITEMS = 8  # items timed to plan an evaluation under a budget
MIN_ITEMS = 1000  # a budget cuts items down to this many (a mean known to a few percent) before cutting k


@dataclass(frozen=True)
class EvalPlan:
    """How much of a held-out set an evaluation covers: ``n`` of its ``available`` items, ``k``
    importance samples each (0 for a deterministic code, which has no bound)."""

    n: int
    available: int
    k: int

    def describe(self) -> str:
        items = f"{self.n:,} of {self.available:,} test items"
        return f"k={self.k} on {items}" if self.k else items


def plan_evaluation(available: int, k: int, seconds_per_pass: float, max_seconds: float) -> EvalPlan:
    """The most of an evaluation that fits ``max_seconds`` when an item costs ``seconds_per_pass``
    per pass through the model (k + 1 passes: the ELBO's and the k importance samples'): every item
    at ``k`` if that fits; else fewer items, down to ``MIN_ITEMS``; then fewer importance samples,
    down to 1; then fewer items again (at least one). ``k`` = 0 plans a code without a bound (one
    pass per item)."""
    per_pass = max(seconds_per_pass, 1e-12)
    if available * (k + 1) * per_pass <= max_seconds:
        return EvalPlan(available, available, k)
    n = int(max_seconds / ((k + 1) * per_pass))
    if n >= MIN_ITEMS or k == 0:
        return EvalPlan(max(1, n), available, k)
    n = min(available, MIN_ITEMS)
    fitting_k = min(k, int(max_seconds / (n * per_pass)) - 1)
    if fitting_k >= 1:
        return EvalPlan(n, available, fitting_k)
    return EvalPlan(max(1, min(available, int(max_seconds / (2 * per_pass)))), available, 1)


@torch.no_grad()
def evaluate(model: VAE, x: Tensor, *, k: int = 100, batch_size: int = 256, seed: int = 0,
             y: Tensor | None = None, t: Tensor | None = None, property_names: list[str] | None = None,
             feature_names: list[str] | None = None, what: str = "held-out data",
             max_seconds: float | None = None, progress: bool = False,
             clock: Callable[[], float] = time.monotonic, spec: DataSpec | None = None) -> dict[str, Any]:
    """Mean -ELBO, recon, KL and k-sample NLL (nats and bits/dim) over ``x``, plus latent stats.

    A model with a deterministic code has no bound; it reports the reconstruction term only. A
    conditional model takes the labels ``y``. KL per dimension and active units describe the top
    layer's posterior against N(0, I), whatever the prior. A model with a property head and the
    standardised targets ``t`` also reports R^2 of each property (``property_names``) from the
    posterior mean. Given the data's ``spec``, image data (its kind supports "reconstruction") also
    report ``psnr`` (dB) and ``ssim``: means over the items of the per-image scores of the likelihood's
    mean at the posterior mean, clipped to the data's range, on the [0, 1] scale of
    :func:`~vaekit.evaluation.reconstruction.unit_scale`; ``not_computed`` says why SSIM is missing
    for images smaller than its window.

    With ``max_seconds`` (measured by ``clock``), only as many items and importance samples as fit
    are evaluated (see :func:`plan_evaluation`), and a last check after every batch stops at the
    deadline. ``n_samples`` and ``k`` in the result say what was evaluated, ``n_available`` of how
    many items; ``progress`` shows a progress bar.

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
    started = clock()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))  # (N,) a fair prefix
    conditional = y is not None and bool(model.condition_dim)

    def condition(index: Tensor) -> Tensor | None:
        return y[index].to(device) if conditional else None

    stochastic = isinstance(model.encode(x[:1].to(device), condition(order[:1])), DiagonalGaussian)
    wanted_k = k if stochastic else 0
    plan = EvalPlan(len(x), len(x), wanted_k)
    if max_seconds is not None and len(x) > PILOT_ITEMS:  # time a pilot, then fit items and k to the budget
        pilot = order[:PILOT_ITEMS]
        per_pass = pilot_seconds_per_pass(model, x[pilot].to(device), wanted_k, seed, condition(pilot), clock)
        plan = plan_evaluation(len(x), wanted_k, per_pass, max_seconds - (clock() - started))
    generator = torch.Generator(device=device).manual_seed(seed)
    tally = _Tally(LatentStats(model.latent_dim, device), model.head("property_head") if t is not None else None)
    scale = image_scale(spec, x)
    bar = progress_bar(plan.n, "evaluation", unit="item") if progress else None
    for start in range(0, plan.n, batch_size):
        index = order[start : min(start + batch_size, plan.n)]
        batch, c = x[index].to(device), condition(index)
        qz = tally.encoded(model.encode(batch, c), start, stochastic)
        values = _bounds(model, batch, plan.k, generator, c, stochastic, qz)
        if scale is not None:
            values.update(reconstruction_scores(spec, scale, model.reconstruct(batch, c).mean, batch))
        sums = torch.stack([value.double().sum() for value in values.values()]).tolist()  # the batch's one host read
        if not math.isfinite(sums[0]):  # a sum is finite exactly when every row's value is
            check_finite(next(iter(values.values())), batch, index, feature_names, what)
        for name, total in zip(values, sums, strict=True):
            tally.totals[name] = tally.totals.get(name, 0.0) + total
        tally.n += len(index)
        if bar is not None:
            bar.update(len(index))
        if max_seconds is not None and clock() - started > max_seconds:
            break  # the plan misjudged the speed: keep what is done
    if bar is not None:
        bar.close()
    plan = EvalPlan(tally.n, len(x), plan.k)
    if plan.n < plan.available or plan.k < wanted_k:
        log.info("evaluation: %s to fit its budget of %g s", plan.describe(), max_seconds)
    metrics = _summarise(model, x, order[: tally.n], tally, plan, stochastic, seed, t, property_names)
    if scale is not None and ssim_refusal(spec.shape):
        metrics["not_computed"] = {"ssim": ssim_refusal(spec.shape)}
    return metrics


def image_scale(spec: DataSpec | None, x: Tensor) -> UnitScale | None:
    """The [0, 1] scale of model-space items ``x`` for PSNR and SSIM; None unless their data are
    images (a kind that supports "reconstruction")."""
    if spec is None or spec.data_kind.unsupported(spec, "reconstruction"):
        return None
    return unit_scale(spec, x)


@dataclass
class _Tally:
    """What the evaluation pass has gathered: latent statistics, the bounds' sums, the first
    MI_SAMPLES posteriors (for the mutual information) and a head's predictions."""

    stats: LatentStats
    head: Any
    totals: dict[str, float] = field(default_factory=dict)
    kept: list[tuple[Tensor, Tensor]] = field(default_factory=list)
    predicted: list[Tensor] = field(default_factory=list)
    n: int = 0

    def encoded(self, qz: Distribution, start: int, stochastic: bool) -> Distribution:
        """Take in a batch's posterior (its first item is the ``start``-th evaluated); returns it."""
        self.stats.update(qz)
        if self.head is not None:
            self.predicted.append(self.head(qz.mean.float()).cpu())
        if stochastic and start < MI_SAMPLES:
            self.kept.append((qz.mean[: MI_SAMPLES - start].detach(), qz.logvar[: MI_SAMPLES - start].detach()))
        return qz


def _summarise(model: VAE, x: Tensor, evaluated: Tensor, tally: _Tally, plan: EvalPlan, stochastic: bool,
               seed: int, t: Tensor | None, property_names: list[str] | None) -> dict[str, Any]:
    """The metrics of the items ``evaluated`` (indices into ``x``) from what the pass gathered."""
    n, totals, kept = tally.n, tally.totals, tally.kept
    dims = x[0].numel()
    metrics: dict[str, Any] = {name: total / n for name, total in totals.items()}
    metrics["n_samples"] = n
    metrics["n_available"] = plan.available
    if stochastic:
        metrics["elbo"] = -metrics["neg_elbo"]
        metrics["k"] = plan.k
        if not model.likelihood.comparable_values:  # token ids (text, molecules): per token, not per position
            tokens = float((x[evaluated, 1:] != PAD).sum())  # every predicted token, <eos> included
            metrics["tokens_per_sample"] = tokens / n
            metrics["nll_per_token"] = metrics["nll"] * n / tokens
            metrics["perplexity"] = math.exp(metrics["nll_per_token"])
        elif model.likelihood.discrete:  # a pmf, so -log p is a code length; a density's is not
            metrics["bits_per_dim"] = metrics["nll"] / (dims * math.log(2))
        latent = tally.stats.result()
        metrics["kl_per_dim"] = [round(v, 5) for v in latent["kl_per_dim"].tolist()]
        metrics["active_units"] = int(latent["active_units"])
        metrics["mutual_information"] = mutual_information(torch.cat([m for m, _ in kept]),
                                                           torch.cat([v for _, v in kept]), seed)
    if tally.head is not None:
        metrics["property_r2"] = property_r2(torch.cat(tally.predicted), t[evaluated].cpu(), property_names)
    metrics["latent_dim"] = model.latent_dim
    return metrics


@torch.no_grad()
def pilot_seconds_per_pass(model: VAE, batch: Tensor, k: int, seed: int = 0, condition: Tensor | None = None,
                           clock: Callable[[], float] = time.monotonic) -> float:
    """Seconds per item and pass through the model (k + 1 passes an item: the ELBO's and the k
    importance samples'; one for a deterministic code, ``k`` = 0) that :func:`evaluate` takes on
    ``batch``, the faster of two timed runs: the first may pay for warming up (kernels, allocations)."""
    model.eval()
    timings = []
    for _ in range(2):
        started = clock()
        qz = model.encode(batch, condition)
        _bounds(model, batch, k, torch.Generator(device=batch.device).manual_seed(seed), condition,
                isinstance(qz, DiagonalGaussian), qz)
        timings.append(clock() - started)
    return min(timings) / (len(batch) * (k + 1))


def _bounds(model: VAE, batch: Tensor, k: int, generator: torch.Generator, condition: Tensor | None,
            stochastic: bool, qz: Distribution) -> dict[str, Tensor]:
    """Per-item bounds of a batch with posterior ``qz`` (:func:`bounds`), or a deterministic code's
    reconstruction term."""
    if stochastic:
        return bounds(model, batch, k, generator, qz, condition)
    return {"recon": -model.decode(qz.mean, condition).log_prob(batch)}


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


def check_finite(losses: Tensor, x: Tensor, rows: Tensor, feature_names: list[str] | None, what: str) -> None:
    """Raise a DataError if a row's loss (B,) is not finite: such rows lie so far outside the
    training data that the model overflows, and one of them would make every averaged metric NaN.
    The message names the first such row and, for a table, its column farthest from the training
    data (model space is standardised: its largest magnitude). ``rows`` (B,) are the batch's row
    numbers in the data."""
    bad = torch.nonzero(~torch.isfinite(losses)).flatten()
    if not len(bad):
        return
    row = int(bad[0])
    where = f"row {int(rows[row])}"
    if feature_names is not None:
        values = torch.nan_to_num(x[row].double().abs(), nan=0.0)  # (D,): a hole is no departure
        column = int(values.argmax())
        where += f": column {feature_names[column]!r} is {float(x[row, column]):.3g} training standard deviations out"
    raise DataError(f"{what}: {len(bad)} rows get no finite loss from the model ({where}): values far outside "
                    "the training data; remove or correct them")


class FiniteValidation(Callback):
    """Stops training with :func:`check_finite`'s error when the validation loss is not finite, before
    the NaN is printed or written (must run before the callbacks that write the row); when no
    validation item has a finite loss, the model diverged: a :class:`DivergenceError` instead."""

    def __init__(self, tensors: dict[str, Tensor], conditional: bool, feature_names: list[str] | None,
                 batch_size: int = 256) -> None:
        self.x, self.y = tensors["x"], tensors.get("y") if conditional else None
        self.feature_names, self.batch_size = feature_names, batch_size

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        if math.isfinite(row.get("val_loss", 0.0)):
            return
        model = trainer.model  # the raw model: under DDP the trainer wraps its step, not the model
        was_training = model.training
        model.eval()
        with torch.no_grad():
            losses = []
            for start in range(0, len(self.x), self.batch_size):
                part = slice(start, start + self.batch_size)
                out = model(self.x[part], condition=None if self.y is None else self.y[part])
                loss = -out.px.log_prob(self.x[part])
                losses.append(loss + out.kl() if isinstance(out.qz, DiagonalGaussian) else loss)
        model.train(was_training)
        every = torch.cat(losses)  # (N,)
        skipped = int(row.get("skipped_steps", 0))
        if skipped or not math.isfinite(row.get("loss", 0.0)) or not bool(torch.isfinite(every).any()):
            # the training steps went NaN/Inf too, or no item at all scores: the model, not the data
            raise DivergenceError(
                f"training diverged: after epoch {int(row.get('epoch', 0))} {int((~torch.isfinite(every)).sum())} of "
                f"{len(every)} validation items have a NaN/Inf loss and {skipped} training steps were skipped as "
                "NaN/Inf; lower train.lr or set train.grad_clip")
        check_finite(every, self.x, torch.arange(len(every)), self.feature_names, "validation split")
