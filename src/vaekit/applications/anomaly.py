"""Anomaly detection with a trained VAE: per-sample scores, thresholds, and how well they rank.

Three scores, higher = more anomalous, each a number the model already defines:

- ``recon``: the reconstruction error, the squared distance (in model space) between x and its usual
  reconstruction E[x | z = the posterior means]. Deterministic, and free of the likelihood's
  normalisation: -log p(x|z) under a Bernoulli is at least the entropy of x's grey levels, so it
  calls every bright grey image unusual, reconstructed well or not.
- ``elbo``: the negative ELBO, estimated from k draws of q(z|x) (An & Cho 2015 score by the
  reconstruction probability; the KL term adds how unusual the code is).
- ``nll``: the importance-sampled -log p(x) from the same k draws (Burda et al. 2016, eq. 12).

The draws of each sample come from :class:`~vaekit.distributions.posteriors.KeyedNoise` keyed by a
hash of the sample's values, and the k draws are split into the same chunks whatever the batch, so a sample's
score does not depend on which other samples are scored with it, in what order, or in what batches.

A threshold turns scores into flags: the top ``contamination`` fraction of the scored data, or a
``quantile`` of the scores of held-out normal data (by default the run's own validation split, which
is normal data by construction). It is saved in the run folder (``anomaly.json``), per score, so
later calls flag new data against the same line.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vaekit.distributions.posteriors import DiagonalGaussian, KeyedNoise, content_keys
from vaekit.errors import ConfigError, DataError
from vaekit.evaluation.likelihood import CHUNK_ELEMENTS, log_weights
from vaekit.files import atomic_write_bytes, atomic_write_json
from vaekit.models.vae import VAE

log = logging.getLogger(__name__)

SCORES = ("recon", "elbo", "nll")
THRESHOLDS_FILE = "anomaly.json"
# Importance samples per forward pass: fixed, so the chunks (and the noise) never depend on the batch.
K_CHUNK = 128


def check_score(score: str, k: int) -> None:
    if score not in SCORES:
        raise ConfigError(f"score {score!r}: expected one of {', '.join(SCORES)}")
    if k < 1:
        raise ConfigError(f"k = {k}: expected at least 1 importance sample")


@torch.no_grad()
def score_samples(model: VAE, x: Tensor, score: str = "nll", k: int = 100, seed: int = 0,
                  condition: Tensor | None = None, keys: Tensor | None = None) -> Tensor:
    """Per-sample anomaly scores (N,) for model-space inputs x (N, *shape); higher = more anomalous.

    Parameters
    ----------
    score : "recon", "elbo" or "nll" (see the module docstring).
    k : importance samples for "elbo" and "nll".
    seed : with ``keys``, fixes every draw.
    condition : labels (N,) or condition vectors (N, C) for a conditional model.
    keys : one integer per sample that seeds its draws (default: a hash of the sample's values,
        so a score depends on the sample alone, not on its position or its batch).
    """
    check_score(score, k)
    if score == "recon" and not model.likelihood.comparable_values:
        raise ConfigError("score 'recon' compares values, and token ids are not quantities: use elbo or nll "
                          "for text and molecules")
    model.eval()
    n = len(x)
    keys = content_keys(x) if keys is None else torch.as_tensor(keys).long()
    if len(keys) != n:
        raise DataError(f"keys: expected one per sample ({n}), got {len(keys)}")
    device = next(model.parameters()).device
    chunk = min(k, K_CHUNK)
    per_sample = max(1, x[0].numel() * model.likelihood.n_params) * (1 if score == "recon" else chunk)
    batch_size = max(1, min(4096, CHUNK_ELEMENTS // per_sample))
    scores = []
    for start in range(0, n, batch_size):
        part = slice(start, start + batch_size)
        batch = x[part].to(device)
        c = None if condition is None else condition[part].to(device)
        if score == "recon":
            error = (model.reconstruct(batch, c).mean - batch).square()
            scores.append(error.nan_to_num(0.0).flatten(1).sum(1))  # a table's missing cells count nothing
            continue
        qz = model.encode(batch, c)
        if not isinstance(qz, DiagonalGaussian):
            raise ConfigError(f"score {score!r} needs a stochastic encoder; this model's code is "
                              "deterministic: use the recon score")
        weights = log_weights(model, batch, k, KeyedNoise(keys[part], seed), qz, c, chunk=chunk)  # (k, B)
        if score == "elbo":
            scores.append(-weights.mean(0))
        else:
            scores.append(-(torch.logsumexp(weights, 0) - math.log(k)))
    return torch.cat(scores).float().cpu()


def run_scores(run, x: np.ndarray | Tensor, score: str = "nll", k: int = 100, seed: int = 0,
               condition: Tensor | None = None, name: str = "input") -> np.ndarray:
    """:func:`score_samples` for raw inputs in the data's units (a :class:`~vaekit.api.Run`)."""
    check_score(score, k)
    values = run.to_model_space(x, name=name)  # refuses NaN, wrong shapes
    caveat = likelihood_caveat(run, score)
    if caveat:
        log.warning(caveat)
    return model_space_scores(run, values, score, k, seed, condition, name)


def model_space_scores(run, values: Tensor, score: str = "nll", k: int = 100, seed: int = 0,
                       condition: Tensor | None = None, name: str = "input") -> np.ndarray:
    """:func:`score_samples` of a run's model-space ``values``, with what the model alone leaves out:
    for a table, a departure from a column constant in training adds :func:`constant_departures` to
    the elbo and nll scores (the recon score already counts it as squared error); a score that is not
    finite is one DataError line naming the row and column."""
    scores = score_samples(run.model, values, score, k, seed, condition).double()
    columns = run.spec.columns
    if not columns:
        return scores.float().numpy()
    if score != "recon":
        scores = scores + constant_departures(columns, values.cpu())
    warn_holes(values, name)
    return require_finite(scores.numpy(), values, columns, what=name).astype(np.float32)


def warn_holes(values: Tensor, what: str = "input") -> None:
    """One warning when rows scored together have different numbers of empty cells: a row's score
    sums the terms of its observed values only, so a row with holes looks more normal than the same
    row complete (penguins: mean -log p 14.4 with no hole, 2.9 with five of eight empty)."""
    missing = torch.isnan(values.flatten(1)).sum(1)
    if len(missing) > 1 and int(missing.min()) != int(missing.max()):
        log.warning("%s: %d of %d rows have empty cells; a score counts only a row's observed values, so rows "
                    "with more holes look more normal: compare rows with the same columns filled, or impute "
                    "them first", what, int((missing > 0).sum()), len(missing))


def likelihood_caveat(run, score: str) -> str | None:
    """A warning when the score rests on a likelihood that misjudges the data: a Bernoulli on grey
    levels charges each grey pixel its entropy, so -ELBO and NLL rank images by brightness more than
    by fit (one-class Fashion-MNIST: AUROC near 0.5, BENCHMARKS.md)."""
    from vaekit.models import likelihood_name

    return run.spec.data_kind.score_caveat(run.spec, likelihood_name(run.spec, run.config.model), score)


@dataclass
class Threshold:
    """A score above ``value`` is flagged. ``method`` says how it was set: "contamination" (the top
    ``level`` fraction of ``n`` scored samples) or "quantile" (the ``level`` quantile of ``n``
    held-out normal samples, from ``source``)."""

    score: str
    k: int
    seed: int
    value: float
    method: str
    level: float
    n: int
    source: str

    def flags(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores) > self.value


def fit_threshold(scores: np.ndarray, *, contamination: float | None = None, quantile: float | None = None,
                  score: str = "nll", k: int = 1, seed: int = 0, source: str = "") -> Threshold:
    """The line between normal and anomalous: flag the top ``contamination`` fraction of ``scores``,
    or everything above their ``quantile`` (scores of normal data); give exactly one of the two."""
    if (contamination is None) == (quantile is None):
        raise ConfigError("threshold: give either a contamination rate or a quantile of normal scores")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0 or not np.isfinite(scores).all():
        raise DataError("threshold: expected a non-empty set of finite scores")
    if contamination is not None:
        if not 0.0 < contamination < 1.0:
            raise ConfigError(f"contamination {contamination}: expected a fraction between 0 and 1")
        method, level, q = "contamination", contamination, 1.0 - contamination
    else:
        if not 0.0 < quantile < 1.0:
            raise ConfigError(f"quantile {quantile}: expected a number between 0 and 1")
        method, level, q = "quantile", quantile, quantile
    value = float(np.quantile(scores, q))  # as scikit-learn sets its detectors' offsets
    return Threshold(score=score, k=k, seed=seed, value=value, method=method, level=level, n=int(scores.size),
                     source=source)


def threshold_key(score: str, k: int) -> str:
    """One saved threshold per score (and per k, which shifts the sampled scores)."""
    return score if score == "recon" else f"{score}@k{k}"


def _read_thresholds(path: Path) -> dict[str, Threshold]:
    if not path.is_file():
        return {}
    try:
        return {key: Threshold(**entry) for key, entry in json.loads(path.read_text()).items()}
    except (ValueError, TypeError, AttributeError) as error:
        raise DataError(f"{str(path)!r} is not a valid threshold file ({error}); delete it to refit") from None


def load_threshold(folder: Path, score: str, k: int) -> Threshold | None:
    """The threshold saved with a run for this score and k, or None."""
    return _read_thresholds(Path(folder) / THRESHOLDS_FILE).get(threshold_key(score, k))


def preferred_threshold(folder: Path, preference: tuple[str, ...] = ("recon", "elbo", "nll")) -> Threshold | None:
    """The run's saved threshold for the first score in ``preference`` that has one (any k), or None;
    a damaged file is None, with a warning."""
    try:
        saved = _read_thresholds(Path(folder) / THRESHOLDS_FILE)
    except DataError as error:
        log.warning("%s; ignored", error)
        return None
    for score in preference:
        for threshold in saved.values():
            if threshold.score == score:
                return threshold
    return None


def save_threshold(folder: Path, threshold: Threshold) -> Path:
    """Save (or replace) the run's threshold for this score; a damaged file is replaced, with a warning."""
    path = Path(folder) / THRESHOLDS_FILE
    try:
        saved = _read_thresholds(path)
    except DataError as error:
        log.warning("%s: replacing it", error)
        saved = {}
    saved[threshold_key(threshold.score, threshold.k)] = threshold
    return atomic_write_json(path, {key: asdict(value) for key, value in saved.items()})


def detection_scores(scores: np.ndarray, is_anomaly: np.ndarray) -> dict[str, float]:
    """AUROC and AUPRC (average precision, anomalies as the positive class) of a ranking by score."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    is_anomaly = np.asarray(is_anomaly, dtype=bool)
    if is_anomaly.all() or not is_anomaly.any():
        raise DataError("AUROC needs both normal and anomalous samples among the labelled inputs")
    return {"auroc": float(roc_auc_score(is_anomaly, scores)),
            "auprc": float(average_precision_score(is_anomaly, scores)),
            "anomaly_rate": float(is_anomaly.mean())}


def save_extremes(spec, x: np.ndarray | Tensor, scores: np.ndarray, path: str | Path, n: int = 8,
                  score_name: str = "score") -> Path:
    """A PNG of the ``n`` most anomalous inputs (top row) and the ``n`` least (bottom row), each
    titled with its index and score. Image data only."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vaekit.applications.visualize import to_unit

    refused = spec.data_kind.unsupported(spec, "extremes")
    if refused:
        raise DataError(f"{str(path)!r}: {refused}")
    order = np.argsort(-np.asarray(scores), kind="stable")
    n = min(n, len(order) // 2) or 1
    rows = {"most anomalous": order[:n], "least anomalous": order[::-1][:n]}
    figure, axes = plt.subplots(2, n, figsize=(1.3 * n + 0.6, 4.2), dpi=110, squeeze=False)
    for r, (title, picked) in enumerate(rows.items()):
        images = to_unit(spec, torch.as_tensor(np.asarray(x)[picked]))  # (n, C, H, W)
        for i, index in enumerate(picked):
            axis = axes[r, i]
            image = images[i].permute(1, 2, 0).numpy()
            axis.imshow(image[:, :, 0] if image.shape[-1] == 1 else image[:, :, :3], cmap="gray", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(f"#{index}\n{scores[index]:.4g}", fontsize=7)
        axes[r, 0].set_ylabel(title, fontsize=8)
    figure.suptitle(f"{score_name}: higher = more anomalous", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


# A table column constant in training has no likelihood term (:mod:`vaekit.networks.table`): the
# model gives its value back. For anomaly scores a departure from it is evidence, scored as the
# table likelihood's narrowest Gaussian would score it (standard deviation e^-7 of the column's units,
# :data:`vaekit.distributions.tabular.LOG_SCALE_MIN`): finite, and larger than any modelled column's.
CONSTANT_LOG_SCALE = -7.0


def constant_departures(columns: list, values: Tensor) -> Tensor:
    """(N,) nats per row: each value of a column constant in training that is not the training value
    adds 0.5 (d / sigma)^2, d its distance from that value (model space, in the column's units) and
    sigma = e^CONSTANT_LOG_SCALE; a missing value adds nothing. 0 for rows that keep every constant."""
    at = [j for j, column in enumerate(columns) if getattr(column, "constant", False)]
    if not at:
        return values.new_zeros(len(values))
    d = values[:, at].double().nan_to_num(0.0)
    return (0.5 * (d * math.exp(-CONSTANT_LOG_SCALE)).square()).sum(1)


def require_finite(scores: np.ndarray, values: Tensor, columns: list, what: str = "score_samples") -> np.ndarray:
    """``scores`` when all finite; else one DataError line naming the first bad row and the column
    farthest from its training values there (the likeliest cause), so no score is silently NaN."""
    bad = np.flatnonzero(~np.isfinite(scores))
    if not bad.size:
        return scores
    row = int(bad[0])
    far = values[row].double().abs().nan_to_num(0.0)
    j = int(far.argmax())
    name = columns[j].name if j < len(columns) else str(j)
    raise DataError(f"{what}: {bad.size} row{'s' if bad.size > 1 else ''} got a non-finite score "
                    f"(first: row {row}, {scores[row]}); its column {name!r} is {float(far[j]):.3g} training "
                    "standard deviations from the mean: values that far out overflow the model")


def check_contamination(contamination) -> None:
    """One ConfigError line unless ``contamination`` is "auto" or a fraction in (0, 0.5]."""
    if isinstance(contamination, str) and contamination == "auto":
        return
    number = not isinstance(contamination, bool) and isinstance(contamination, int | float | np.floating)
    if not number or not 0.0 < contamination <= 0.5:
        raise ConfigError(f"contamination={contamination!r}: expected 'auto' or a fraction in (0, 0.5]")


def conformal_offset(held_out: np.ndarray, false_alarms: float) -> float:
    """The score (log p, higher = more normal) below which a new normal row falls with probability at
    most ``false_alarms``, from held-out normal rows' scores: their floor((m + 1) a)-th lowest
    (split conformal; exact for rows exchangeable with the held-out ones). Needs m >= 1/a - 1 rows."""
    m = len(held_out)
    rank = math.floor((m + 1) * false_alarms)  # the rank from the bottom, 1-based
    if rank < 1:
        raise DataError(f"contamination='auto': {m} held-out rows cannot bound a false-alarm rate of "
                        f"{false_alarms:g}; give at least {math.ceil(1 / false_alarms) - 1}")
    return float(np.sort(held_out)[rank - 1])
