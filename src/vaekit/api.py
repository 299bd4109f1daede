"""The Python entry points: :func:`train` a config into a :class:`Run`, :func:`load` one back.

This is the glue between data, models and the generic trainer; the CLI, the estimators and the
explorer all call it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaekit import io
from vaekit.build import build, training_callbacks  # noqa: F401  (training_callbacks: re-exported)
from vaekit.config import RunConfig, resolve_config
from vaekit.data.loaders import prepare_data, to_tensors
from vaekit.data.sources import IN_MEMORY, RawData
from vaekit.data.sources.arrays import to_raw
from vaekit.errors import ConfigError, DivergenceError, RunFolderError
from vaekit.evaluation.diagnostics import HELD_ITEMS, end_of_training_warnings
from vaekit.files import FolderLock, sweep_partial_writes
from vaekit.models import settled
from vaekit.run import MAX_CODE, Run, load, seeded_part  # noqa: F401  (re-exported: vaekit.api.Run, load)
from vaekit.training import cpu
from vaekit.training.checkpoint import Checkpointer
from vaekit.training.distributed import (
    DistContext,
    context_from_env,
    init_process_group,
    select_device,
    shutdown_distributed,
)
from vaekit.training.trainer import Trainer

log = logging.getLogger(__name__)

EVAL_SHARE = 0.1  # of train.max_minutes kept for the end-of-training evaluation


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


def train(config: RunConfig | None = None, out: str | Path | None = None, data: RawData | np.ndarray | None = None,
          *, preset: str | None = None, model: Mapping[str, Any] | None = None,
          train: Mapping[str, Any] | None = None, eval: Mapping[str, Any] | None = None,  # noqa: A002 (a section)
          data_options: Mapping[str, Any] | None = None) -> Run:
    """Train ``config``; with ``out``, write the run folder there (which must not exist yet).
    ``data`` trains on samples in memory instead of ``config.data.source`` (split and scaled as the
    config says; the scikit-learn estimators use it): a ``RawData`` or a numpy array ((N, D) a
    table, (N, H, W) or (N, C, H, W) images).

    Without a config, the run is described in Python values, section by section, over a preset::

        vaekit.train(data=x, preset="beta-vae", model={"beta": 4, "hidden": [256]}, train={"epochs": 5})

    (``data_options`` is the ``data`` section, whose name ``data`` already has.)

    Under torchrun every rank calls this; the model is wrapped in DDP, the data sharded per rank,
    and rank 0 writes the folder.
    """
    values = {name: section for name, section in
              (("model", model), ("train", train), ("eval", eval), ("data", data_options)) if section is not None}
    if config is None:
        if data is not None:  # the samples given are the source
            values["data"] = {"source": IN_MEMORY, **values.get("data", {})}
        config = resolve_config(preset=preset, values=values)
    elif preset is not None or values:
        raise ConfigError("vaekit.train: pass a config or preset/section values, not both "
                          "(resolve_config(preset=..., values=...) combines them)")
    elif data is not None and config.data.source != IN_MEMORY:  # the folder must not name a source it never read
        config = config.model_copy(update={"data": config.data.model_copy(update={"source": IN_MEMORY})})
    if isinstance(data, np.ndarray):
        data = to_raw(data, None, "vaekit.train(data=...)")
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
    data = _load_data(config, folder if resume else None, raw, context)
    config = config.model_copy(update={"model": settled(data.spec, config.model)})  # what the data fixes
    parts = build(config, data, device, context)
    evaluating = folder is not None and config.eval.enabled and data.test is not None
    eval_seconds = evaluation_budget(config) if evaluating else None  # kept out of train.max_minutes
    trainer = Trainer(
        parts.model, parts.objective, parts.optimizer, players=parts.players,
        callbacks=training_callbacks(config, folder, parts.objective, len(parts.batches), parts.val, parts.columns),
        dist=context, graph_key=parts.objective.phase, **parts.settings,
        max_seconds=config.train.max_minutes * 60 - (eval_seconds or 0.0) if config.train.max_minutes else None,
    )
    _open_folder(folder, config, data.spec, trainer, resume, context)
    trainer.fit(parts.batches, parts.val, config.train.epochs)
    # Every rank is out of its last collective before any leaves the group. Not on an error: a rank
    # that raised alone would meet its peers' all-reduce with a barrier.
    context.barrier()
    path = folder if context.is_main else None  # only rank 0 owns the run folder
    run = Run(model=parts.model.eval(), spec=data.spec, config=config, path=path, history=trainer.state.history)
    if context.is_main:
        _finish(run, data, evaluating)
    return run


def _load_data(config: RunConfig, resumed: Path | None, raw: RawData | None, context: DistContext) -> Any:
    """The config's data (or ``raw``) split and scaled, rank 0 first (it may download); a resumed
    run keeps the spec it was trained with (from the folder ``resumed``), not a re-fit."""
    if not context.is_main:
        context.barrier()  # rank 0 loads (and, if needed, downloads) the data first
    data = prepare_data(config.data, raw=raw)
    if context.is_main:
        context.barrier()
    if resumed is not None:
        data.spec = io.read_spec(resumed)
    return data


def _open_folder(folder: Path | None, config: RunConfig, spec: Any, trainer: Trainer, resume: bool,
                 context: DistContext) -> None:
    """Write a new run folder's header (config.json, data_spec.json), or restore a resumed one's checkpoint."""
    if folder is not None and context.is_main and not resume:
        folder.mkdir(parents=True, exist_ok=True)
        io.write_header(folder, config, spec)
    if resume:
        Checkpointer(folder / "checkpoint").restore(trainer)
        if context.enabled:
            torch.manual_seed(config.train.seed + context.rank + 1_000_003 * trainer.state.global_step)
        log.info("resuming at epoch %d, step %d", trainer.state.epoch + 1, trainer.state.step)


def evaluation_budget(config: RunConfig) -> float | None:
    """Seconds the end-of-training evaluation may take: ``eval.max_seconds``, and within a
    ``train.max_minutes`` budget (which covers training and evaluation) at most ``EVAL_SHARE`` of it."""
    budget = config.eval.max_seconds
    if config.train.max_minutes:
        share = config.train.max_minutes * 60 * EVAL_SHARE
        budget = share if budget is None else min(budget, share)
    return budget


def _finish(run: Run, data: Any, evaluating: bool) -> None:
    """After training, on the main rank: save the run folder (:meth:`Run.save`), evaluate on the test
    split (when ``evaluating``, within :func:`evaluation_budget`) into metrics.json, and log the
    diagnostics' warnings."""
    config, metrics = run.config, None
    if run.path is not None:
        run.save()
    if evaluating:
        metrics = run.evaluate(data.test, max_seconds=evaluation_budget(config), progress=config.train.progress)
        io.write_metrics(run.path, {"test": metrics})
    held = next(part for part in (data.test, data.val, data.train) if part is not None)
    tensors = to_tensors(seeded_part(held, HELD_ITEMS, config.data.split_seed), data.spec, run.device, "held-out data")
    for line in end_of_training_warnings(run.model, config, tensors, metrics, data.spec, run.history):
        log.warning(line)
