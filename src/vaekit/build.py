"""From a config and its prepared data to the parts of a training: :func:`build` (pure: nothing is
written) and the callbacks a config asks for, :func:`training_callbacks`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vaekit import io
from vaekit.config import RunConfig
from vaekit.data.loaders import make_batches
from vaekit.data.sources import IN_MEMORY
from vaekit.errors import ConfigError
from vaekit.evaluation.features import classifier_folder, default_feature_network, load_classifier, train_classifier
from vaekit.evaluation.latent import LatentMonitor
from vaekit.evaluation.report import FiniteValidation
from vaekit.models import VAE, build_model, build_objective, check_model_fits
from vaekit.models.objectives import Objective
from vaekit.training import capture as capturing
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
from vaekit.training.distributed import DistContext
from vaekit.training.players import Player
from vaekit.training.trainer import Batches, Callback, make_optimizer

log = logging.getLogger(__name__)


@dataclass
class Parts:
    """What a :class:`~vaekit.training.trainer.Trainer` is made of, and the table's column names that
    name the column behind a non-finite validation loss."""

    model: VAE
    objective: Objective
    optimizer: torch.optim.Optimizer
    players: list[Player]
    batches: Batches
    val: Batches | None
    columns: list[str] | None
    settings: dict[str, Any]  # the trainer's loop keywords


def build(config: RunConfig, data: Any, device: torch.device, context: DistContext) -> Parts:
    """The model (the same initialisation on every rank), its objective, optimizer and players, and
    the training and validation batches (this rank's shard) for prepared ``data``; writes nothing."""
    check_model_fits(data.spec, config.model, device, len(data.train))
    torch.manual_seed(config.train.seed)
    model = build_model(data.spec, config.model).to(device)  # same init on every rank
    perceptual = perceptual_network(config, data, device)
    objective = build_objective(config.model, data.spec, len(data.train), perceptual=perceptual).to(device)
    torch.manual_seed(config.train.seed + context.rank)  # different noise per rank
    shard = {"rank": context.rank, "world_size": context.world_size}
    static = capturing.whole_batches(config.train.capture, device, context.enabled) and \
        len(data.train) >= config.train.batch_size
    crop = {} if data.train_full is None else {"crop": tuple(config.data.crop)}  # windows of the full images
    drawn = data.train if data.train_full is None else data.train_full
    batches = make_batches(drawn, data.spec, config.data, config.train.batch_size, device,
                           shuffle=True, seed=config.train.seed, drop_last=config.model.norm == "batch" or static,
                           **shard, **crop)
    val = (make_batches(data.val, data.spec, config.data, config.eval.batch_size, device, shuffle=False,
                        name="validation split", **shard) if data.val is not None else None)
    columns = data.spec.data_kind.column_names(data.spec)
    optimizer = make_optimizer(model.parameters(), config.train.optimizer, config.train.lr,
                               config.train.weight_decay, config.train.momentum)
    train = config.train
    autocast = torch.bfloat16 if (train.precision == "bf16" or
                                  (train.precision == "auto" and device.type == "cuda")) else None
    settings = {"grad_clip": train.grad_clip, "autocast_dtype": autocast, "compile": train.compile,
                "capture": train.capture, "log_every": train.log_every, "max_bad_steps": train.max_bad_steps}
    return Parts(model, objective, optimizer, objective.players(device), batches, val, columns, settings)


def perceptual_network(config: RunConfig, data: Any, device: torch.device) -> Callable | None:
    """The feature maps of patch-gan's perceptual term (model.perceptual), frozen on ``device``: a vaekit
    feature classifier folder, or with ``auto`` the data set's own (FID's: trained once on its labels and
    cached; for samples passed in memory, trained on the training split and not kept); None when the
    term is off or, with ``auto``, the data has no labels (said once)."""
    choice, spec = config.model.perceptual, data.spec
    if config.model.objective != "patch-gan" or choice == "none":
        return None
    if spec.scale != "unit":
        raise ConfigError(f"model.perceptual={choice!r} compares images in [0, 1]; this run's images are scaled "
                          f"{spec.scale!r} (use data.scale=unit or model.perceptual=none)")
    if choice == "auto":
        if spec.n_classes < 2:
            log.info("no perceptual term: model.perceptual=auto trains a feature classifier on the data's labels, and "
                     "this data has none (pass a classifier folder, or model.perceptual=none to silence this)")
            return None
        unit = lambda raw: torch.as_tensor(spec.transform(raw))  # noqa: E731
        if config.data.source == IN_MEMORY:
            labels = torch.as_tensor(data.train.y)
            net = train_classifier(unit(data.train.x), labels, int(labels.max()) + 1, seed=config.train.seed)
        else:
            default_feature_network(config.data, unit)  # trained once per data set, as FID's
            net, _ = load_classifier(classifier_folder(config.data))
    else:
        net, _ = load_classifier(choice)
    if net.blocks[0].in_channels != spec.shape[0]:
        raise ConfigError(f"model.perceptual={choice!r} reads {net.blocks[0].in_channels}-channel images; this data "
                          f"has {spec.shape[0]}")
    net = net.to(device).eval().requires_grad_(False)
    return net.activations


def training_callbacks(config: RunConfig, out: Path | None, objective: Objective, steps: int,
                       val: Batches | None = None, feature_names: list[str] | None = None) -> list[Callback]:
    """The callbacks a config asks for: schedules, KL warm-up, early stopping, files, progress;
    ``feature_names`` (a table's columns) name the column behind a non-finite validation loss."""
    train = config.train
    callbacks: list[Callback] = [
        LRSchedule(train.lr, train.schedule, train.epochs, train.warmup_epochs, train.step_size, train.gamma)
    ]
    if train.kl_warmup != "none":
        fn = warmup_weight(train.kl_warmup, train.kl_warmup_epochs)
        callbacks.append(ScheduledValue(objective.kl_weight, fn, steps))
    callbacks += [ScheduledValue(target, fn, steps) for target, fn in objective.scheduled()]
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
