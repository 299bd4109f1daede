"""The device-side epoch: every step of an epoch runs on the device with no per-step host work; on
CUDA the step is captured once as a CUDA graph and replayed.

What a step does stays :meth:`Trainer.step` (the eager reference): this module only feeds it. The
epoch's sample order (a function of (seed, epoch), as on the eager path, so both train on the same
batches and a resumed run draws the same order) is copied to the device once per epoch; each step
gathers its batch from it with a step counter that lives on the device, runs the step, adds its
metrics to the trainer's device sums and advances the counter. Nothing in that body depends on a
host value, so on CUDA it is captured with :class:`torch.cuda.CUDAGraph` and each step is one
``replay()``: forward, loss, backward, the non-finite guard (a fused optimizer's ``found_inf``),
the update(s), and the accumulation.

Shapes are static, so the last partial batch of an epoch is dropped rather than padded: padding
with zero-weight rows would change what ``reduction="mean"``, batch norm and the minibatch
estimators (beta-TC's log q(z)) compute, while dropping costs fewer than one batch of an epoch
whose order changes every epoch. The learning rate enters the graph as a device tensor per
parameter group (Adam, AdamW), refreshed from the float the schedules set; an optimizer that takes
only a float learning rate (fused SGD) is captured again when it changes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

if TYPE_CHECKING:
    from vaekit.training.trainer import Batches, Trainer

log = logging.getLogger(__name__)

CAPTURE_MODES = ("auto", "on", "off")
WARMUP_STEPS = 3  # eager steps on a side stream before capture (cuBLAS handles, optimizer state)
HOST_READS = {"_local_scalar_dense", "nonzero", "is_nonzero", "equal", "masked_select", "unique", "_unique2"}


def unsupported(mode: str, trainer: Trainer, batches: Batches) -> str | None:
    """Why the device-side epoch cannot run for this trainer and data (None: it can).

    ``mode`` is train.capture: "off" never, "on" wherever it applies (CUDA graphs on CUDA, the
    device-side epoch elsewhere), "auto" on CUDA only.
    """
    reason = _setting_excludes(mode, trainer.device, trainer.dist.enabled)
    if reason is not None:
        return reason
    if not batches.on_device:
        return "the data stream from host memory (data.in_memory=no or a split too large for the device)"
    if batches.per_rank < batches.batch_size:
        return f"the training split ({batches.per_rank} samples) is smaller than one batch ({batches.batch_size})"
    if trainer.compile:
        return "train.compile=true: the compiled step runs eagerly"
    for optimizer in trainer.optimizers():
        if not optimizer.defaults.get("fused"):
            return (f"{type(optimizer).__name__} is not fused: its guard against non-finite steps reads a flag on "
                    "the host")
    return None


def whole_batches(mode: str, device: torch.device, distributed: bool) -> bool:
    """Whether the device-side epoch will be tried for this setting, so that the data should come in
    whole batches only (its static shapes): the caller drops the last partial batch."""
    return _setting_excludes(mode, device, distributed) is None


def _setting_excludes(mode: str, device: torch.device, distributed: bool) -> str | None:
    """Why train.capture, the device and DDP alone rule the device-side epoch out (None: they do not)."""
    if mode not in CAPTURE_MODES:
        raise ValueError(f"capture={mode!r}: expected one of {', '.join(CAPTURE_MODES)}")
    if mode == "off":
        return "train.capture=off"
    if mode == "auto" and device.type != "cuda":
        return f"train.capture=auto captures on CUDA only (this run trains on {device.type})"
    if device.type not in ("cuda", "cpu"):
        return f"the device-side epoch runs on CUDA and the CPU, not {device.type}"
    if distributed:
        return "distributed training (DDP) all-reduces gradients through hooks that are not captured"
    return None


def plan(trainer: Trainer, batches: Batches) -> DeviceEpoch | None:
    """The device-side epoch for ``trainer.capture``, or None (eager), said in one log line where
    the mode asked for it and it cannot run."""
    reason = unsupported(trainer.capture, trainer, batches)
    if reason is None:
        return DeviceEpoch(trainer, batches)
    if trainer.capture == "on" or (trainer.capture == "auto" and trainer.device.type == "cuda"):
        log.info("training eagerly: %s", reason)
    return None


class HostReads(TorchDispatchMode):
    """Records the operators that read a device value on the host or copy between host and device
    memory: the operations a CUDA graph cannot hold."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device, self.found = device, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name in HOST_READS:
            self.found.append(name)
        elif self.device.type != "cpu" and name in ("_to_copy", "copy_"):
            source, target = (args[0], kwargs.get("device")) if name == "_to_copy" else (args[1], args[0].device)
            target = torch.device(target) if target is not None else source.device
            if (source.device.type == "cpu") != (target.type == "cpu"):  # either way, a copy the host waits on
                self.found.append(f"{name} between host and device")
        return func(*args, **kwargs)


class DeviceEpoch:
    """Runs a trainer's epochs on the device (see the module's docstring)."""

    def __init__(self, trainer: Trainer, batches: Batches) -> None:
        self.trainer, self.batches = trainer, batches
        device, size = trainer.device, batches.batch_size
        self.steps = batches.per_rank // size  # the last partial batch is dropped
        self.order = torch.arange(self.steps * size, device=device)  # (S * B,), valid before the first epoch
        self.cursor = torch.zeros((), dtype=torch.long, device=device)  # the step within the epoch
        self.positions = torch.arange(size, device=device)  # (B,)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.use_graph = device.type == "cuda"
        # [param group, its learning rate on the device, the value last written] (Adam, AdamW)
        self.lr_tensors: list[list[Any]] = []
        self.baked_lrs: list[tuple[dict, float]] = []  # (param group, float learning rate in the graph)
        self.baked_key: object = None  # the trainer's graph_key() when the step was captured

    def __len__(self) -> int:
        return self.steps

    # ------------------------------------------------------------------ the step
    def _body(self) -> None:
        """One step, host-independent: gather the batch at the cursor, step, accumulate, advance."""
        step = self.cursor % self.steps  # always in range: an index past the end would be a device assert
        index = self.order.index_select(0, step * len(self.positions) + self.positions)  # (B,)
        batch = {key: value.index_select(0, index) for key, value in self.batches.tensors.items()}
        values, finite = self.trainer.step(batch)
        self.trainer.accumulate(values, finite, len(self.positions))
        self.cursor.add_(1)

    def iterate(self, epoch: int, start: int) -> Iterator[None]:
        """Run the steps of ``epoch`` from ``start``, yielding after each (the trainer's bookkeeping)."""
        self.order.copy_(self.batches.order(epoch)[: len(self.order)])
        self.cursor.fill_(start)
        for _ in range(start, self.steps):
            for callback in self.trainer.batch_hooks:
                callback.on_batch_begin(self.trainer)
            if self.use_graph:
                self._replay()
            else:
                self._body()
            yield

    # ------------------------------------------------------------------ CUDA graphs
    def prepare(self) -> str | None:
        """Capture the step if it is not captured (CUDA only); the reason if it cannot be."""
        if not self.use_graph or self.graph is not None:
            return None
        saved = self._snapshot()
        try:
            self._warm_up()
            self._restore(saved)
            self._capture()
            log.info("training step captured as a CUDA graph: %d steps per epoch, each one replay", self.steps)
        except Exception as error:  # noqa: BLE001  (any failure: the eager step is the fallback)
            self.graph = None
            _fresh_generator_state(self.trainer.device)
            self._restore(saved)
            return f"capture failed ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        finally:
            for optimizer in self.trainer.optimizers():
                optimizer.zero_grad(set_to_none=True)
        return None

    def invalidate(self) -> None:
        """Tensors the graph holds were replaced (a checkpoint's optimizer state): capture again."""
        self.graph = None

    def _replay(self) -> None:
        if self.graph is not None and any(group["lr"] != lr for group, lr in self.baked_lrs):
            self.graph = None  # a float learning rate baked into the graph moved
        if self.graph is not None and self.trainer.graph_key() != self.baked_key:
            self.graph = None  # the step's operations changed (an objective's term switched on)
        if self.graph is None and (reason := self.prepare()) is not None:
            raise RuntimeError(f"the training step could not be captured again: {reason}")
        for entry in self.lr_tensors:
            group, tensor, written = entry
            if group["lr"] != written:  # a schedule moved it: one small kernel, no capture
                tensor.fill_(group["lr"])
                entry[2] = group["lr"]
        self.graph.replay()

    def _warm_up(self) -> None:
        """A few eager steps on a side stream, the first one watched for host reads. They start at
        the epoch's first batch: from the cursor they might run past the last one (it is put back)."""
        device = self.trainer.device
        self.cursor.zero_()
        watch = HostReads(device)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            with watch:
                self._body()
            if watch.found:
                raise RuntimeError(f"the step reads device values on the host ({', '.join(sorted(set(watch.found)))})")
            for _ in range(WARMUP_STEPS - 1):
                self._body()
        torch.cuda.current_stream(device).wait_stream(side)

    def _capture(self) -> None:
        self.graph = torch.cuda.CUDAGraph()
        self.baked_key = self.trainer.graph_key()
        # thread_local: a CUDA call another thread makes meanwhile (a progress bar, a data loader, the
        # garbage collector freeing a tensor) cannot invalidate this capture, as under "global"
        with self._tensor_lrs(), torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            self._body()

    @contextlib.contextmanager
    def _tensor_lrs(self) -> Iterator[None]:
        """While capturing: each Adam(W) group's learning rate as a device tensor (others are baked
        in as floats), and every group marked capturable (fused kernels capture either way)."""
        saved = [(group, group["lr"], group.get("capturable", False))
                 for optimizer in self.trainer.optimizers() for group in optimizer.param_groups]
        self.lr_tensors, self.baked_lrs = [], []
        for optimizer in self.trainer.optimizers():
            for group in optimizer.param_groups:
                if isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
                    tensor = torch.full((), float(group["lr"]), device=self.trainer.device)
                    self.lr_tensors.append([group, tensor, group["lr"]])
                    group["lr"] = tensor
                else:
                    self.baked_lrs.append((group, group["lr"]))
                group["capturable"] = True
        try:
            yield
        finally:
            for group, lr, capturable in saved:
                group["lr"], group["capturable"] = lr, capturable

    # ------------------------------------------------------------------ state kept across warm-up
    def _mutable(self) -> list[Tensor]:
        """Every tensor a step writes: weights, buffers, optimizer state, accumulators, cursor."""
        trainer = self.trainer
        tensors = [t for player in trainer.players for t in (*player.module.parameters(), *player.module.buffers())]
        for optimizer in trainer.optimizers():
            tensors += [v for state in optimizer.state.values() for v in state.values() if isinstance(v, Tensor)]
        accumulators, _ = trainer.epoch_sums.state()
        return [*tensors, *accumulators.values(), self.cursor]

    def _snapshot(self) -> dict[str, Any]:
        return {"tensors": {id(t): t.detach().clone() for t in self._mutable()},
                "rng": torch.cuda.get_rng_state(self.trainer.device)}

    @torch.no_grad()
    def _restore(self, saved: dict[str, Any]) -> None:
        """Undo the warm-up: written tensors take their values back in place; state the warm-up
        created (Adam's moments and step, the metric sums) is zeroed, which is its fresh value."""
        for tensor in self._mutable():
            before = saved["tensors"].get(id(tensor))
            tensor.copy_(before) if before is not None else tensor.zero_()
        torch.cuda.set_rng_state(saved["rng"], self.trainer.device)


def _fresh_generator_state(device: torch.device) -> None:
    """After a failed capture: the default CUDA generator still holds the unfinished capture's state,
    and every later random draw outside a graph fails ("Offset increment outside graph capture
    encountered unexpectedly", seen on an H200: the eager fallback, and every later run in the
    process, died of it). Give it a fresh state object with the same seed and offset."""
    with contextlib.suppress(Exception):  # best effort: the eager step says it if this did not help
        index = device.index if device.index is not None else torch.cuda.current_device()
        generator = torch.cuda.default_generators[index]
        fresh = torch.Generator(device=torch.device("cuda", index))
        fresh.set_state(generator.get_state())
        generator.graphsafe_set_state(fresh)
