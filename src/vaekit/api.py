"""The Python entry points: :func:`train` a config into a :class:`Run`, :func:`load` one back.

This is the glue between data, models and the generic trainer; the CLI, the estimators and the
explorer all call it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from vaekit import io
from vaekit.config import RunConfig
from vaekit.data.loaders import make_batches, prepare_data, to_tensors
from vaekit.data.sources import RawData
from vaekit.data.spec import DataSpec
from vaekit.distributions.posteriors import DiagonalGaussian
from vaekit.errors import ConfigError, DataError, DivergenceError, RunFolderError
from vaekit.evaluation.diagnostics import HELD_ITEMS, end_of_training_warnings
from vaekit.evaluation.latent import LatentMonitor
from vaekit.evaluation.report import FiniteValidation, evaluate
from vaekit.files import FolderLock, sweep_partial_writes
from vaekit.models import VAE, build_model, build_objective, check_model_fits
from vaekit.training import capture as capturing
from vaekit.training import cpu
from vaekit.training.callbacks import (
    EarlyStopping,
    HistoryCSV,
    LRSchedule,
    ProgressBar,
    ScheduledValue,
    TensorBoard,
    warmup_weight,
)
from vaekit.training.checkpoint import Checkpointer
from vaekit.training.distributed import (
    DistContext,
    context_from_env,
    init_process_group,
    select_device,
    shutdown_distributed,
)
from vaekit.training.trainer import Callback, Trainer, make_optimizer

log = logging.getLogger(__name__)

MAX_CODE = 100.0  # standard deviations of N(0, I): beyond this a code is no input the decoder has seen
EVAL_SHARE = 0.1  # of train.max_minutes kept for the end-of-training evaluation


@dataclass
class Run:
    """A trained model with its data spec and config; inputs and outputs are in the data's units."""

    model: VAE
    spec: DataSpec
    config: RunConfig
    path: Path | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to_model_space(self, x: np.ndarray | Tensor, name: str = "input") -> Tensor:
        return self.spec.transform(x, name=name, check_range=True).to(self.device)

    def condition_for(self, n: int, condition: Tensor | int | None) -> Tensor | int | None:
        """For generation: a conditional model given no condition cycles through its classes."""
        if condition is None and self.model.condition_dim:
            return torch.arange(n, device=self.device) % self.model.condition_dim
        return condition

    def inputs(self, source: str | None = None, split: str = "test") -> RawData:
        """Raw samples to feed this run: its own held-out split by default, or ``source`` (a dataset
        name or path; for a named dataset with an official split, ``split`` picks "train", "test"
        or "all"). A table's columns are matched to the model's by name; an unconditional run's
        inputs may lack the label column."""
        from vaekit.data.sources import load_source
        from vaekit.data.sources.labels import NoLabelColumn

        if split not in ("train", "test", "all"):
            raise ConfigError(f"split {split!r}: expected train, test or all")
        if source is None:
            data = prepare_data(self.config.data)
            chosen = {"train": data.train, "test": data.test or data.val or data.train}.get(split)
            if chosen is None:  # "all"
                parts = [p for p in (data.train, data.val, data.test) if p is not None]
                labelled = all(p.y is not None for p in parts)
                chosen = RawData(x=np.concatenate([p.x for p in parts]),
                                 y=np.concatenate([p.y for p in parts]) if labelled else None,
                                 kind=parts[0].kind, max_level=parts[0].max_level, class_names=parts[0].class_names,
                                 feature_names=parts[0].feature_names)
            return chosen
        config = self.config.data.model_copy(update={"source": source})
        try:
            splits = load_source(config)
        except NoLabelColumn:
            if self.model.condition_dim:  # a conditional run needs the labels
                raise
            splits = load_source(config.model_copy(update={"label_column": None}))  # an unconditional one does not
        if split == "train" or splits.test is None:
            chosen = splits.train
        elif split == "test":
            chosen = splits.test
        else:
            y = None
            if splits.train.y is not None and splits.test.y is not None:
                y = np.concatenate([splits.train.y, splits.test.y])
            chosen = RawData(x=np.concatenate([splits.train.x, splits.test.x]), y=y, kind=splits.train.kind,
                             max_level=splits.train.max_level, class_names=splits.train.class_names,
                             feature_names=splits.train.feature_names)
        return self.spec.align(chosen, what=source, label_column=self.config.data.label_column)  # matched by name

    @torch.no_grad()
    def encode(self, x: np.ndarray | Tensor, name: str = "input", condition: Tensor | None = None) -> Distribution:
        """q(z|x) for raw samples (N, *shape); ``.mean`` is the embedding. A conditional model
        takes each sample's label (N,) or condition vector (N, C)."""
        return self.model.encode(self.to_model_space(x, name=name), condition)

    @torch.no_grad()
    def encode_all(self, x: np.ndarray | Tensor, name: str = "input", condition: Tensor | None = None,
                   batch_size: int = 1024) -> tuple[Tensor, Tensor | None]:
        """Posterior means (N, L) and log-variances (N, L), or None for a deterministic code, of a
        whole data set, ``batch_size`` inputs per forward pass; both on the CPU."""
        means, logvars = [], []
        for start in range(0, len(x), batch_size):
            part = None if condition is None else condition[start : start + batch_size]
            qz = self.encode(x[start : start + batch_size], name=name, condition=part)
            means.append(qz.mean.cpu())
            if isinstance(qz, DiagonalGaussian):
                logvars.append(qz.logvar.cpu())
        return torch.cat(means), torch.cat(logvars) if logvars else None

    def _codes(self, z: Any, what: str) -> Tensor:
        """Codes z as a float tensor (N, latent_dim) on the model's device, or one DataError line."""
        try:
            codes = torch.as_tensor(np.asarray(z, dtype=np.float32) if not isinstance(z, Tensor) else z,
                                    dtype=torch.float32, device=self.device)
        except (TypeError, ValueError):
            raise DataError(f"Run.{what}: expected codes of shape (N, {self.model.latent_dim}), got "
                            f"{type(z).__name__}") from None
        if codes.ndim != 2 or codes.shape[1] != self.model.latent_dim:
            raise DataError(f"Run.{what}: expected codes of shape (N, {self.model.latent_dim}), got "
                            f"{tuple(codes.shape)}")
        if not bool(torch.isfinite(codes).all()):
            raise DataError(f"Run.{what}: the codes contain NaN or infinite values")
        if codes.numel() and float(codes.abs().max()) > MAX_CODE:
            raise DataError(f"Run.{what}: codes up to {float(codes.abs().max()):.3g}, far outside the prior the "
                            f"decoder was trained on (codes within about +-{MAX_CODE:g})")
        return codes

    @torch.no_grad()
    def decode(self, z: Tensor, mode: str = "mean", condition: Tensor | None = None) -> Tensor:
        """The likelihood's mean (or a sample, with ``mode="sample"``) for z (N, L), in data units; a
        conditional model cycles through its classes when given no condition."""
        if mode not in ("mean", "sample"):
            raise ConfigError(f"Run.decode: mode {mode!r}: expected mean or sample")
        z = self._codes(z, "decode")
        px = self.model.decode(z, self.condition_for(len(z), condition))
        return self.spec.inverse(px.mean if mode == "mean" else px.sample())

    @torch.no_grad()
    def generate(self, z: Tensor, condition: Tensor | int | None = None, generator: torch.Generator | None = None,
                 temperature: float = 1.0) -> Tensor:
        """Data (the likelihood mean) for codes z (N, L) drawn from some prior-like sampler; unlike
        :meth:`decode`, a hierarchical model draws its lower layers from their priors."""
        z = self._codes(z, "generate")
        px = self.model.generate(z, self.condition_for(len(z), condition), generator, temperature)
        return self.spec.inverse(px.mean)

    @torch.no_grad()
    def reconstruct(self, x: np.ndarray | Tensor, name: str = "input", condition: Tensor | None = None) -> Tensor:
        """Decode the posterior mean of each input: the usual reconstruction, in data units."""
        return self.spec.inverse(self.model.reconstruct(self.to_model_space(x, name=name), condition).mean)

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0, condition: Tensor | int | None = None) -> Tensor:
        """``n`` new samples (the likelihood mean at z ~ p(z)), in data units; a conditional model
        takes a label (one for all, or (n,)) or condition vectors (n, C), and cycles through its
        classes when given none."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ConfigError(f"Run.sample: n must be a whole number of samples, at least 1 (got {n!r})")
        if not (math.isfinite(temperature) and temperature >= 0):
            raise ConfigError(f"Run.sample: temperature must be a finite number >= 0 (got {temperature!r})")
        if generator is None and seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(seed)
        condition = self.condition_for(n, condition)
        px = self.model.sample(n, generator=generator, temperature=temperature, condition=condition)
        return self.spec.inverse(px.mean)


def load(path: str | Path, device: str | torch.device = "cpu") -> Run:
    """Rebuild a run folder's model from JSON + safetensors (no pickle, no code executed)."""
    if not isinstance(path, str | os.PathLike):
        raise ConfigError(f"vaekit.load: expected the path of a run folder, got {type(path).__name__}")
    try:
        torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"vaekit.load: device {device!r}: expected cpu, cuda, cuda:N or mps") from None
    folder = Path(path)
    if not folder.is_dir():
        raise RunFolderError(f"run folder {str(folder)!r} does not exist")
    config, spec = io.read_config(folder), io.read_spec(folder)
    model = io.load_model(folder, config, spec, device)
    history_path = folder / io.HISTORY
    history = _read_history(history_path) if history_path.is_file() else []
    return Run(model=model, spec=spec, config=config, path=folder, history=history)


def _read_history(path: Path) -> list[dict[str, float]]:
    """The rows of history.csv; a damaged file costs the history, not the run (one warning)."""
    import csv

    try:
        with path.open(newline="") as handle:
            return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]
    except (ValueError, TypeError, csv.Error, UnicodeDecodeError):
        log.warning("%s is damaged (not the CSV training writes); the run loads without its history", path)
        return []


def training_callbacks(config: RunConfig, out: Path | None, objective: Any, steps: int,
                       val: Any = None, feature_names: list[str] | None = None) -> list[Callback]:
    """The callbacks a config asks for: schedules, KL warm-up, early stopping, files, progress;
    ``feature_names`` (a table's columns) name the column behind a non-finite validation loss."""
    train = config.train
    callbacks: list[Callback] = [
        LRSchedule(train.lr, train.schedule, train.epochs, train.warmup_epochs, train.step_size, train.gamma)
    ]
    if train.kl_warmup != "none":
        fn = warmup_weight(train.kl_warmup, train.kl_warmup_epochs)
        callbacks.append(ScheduledValue(objective.kl_weight, fn, steps))
    if config.model.capacity_max:  # build_objective allows it with the ELBO only
        c_max, period = config.model.capacity_max, train.capacity_epochs
        callbacks.append(ScheduledValue(objective.capacity, lambda t: c_max * min(1.0, t / period), steps))
    if train.early_stopping:
        callbacks.append(EarlyStopping(train.early_stopping))
    if val is not None and val.on_device:  # held out in memory (streamed: no tensors); before the writers
        conditional = config.model.condition != "none"
        callbacks.append(FiniteValidation(val.tensors, conditional, feature_names))
        if config.model.posterior != "deterministic":
            callbacks.append(LatentMonitor(val.tensors, conditional))
    if out is not None:
        callbacks += [Checkpointer(out / "checkpoint"), HistoryCSV(out / io.HISTORY)]
        if train.tensorboard:
            callbacks.append(TensorBoard(out / "tensorboard"))
    if train.progress:
        callbacks.append(ProgressBar(train.epochs, steps, train.batch_size))
    return callbacks


def check_output_folder(folder: Path) -> None:
    """Refuse, before any work, an output that cannot become a run folder: an existing file, a path
    below a file, or a place that cannot be written (found only after an epoch of training before)."""
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"--out {str(folder)!r} is a file; expected a folder for the run")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / io.CONFIG).exists():
        raise RunFolderError(f"--out {str(folder)!r} is a folder holding other files; expected a new or empty folder "
                             "for the run (its files would be mixed with them)")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise RunFolderError(f"--out {str(folder)!r}: {str(existing)!r} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunFolderError(f"--out {str(folder)!r}: {str(existing)!r} cannot be written")


def train(config: RunConfig, out: str | Path | None = None, data: RawData | None = None) -> Run:
    """Train ``config``; with ``out``, write the run folder there (which must not exist yet).
    ``data`` trains on samples in memory instead of ``config.data.source`` (split and scaled as the
    config says; the scikit-learn estimators use it).

    Under torchrun every rank calls this; the model is wrapped in DDP, the data sharded per rank,
    and rank 0 writes the folder.
    """
    folder = Path(out) if out is not None else None
    if folder is not None:
        check_output_folder(folder)
    with _owned(folder):
        trained = folder is not None and ((folder / io.WEIGHTS).exists() or (folder / "checkpoint").exists())
        if trained:  # a folder whose run failed before its first checkpoint may be trained into again
            raise RunFolderError(f"run folder {str(folder)!r} already exists; pass --resume to continue it "
                                 "or choose another --out")
        created = folder is not None and not folder.exists()
        try:
            return _fit(config, folder, resume=False, raw=data)
        except (DivergenceError, OSError, MemoryError) as error:
            error.add_note(_after_failure(folder, created))
            raise


def _after_failure(folder: Path | None, created: bool) -> str:
    """What becomes of the run folder of a training that failed (diverged, a full disk, out of
    memory), said as a note on the error: removed when no epoch finished (it holds nothing to
    resume), kept with its last good checkpoint otherwise."""
    if folder is None or not context_from_env().is_main:
        return "nothing was written"
    if (folder / "checkpoint" / "last.safetensors").exists():
        return f"{str(folder)!r} keeps the last good checkpoint (continue it with --resume)"
    if created:
        shutil.rmtree(folder, ignore_errors=True)
    return "no epoch had finished, so no run folder was kept"


def _owned(folder: Path | None) -> contextlib.AbstractContextManager:
    """The run folder's lock (:class:`~vaekit.files.FolderLock`) on the rank that writes it; a second
    process training into the same folder is refused at once, naming the owner's pid."""
    if folder is None or not context_from_env().is_main:
        return contextlib.nullcontext()
    return FolderLock(folder)


def resume(out: str | Path, epochs: int | None = None) -> Run:
    """Continue an interrupted run folder from its last checkpoint (optionally to more epochs)."""
    folder = Path(out)
    config = io.read_config(folder)
    if not (folder / "checkpoint" / "last.safetensors").is_file():
        raise RunFolderError(f"run folder {str(folder)!r} has no checkpoint to resume from")
    with _owned(folder):
        if context_from_env().is_main:
            for leftover in sweep_partial_writes(folder):  # a write cut short by the kill being resumed from
                log.info("removed %s, a file whose writing was interrupted", leftover)
        if epochs is not None and epochs != config.train.epochs:
            if epochs < 1:
                raise ConfigError(f"--epochs {epochs}: expected a positive number of epochs")
            config.train.epochs = epochs
            if context_from_env().is_main:
                io.write_header(folder, config, io.read_spec(folder))  # a later --resume keeps the new target
        try:
            return _fit(config, folder, resume=True)
        except (DivergenceError, OSError, MemoryError) as error:
            error.add_note(_after_failure(folder, created=False))
            raise


def _fit(config: RunConfig, folder: Path | None, resume: bool, raw: RawData | None = None) -> Run:
    context = context_from_env()
    device = select_device(config.train.device, context)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    elif device.type == "cpu" and context.is_main and (busy := cpu.check_busy_machine(torch.get_num_threads())):
        log.warning(busy)
    init_process_group(context, device)
    try:
        return _fit_ranks(config, folder, resume, raw, context, device)
    finally:
        # On every way out, an error's too: a rank that raised leaves the group (its peers' collectives
        # then fail at once instead of waiting on it), and gloo's threads end before the interpreter does.
        shutdown_distributed()


def _fit_ranks(config: RunConfig, folder: Path | None, resume: bool, raw: RawData | None,
               context: DistContext, device: torch.device) -> Run:
    if not context.is_main:
        context.barrier()  # rank 0 loads (and, if needed, downloads) the data first
    data = prepare_data(config.data, raw=raw)
    if context.is_main:
        context.barrier()
    if resume:
        data.spec = io.read_spec(folder)  # the spec the run was trained with, not a re-fit
    check_model_fits(data.spec, config.model, device, len(data.train))
    torch.manual_seed(config.train.seed)
    model = build_model(data.spec, config.model).to(device)  # same init on every rank
    objective = build_objective(config.model, data.spec, len(data.train)).to(device)
    torch.manual_seed(config.train.seed + context.rank)  # different noise per rank
    shard = {"rank": context.rank, "world_size": context.world_size}
    static = capturing.whole_batches(config.train.capture, device, context.enabled) and \
        len(data.train) >= config.train.batch_size
    batches = make_batches(data.train, data.spec, config.data, config.train.batch_size, device, shuffle=True,
                           seed=config.train.seed, drop_last=config.model.norm == "batch" or static, **shard)
    val = (make_batches(data.val, data.spec, config.data, config.eval.batch_size, device, shuffle=False,
                        name="validation split", **shard) if data.val is not None else None)
    table_columns = data.spec.data_kind.column_names(data.spec)
    optimizer = make_optimizer(model.parameters(), config.train.optimizer, config.train.lr,
                               config.train.weight_decay, config.train.momentum)
    autocast = torch.bfloat16 if (config.train.precision == "bf16" or
                                  (config.train.precision == "auto" and device.type == "cuda")) else None
    evaluating = folder is not None and config.eval.enabled and data.test is not None
    eval_seconds = evaluation_budget(config) if evaluating else None  # kept out of train.max_minutes
    trainer = Trainer(
        model, objective, optimizer, players=objective.players(device),
        callbacks=training_callbacks(config, folder, objective, len(batches), val, table_columns),
        grad_clip=config.train.grad_clip, autocast_dtype=autocast, compile=config.train.compile,
        capture=config.train.capture, log_every=config.train.log_every, max_bad_steps=config.train.max_bad_steps,
        dist=context,
        max_seconds=config.train.max_minutes * 60 - (eval_seconds or 0.0) if config.train.max_minutes else None,
    )
    if folder is not None and context.is_main and not resume:
        folder.mkdir(parents=True, exist_ok=True)
        io.write_header(folder, config, data.spec)
    if resume:
        Checkpointer(folder / "checkpoint").restore(trainer)
        if context.enabled:
            torch.manual_seed(config.train.seed + context.rank + 1_000_003 * trainer.state.global_step)
        log.info("resuming at epoch %d, step %d", trainer.state.epoch + 1, trainer.state.step)
    trainer.fit(batches, val, config.train.epochs)
    # Every rank is out of its last collective before any leaves the group. Not on an error: a rank
    # that raised alone would meet its peers' all-reduce with a barrier.
    context.barrier()
    path = folder if context.is_main else None  # only rank 0 owns the run folder
    run = Run(model=model.eval(), spec=data.spec, config=config, path=path, history=trainer.state.history)
    if context.is_main:
        _finish(run, data, evaluating, table_columns)
    return run


def evaluation_budget(config: RunConfig) -> float | None:
    """Seconds the end-of-training evaluation may take: ``eval.max_seconds``, and within a
    ``train.max_minutes`` budget (which covers training and evaluation) at most ``EVAL_SHARE`` of it."""
    budget = config.eval.max_seconds
    if config.train.max_minutes:
        share = config.train.max_minutes * 60 * EVAL_SHARE
        budget = share if budget is None else min(budget, share)
    return budget


def _finish(run: Run, data: Any, evaluating: bool, table_columns: list[str] | None) -> None:
    """After training, on the main rank: save the weights, evaluate on the test split (when
    ``evaluating``, within :func:`evaluation_budget`) into metrics.json, and log the diagnostics'
    warnings."""
    config, metrics = run.config, None
    if run.path is not None:
        io.save_weights(run.path, run.model)
    if evaluating:
        test = to_tensors(_seeded_part(data.test, config.eval.max_samples, config.data.split_seed), data.spec,
                          "cpu", "test split")  # moved per batch
        metrics = evaluate(run.model, test["x"], k=config.eval.k, batch_size=config.eval.batch_size,
                           seed=config.train.seed, y=test.get("y"), t=test.get("t"),
                           property_names=data.spec.properties, feature_names=table_columns, what="test split",
                           max_seconds=evaluation_budget(config), progress=config.train.progress)
        io.write_metrics(run.path, {"test": metrics})
    held = next(part for part in (data.test, data.val, data.train) if part is not None)
    tensors = to_tensors(_seeded_part(held, HELD_ITEMS, config.data.split_seed), data.spec, run.device, "held-out data")
    for line in end_of_training_warnings(run.model, config, tensors, metrics, data.spec, run.history):
        log.warning(line)


def _seeded_part(raw: RawData, n: int | None, seed: int) -> RawData:
    """``n`` samples of ``raw`` chosen by ``seed``, in their order (all of them when ``n`` is None or more)."""
    if n is None or n >= len(raw):
        return raw
    return raw.subset(np.sort(np.random.default_rng(seed).permutation(len(raw))[:n]))

