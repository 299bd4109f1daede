"""Callbacks that extend the generic trainer: schedules, early stopping, progress, logs."""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import Tensor

from vaekit.files import atomic_write_text
from vaekit.training.checkpoint import unwrap
from vaekit.training.trainer import Callback, Trainer

log = logging.getLogger(__name__)


def warmup_weight(kind: str, period: float) -> Callable[[float], float]:
    """KL weight as a function of progress in epochs.

    "linear" ramps from 0 to 1 over ``period`` epochs (Bowman et al. 2016); "cyclical" repeats a
    ramp over the first half of every ``period``-epoch cycle, then holds 1 (Fu et al. 2019).
    """
    schedules: dict[str, Callable[[float], float]] = {
        "none": lambda t: 1.0,
        "linear": lambda t: min(1.0, t / period),
        "cyclical": lambda t: min(1.0, 2.0 * math.fmod(t, period) / period),
    }
    return schedules[kind]


class ScheduledValue(Callback):
    """Sets a 0-d tensor in place (or calls a setter) before every batch with ``fn(epochs done, fractional)``.

    A tensor is set in place, so a compiled step that reads it never recompiles.
    """

    def __init__(self, target: Tensor | Callable[[float], None], fn: Callable[[float], float],
                 steps_per_epoch: int) -> None:
        self.target, self.fn, self.steps_per_epoch = target, fn, max(steps_per_epoch, 1)

    def on_batch_begin(self, trainer: Trainer) -> None:
        value = self.fn(trainer.state.epoch + trainer.state.step / self.steps_per_epoch)
        if isinstance(self.target, Tensor):
            self.target.fill_(value)
        else:
            self.target(value)


class LRSchedule(Callback):
    """Per-epoch learning rate: linear warm-up, then constant, cosine, step decay or on plateau.

    The same factor scales every other player (a discriminator) that has a base rate of its own.
    """

    def __init__(self, base_lr: float, kind: str, epochs: int, warmup_epochs: int = 0,
                 step_size: int = 10, gamma: float = 0.5, patience: int = 3) -> None:
        self.base_lr, self.kind, self.epochs = base_lr, kind, epochs
        self.warmup, self.step_size, self.gamma, self.patience = warmup_epochs, step_size, gamma, patience
        self.plateau_scale, self.best, self.wait = 1.0, math.inf, 0

    def factor(self, epoch: int) -> float:
        if epoch < self.warmup:
            return (epoch + 1) / (self.warmup + 1)
        t = epoch - self.warmup
        factors: dict[str, Callable[[], float]] = {
            "none": lambda: 1.0,
            "cosine": lambda: 0.5 * (1 + math.cos(math.pi * t / max(self.epochs - self.warmup, 1))),
            "step": lambda: self.gamma ** (t // self.step_size),
            "plateau": lambda: self.plateau_scale,
        }
        return factors[self.kind]()

    def on_epoch_begin(self, trainer: Trainer) -> None:
        scale = self.factor(trainer.state.epoch) * trainer.state.lr_scale
        pairs = [(trainer.optimizer, self.base_lr)]
        pairs += [(player.optimizer, player.lr) for player in trainer.players[1:] if player.lr is not None]
        for optimizer, base in pairs:
            for group in optimizer.param_groups:
                group["lr"] = base * scale

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        if self.kind != "plateau":
            return
        value = row.get("val_loss", row.get("loss", math.inf))
        if math.isinf(self.best) or value < self.best - 1e-4 * abs(self.best):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait > self.patience:
                self.plateau_scale *= self.gamma
                self.wait = 0

    def state_dict(self) -> dict[str, Any]:
        return {"plateau_scale": self.plateau_scale, "best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plateau_scale = state.get("plateau_scale", 1.0)
        self.best, self.wait = state.get("best", math.inf), state.get("wait", 0)


class EarlyStopping(Callback):
    """Stops when ``monitor`` has not improved for ``patience`` epochs; restores the best weights."""

    def __init__(self, patience: int, monitor: str = "val_loss") -> None:
        self.patience, self.monitor = patience, monitor
        self.best, self.wait, self.best_epoch = math.inf, 0, 0
        self.stopped = False
        self.best_weights: dict[str, Tensor] = {}

    def on_fit_begin(self, trainer: Trainer) -> None:
        trainer.stop_training = trainer.stop_training or self.stopped  # a resumed run that had stopped

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        value = row.get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        if value < self.best:
            self.best, self.wait, self.best_epoch = value, 0, int(row["epoch"])
            self.best_weights = {k: v.detach().clone() for k, v in unwrap(trainer.model).state_dict().items()}
        else:
            self.wait += 1
            if self.wait >= self.patience:
                log.info("early stopping: %s has not improved for %d epochs (best %.4f at epoch %d)",
                         self.monitor, self.patience, self.best, self.best_epoch)
                trainer.stop_training = self.stopped = True

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.best_weights:
            unwrap(trainer.model).load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "best_epoch": self.best_epoch, "stopped": self.stopped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state.get("best", math.inf)
        self.wait, self.best_epoch = state.get("wait", 0), state.get("best_epoch", 0)
        self.stopped = state.get("stopped", False)

    def tensors(self) -> dict[str, Tensor]:
        return self.best_weights

    def load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.best_weights = tensors


class HistoryCSV(Callback):
    """Rewrites ``history.csv`` (one row per epoch) atomically after every epoch."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        if trainer.is_main:
            write_history(self.path, trainer.state.history)


def write_history(path: Path, rows: list[dict[str, float]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def progress_bar(total: int, desc: str, initial: int = 0, unit: str = "it") -> Any:
    """A tqdm bar on stderr that disappears when done: the one progress display of every long loop
    (training epochs, the end-of-training evaluation), so they look and switch off alike."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, leave=False, dynamic_ncols=True, desc=desc, unit=unit)


def duration_text(seconds: float) -> str:
    """A time left as people read it: 42s, 7m05s, 3h12m."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressBar(Callback):
    """A tqdm bar per epoch: steps done, samples/s and the time left in the epoch and in the run
    (validation not counted), shown from the first seconds of the first epoch; the loss and -ELBO
    parts join them every ``log_every`` steps. Between those it is refreshed at most every
    ``refresh`` seconds from the step count and the clock alone, so it never waits on the device."""

    def __init__(self, epochs: int, steps_per_epoch: int, batch_size: int, refresh: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.epochs, self.steps, self.batch_size = epochs, steps_per_epoch, batch_size
        self.refresh, self.clock = refresh, clock
        self.bar = None
        self.metrics: dict[str, str] = {}
        self.started = self.shown_at = 0.0
        self.first_step = 0

    def on_epoch_begin(self, trainer: Trainer) -> None:
        if trainer.is_main:
            self.bar = progress_bar(self.steps, f"epoch {trainer.state.epoch + 1}/{self.epochs}", trainer.state.step)
            self.started = self.shown_at = self.clock()
            self.first_step, self.metrics = trainer.state.step, {}

    def on_batch_begin(self, trainer: Trainer) -> None:
        if self.bar is not None and self.clock() - self.shown_at >= self.refresh:
            self.show(trainer)

    def on_log(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if self.bar is not None:
            self.metrics = {k: f"{v:.3f}" for k, v in metrics.items() if k != "samples_per_s"}
            self.show(trainer)

    def show(self, trainer: Trainer) -> None:
        """Refresh the bar: the step, the last logged metrics, and the pace of this epoch so far."""
        now = self.shown_at = self.clock()
        state = trainer.state
        self.bar.n = state.step
        shown = dict(self.metrics)
        done, elapsed = state.step - self.first_step, now - self.started
        if done > 0 and elapsed > 0:
            per_step = elapsed / done
            epoch_left = (self.steps - state.step) * per_step
            shown["samples/s"] = f"{self.batch_size / per_step:.0f}"
            shown["epoch left"] = duration_text(epoch_left)
            shown["run left"] = duration_text(epoch_left + (self.epochs - state.epoch - 1) * self.steps * per_step)
        self.bar.set_postfix(shown, refresh=True)

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if trainer.is_main:
            shown = ["loss", "recon", "kl", "val_loss", "samples_per_s"]
            parts = [f"{k} {row[k]:.4g}" for k in shown if k in row]
            log.info("epoch %d/%d: %s", row["epoch"], self.epochs, ", ".join(parts))


class TensorBoard(Callback):
    """Scalars per epoch to a TensorBoard log folder (needs the ``tensorboard`` package)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.writer = None

    def on_fit_begin(self, trainer: Trainer) -> None:
        if trainer.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.folder))

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, int(row["epoch"]))
            self.writer.flush()

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.writer is not None:
            self.writer.close()

