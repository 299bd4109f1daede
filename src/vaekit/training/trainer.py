"""A generic training loop: batches -> loss_fn(model, batch) -> backward -> step -> callbacks.

It knows nothing about VAEs. ``loss_fn`` returns an object with a scalar ``loss`` and a
``metrics()`` dict of 0-d tensors; everything else (schedules, checkpoints, progress, early stopping)
is a callback. The step keeps metrics on the device and never reads a value back to the host, except
every ``log_every`` steps for progress and once per epoch. With ``capture`` the epoch runs on the device
instead, on CUDA as replays of a captured step (training/capture.py); this eager loop is the reference.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from vaekit.errors import DivergenceError
from vaekit.training import capture as capturing
from vaekit.training import cpu
from vaekit.training.accumulators import EpochSums
from vaekit.training.distributed import DistContext, StepModule
from vaekit.training.players import OPTIMIZERS, Player, make_optimizer, model_player  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)
# Gradient dtypes the one-kernel non-finite check takes (others: a total norm).
_CHECKED = (torch.float32, torch.float16, torch.bfloat16, torch.float64)

Batch = dict[str, Tensor]


class StepOutput(Protocol):
    loss: Tensor

    def metrics(self) -> dict[str, Tensor]: ...


class Batches(Protocol):
    batch_size: int
    per_rank: int  # samples per rank and epoch
    on_device: bool  # whether the whole split is held as tensors on the device (the trainer may gather batches)

    def __len__(self) -> int: ...

    def iterate(self, epoch: int = 0, start: int = 0) -> Iterator[Batch]: ...


class TrainingInterrupted(Exception):
    """Raised after a SIGINT/SIGTERM once the state has been checkpointed."""


class Callback:
    """Hooks called by :class:`Trainer`; override the ones you need.

    A callback with state that must survive ``--resume`` implements ``state_dict`` /
    ``load_state_dict`` with JSON-serialisable values, and ``tensors`` / ``load_tensors`` for tensors.
    """

    def on_fit_begin(self, trainer: Trainer) -> None: ...
    def on_epoch_begin(self, trainer: Trainer) -> None: ...
    def on_batch_begin(self, trainer: Trainer) -> None: ...
    def on_log(self, trainer: Trainer, metrics: dict[str, float]) -> None: ...
    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None: ...
    def on_checkpoint(self, trainer: Trainer) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def tensors(self) -> dict[str, Tensor]:
        """Tensors saved with the checkpoint (under ``cb.<class name>.``)."""
        return {}

    def load_tensors(self, tensors: dict[str, Tensor]) -> None: ...

    def recover_from_divergence(self, trainer: Trainer) -> bool:
        """Called when too many steps in a row were not finite: True if this callback repaired the run."""
        return False


@dataclass
class TrainState:
    """Where the loop is; saved in every checkpoint so a resumed run continues exactly."""

    epoch: int = 0  # the epoch in progress (or next to start)
    step: int = 0  # batches done within that epoch
    global_step: int = 0
    bad_steps: int = 0  # non-finite steps skipped so far
    lr_scale: float = 1.0  # lowered 10x each time a divergence is recovered from
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    """The training loop, generic: it knows players, callbacks and batches, never VAEs.

    Each step: ``out = loss_fn(model, batch)`` (under autocast if asked); one backward of the sum of
    the players' losses (the model's ``out.loss``, a discriminator's ``out.aux_loss``); a guard that
    skips the update where a loss or gradient is not finite (on the device: a fused optimizer reads
    the flag in its kernel); each player's optimizer steps; the metrics are added to the epoch's
    device sums (training/accumulators.py). Everything else is a :class:`Callback`: schedules,
    checkpoints (training/checkpoint.py), early stopping, progress, files. On CUDA the epoch runs as
    replays of a captured step (training/capture.py); under torchrun one DDP wrapper holds every
    player (training/distributed.py: StepModule). ``players`` are the networks trained beside
    ``model``: an objective declares them (``Objective.players``).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[nn.Module, Batch], StepOutput],
        optimizer: torch.optim.Optimizer,
        *,
        players: Iterable[Player] = (),
        callbacks: Iterable[Callback] = (),
        grad_clip: float | None = None,
        autocast_dtype: torch.dtype | None = None,
        compile: bool = False,
        log_every: int = 50,
        max_bad_steps: int = 10,
        dist: DistContext | None = None,
        cpu_tuning: bool = True,
        max_seconds: float | None = None,
        capture: str = "auto",
        graph_key: Callable[[], Hashable] | None = None,
    ) -> None:
        # The model first, then any network the objective trains beside it (a discriminator).
        self.players = [model_player(model, optimizer), *players]
        # "auto": the device-side epoch with a captured step on CUDA, this eager loop elsewhere; "on":
        # the device-side epoch on any device; "off": eager. Where it cannot apply, eager (one log line).
        self.capture = capture
        # The host state the step's operations depend on (an objective's phase): a captured step
        # is captured again when it changes.
        self.graph_key: Callable[[], Hashable] = graph_key or (lambda: None)
        self._device_epoch: capturing.DeviceEpoch | None = None
        self._planned_for: Batches | None = None
        # A wall-clock budget for each fit(): checked every ``log_every`` steps; the epoch in progress
        # is then closed as usual (validated, logged, checkpointed) and training ends.
        self.max_seconds = max_seconds
        self._deadline: float | None = None
        self.callbacks = list(callbacks)
        self.grad_clip, self.log_every, self.max_bad_steps = grad_clip, log_every, max_bad_steps
        self.dist = dist or DistContext()
        self.device = next(model.parameters()).device
        self.autocast_dtype = autocast_dtype
        self.compile = compile
        self._loss = torch.compile(loss_fn) if compile else loss_fn
        # Under DDP one wrapper holds every player's network and runs the loss as its forward, so the
        # objective sees raw modules only (models/ never unwraps) and all gradients sync in one reducer.
        self._replicated = self.dist.wrap(StepModule({p.name: p.module for p in self.players}, self._loss),
                                          self.device) if self.dist.enabled else None
        self.state = TrainState()
        self.stop_training = False
        self._signal: int | None = None
        self.batch_hooks = [c for c in self.callbacks if type(c).on_batch_begin is not Callback.on_batch_begin]
        self.epoch_sums = EpochSums(self.device)
        self.epoch_sums.reset()
        self.cpu_tuning = cpu_tuning and self.device.type == "cpu"  # see training/cpu.py

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    @property
    def model(self) -> nn.Module:
        return self.players[0].module

    @property
    def params(self) -> list[nn.Parameter]:
        return self.players[0].params

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.players[0].optimizer

    @optimizer.setter
    def optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        self.players[0].optimizer = optimizer

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [player.optimizer for player in self.players]

    # ------------------------------------------------------------------ one step
    def _forward(self, batch: Batch) -> StepOutput:
        with torch.autocast(self.device.type, dtype=self.autocast_dtype) if self.autocast_dtype is not None \
                else contextlib.nullcontext():
            return self._loss(self.model, batch) if self._replicated is None else self._replicated(batch)

    def step(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Forward, backward, guarded update. Returns (metric values (M,), finite flag 0-d)."""
        out = self._forward(batch)
        playing = [(player, loss) for player in self.players if (loss := player.loss_of(out)) is not None]
        # One backward: an objective keeps each loss away from the other players' parameters.
        total = playing[0][1]
        for _, loss in playing[1:]:
            total = total + loss
        total.backward()
        # The gradient check is made after DDP's all-reduce, so every rank makes the same decision,
        # and it also catches a finite loss with infinite gradients. A clip bounds each player's norm.
        finite = None
        for player, loss in playing:
            flag = self._finite_gradients(player.params) & torch.isfinite(loss)
            finite = flag if finite is None else finite & flag
        for optimizer in (player.optimizer for player, _ in playing):
            # Fused optimizers skip a step in-kernel when found_inf is set: the guard costs no sync.
            if optimizer.defaults.get("fused"):
                optimizer.found_inf = (~finite).to(torch.float32)
                optimizer.step()
            elif bool(finite):
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        metrics = out.metrics()
        if not self.epoch_sums.names:
            self.epoch_sums.names = list(metrics)
        return torch.stack([metrics[name].float() for name in self.epoch_sums.names]), finite

    def _finite_gradients(self, params: list[torch.nn.Parameter]) -> Tensor:
        """0-d bool: every gradient of ``params`` is finite, after clipping them to train.grad_clip
        if it is set. Without a clip no norm is needed: one foreach kernel (the check GradScaler
        makes, unscaling by 1) looks at every gradient, a quarter of a total norm's time on the CPU."""
        grads = [p.grad for p in params if p.grad is not None]
        if self.grad_clip is not None:
            return torch.isfinite(torch.nn.utils.clip_grad_norm_(params, self.grad_clip, foreach=True))
        if not grads or any(g.is_sparse or g.device != grads[0].device or g.dtype not in _CHECKED for g in grads):
            return torch.isfinite(torch.nn.utils.get_total_norm(grads, foreach=True))
        found = torch.zeros((), device=grads[0].device)
        torch._amp_foreach_non_finite_check_and_unscale_(grads, found, torch.ones((), device=grads[0].device))
        return found == 0

    def accumulate(self, values: Tensor, finite: Tensor, n: int) -> None:
        """Add a step's metrics (weighted by its ``n`` samples) to the epoch's device sums, in place."""
        self.epoch_sums.add(values, finite, n)

    # ------------------------------------------------------------------ the loop
    def fit(self, train: Batches, val: Batches | None, epochs: int) -> TrainState:
        """Train until ``epochs`` epochs are done (from wherever ``self.state`` says we are)."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        with contextlib.suppress(ValueError):  # only the main thread may install handlers
            for sig in previous:
                signal.signal(sig, self._on_signal)
        if self.cpu_tuning:
            cpu.tune()
        self._deadline = time.monotonic() + self.max_seconds if self.max_seconds else None
        self.stop_training = False
        if self._planned_for is not train:
            self._planned_for, self._device_epoch = train, capturing.plan(self, train)
        try:
            self._emit("on_fit_begin")
            while self.state.epoch < epochs and not self.stop_training:
                self._run_epoch(train, val)
            self._emit("on_fit_end")
        finally:
            with contextlib.suppress(ValueError):
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
        return self.state

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signal = signum

    def _stop_requested(self, step: int) -> str | None:
        """"signal" once a SIGINT/SIGTERM was received, "time" once ``max_seconds`` have passed
        (looked at every ``log_every`` steps). Under DDP the ranks agree every ``log_every`` steps
        (one small all-reduce), so all of them stop after the same step."""
        at_log = step % self.log_every == 0
        late = at_log and self._deadline is not None and time.monotonic() > self._deadline
        if not self.dist.enabled:
            return "signal" if self._signal is not None else "time" if late else None
        if not at_log:
            return None
        flags = self.dist.all_reduce(torch.tensor([float(self._signal is not None), float(late)],
                                                  device=self.device)).tolist()
        if flags[0] > 0:
            self._signal = self._signal or signal.SIGTERM
            return "signal"
        return "time" if flags[1] > 0 else None

    def _run_epoch(self, train: Batches, val: Batches | None) -> None:
        state = self.state
        self.model.train()
        if state.step == 0:  # a resumed mid-epoch run has restored its accumulators instead
            self.epoch_sums.reset()
        self._emit("on_epoch_begin")
        if self._device_epoch is not None and (reason := self._device_epoch.prepare()) is not None:
            log.warning("training eagerly: %s", reason)
            self._device_epoch = None
        self._sync()
        started = time.perf_counter()
        steps = self._eager_steps(train) if self._device_epoch is None else \
            self._device_epoch.iterate(state.epoch, state.step)
        for _ in steps:
            state.step += 1
            state.global_step += 1
            if state.global_step % self.log_every == 0:
                self._sync()
                self.epoch_sums.seconds += time.perf_counter() - started
                started = time.perf_counter()
                self._check_bad_steps()
                speed = float(self.epoch_sums.count) / max(self.epoch_sums.seconds, 1e-9)
                self._emit("on_log", {**self.epoch_sums.means(), "samples_per_s": speed})
            stop = self._stop_requested(state.global_step)
            if stop == "time":
                log.warning("train.max_minutes reached at epoch %d, step %d of %d: training ends here",
                            state.epoch + 1, state.step, len(train))
                self.stop_training = True
                break
            if stop == "signal":
                self.epoch_sums.seconds += time.perf_counter() - started
                self._emit("on_checkpoint")
                raise TrainingInterrupted(f"stopped by signal {self._signal} at epoch {state.epoch + 1}, "
                                          f"step {state.step}; checkpoint saved")
        self._sync()
        self.epoch_sums.seconds += time.perf_counter() - started
        self._check_bad_steps()
        row = self._finish_epoch(val)
        state.history.append(row)
        state.epoch += 1
        state.step = 0
        self._emit("on_epoch_end", row)
        self._emit("on_checkpoint")

    def _eager_steps(self, train: Batches) -> Iterator[None]:
        for batch in train.iterate(self.state.epoch, self.state.step):
            for callback in self.batch_hooks:
                callback.on_batch_begin(self)
            values, finite = self.step(batch)
            self.accumulate(values, finite, next(iter(batch.values())).shape[0])
            yield

    def _finish_epoch(self, val: Batches | None) -> dict[str, float]:
        acc = self.epoch_sums
        sums = acc.sums if acc.sums is not None else torch.zeros(len(acc.names))
        totals = self.dist.all_reduce(torch.cat([sums.to(self.device), acc.count.view(1), acc.epoch_bad.view(1)]))
        count, bad = float(totals[-2]), int(totals[-1])
        self.state.bad_steps += bad
        names = self.epoch_sums.names
        row: dict[str, float] = {"epoch": self.state.epoch + 1}
        row.update({name: float(v) / max(count, 1.0) for name, v in zip(names, totals[:-2].tolist(), strict=True)})
        row["skipped_steps"] = bad
        row["train_seconds"] = round(self.epoch_sums.seconds, 4)
        row["samples_per_s"] = round(count / self.epoch_sums.seconds, 1) if self.epoch_sums.seconds > 0 else math.nan
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        if val is not None:
            row.update({f"val_{k}": v for k, v in self.evaluate(val).items()})
        return row

    @torch.no_grad()
    def evaluate(self, batches: Batches) -> dict[str, float]:
        """Mean metrics of ``loss_fn`` over ``batches`` in eval mode (reduced over ranks)."""
        was_training = self.model.training
        self.model.eval()
        sums, count = None, torch.zeros((), device=self.device)
        for batch in batches.iterate(0):
            out = self._forward(batch)
            metrics = out.metrics()
            names = list(metrics)
            values = torch.stack([metrics[name].float() for name in names])
            n = next(iter(batch.values())).shape[0]
            sums = values * n if sums is None else sums.add_(values * n)
            count += n
        self.model.train(was_training)
        if sums is None:
            return {}
        totals = self.dist.all_reduce(torch.cat([sums, count.view(1)]))
        return {name: float(v) / float(totals[-1]) for name, v in zip(names, totals[:-1].tolist(), strict=True)}

    # ------------------------------------------------------------------ helpers
    def _check_bad_steps(self) -> None:
        bad_run = self.epoch_sums.bad_run
        if float(bad_run) >= self.max_bad_steps:
            for callback in self.callbacks:
                if callback.recover_from_divergence(self):
                    bad_run.zero_()
                    if self._device_epoch is not None:  # the optimizer's state tensors were replaced
                        self._device_epoch.invalidate()
                    return
            raise DivergenceError(
                f"training diverged: {int(bad_run)} steps in a row gave NaN/Inf and no checkpoint could be "
                "restored; lower train.lr or set train.grad_clip"
            )

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _emit(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)
