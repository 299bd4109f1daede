"""The device-side epoch (train.capture): on the CPU it must train exactly as the eager loop does, resume
exactly, hold no host read that would stop a CUDA graph, and say in one line when it does not apply.
Where a GPU is present the same tests also run there, through CUDA graphs (bench/gpu.sh pytest)."""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import sys
from operator import attrgetter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from vaekit.config import DataConfig, ModelConfig, resolve_config
from vaekit.data.loaders import TensorBatches, make_batches
from vaekit.data.sources import RawData
from vaekit.data.spec import DataSpec
from vaekit.models import build_model, build_objective
from vaekit.training.callbacks import LRSchedule, ScheduledValue, warmup_weight
from vaekit.training.capture import DeviceEpoch, HostReads
from vaekit.training.checkpoint import Checkpointer
from vaekit.training.players import Player
from vaekit.training.trainer import Callback, Trainer, TrainingInterrupted, make_optimizer

SPEC = DataSpec(kind="table", shape=[6], scale="none", value_range=[0.0, 1.0])
IMAGES = DataSpec(kind="image", shape=[1, 16, 16], scale="none", value_range=[0.0, 1.0])
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]  # cuda: the captured graph


def setup(objective: str = "elbo", network: str = "mlp", seed: int = 0, capture: str = "on",
          callbacks: tuple = (), device: str = "cpu", optimizer: str = "adam", **trainer_options):
    """A small model, its data (48 samples: 6 batches of 8, or 5 and a partial one of 7 with n=47)
    and a trainer."""
    spec = SPEC if network == "mlp" else IMAGES
    config = ModelConfig(network=network, latent_dim=2, hidden=[16], conv_channels=[4, 8], likelihood="bernoulli",
                         objective=objective, disc_hidden=[16])
    torch.manual_seed(seed)
    model, loss = build_model(spec, config).to(device), build_objective(config, spec=spec).to(device)
    x = torch.rand(48, *spec.shape, generator=torch.Generator().manual_seed(1)).to(device)
    batches = TensorBatches({"x": x}, 8, seed=2, drop_last=True)
    players = [Player("discriminator", module, torch.optim.Adam(module.parameters(), lr=1e-3, fused=True),
                      attrgetter("aux_loss"), key="aux") for module in loss.networks().values()]
    trainer = Trainer(model, loss, make_optimizer(model.parameters(), optimizer, 1e-2), capture=capture,
                      players=players, callbacks=[cb(loss) if callable(cb) else cb for cb in callbacks],
                      **trainer_options)
    return trainer, batches


def schedules(loss) -> list[Callback]:
    return [ScheduledValue(loss.kl_weight, warmup_weight("linear", 2), 6), LRSchedule(1e-2, "cosine", 3)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("objective", "optimizer"), [("elbo", "adam"), ("factor", "adam"), ("elbo", "sgd")])
def test_the_device_side_epoch_trains_exactly_as_the_eager_loop(objective: str, optimizer: str, device: str) -> None:
    """With a KL warm-up and a learning-rate schedule moving between steps and between epochs (on
    CUDA: Adam's learning rate a tensor in the graph, SGD's a float that makes it capture again)."""
    runs = {}
    for capture in ("off", "on"):
        torch.manual_seed(3)  # the same noise for both
        trainer, batches = setup(objective, capture=capture, device=device, optimizer=optimizer,
                                 callbacks=(lambda loss: schedules(loss)[0], lambda loss: schedules(loss)[1]))
        trainer.fit(batches, None, 3)
        assert (trainer._device_epoch is not None) == (capture == "on")
        runs[capture] = trainer
    eager, device = runs["off"], runs["on"]
    assert [row["loss"] for row in device.state.history] == [row["loss"] for row in eager.state.history]
    assert device.state.history[-1]["lr"] == eager.state.history[-1]["lr"] < 1e-2  # the schedule moved it
    for a, b in zip(eager.model.parameters(), device.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_captured_step_is_captured_again_when_the_objective_phase_changes(monkeypatch) -> None:
    """The patch-gan objective skips its discriminator until model.disc_start: a graph captured before
    would replay the step without it for ever. (CUDA's graph calls are stood in for on the CPU.)"""
    phase = {"playing": False}
    trainer, batches = setup(graph_key=lambda: phase["playing"])
    epoch = DeviceEpoch(trainer, batches)
    captured = []

    class Graph:
        def replay(self) -> None:
            captured[-1][1] += 1

    def capture_graph() -> Graph:
        captured.append([trainer.graph_key(), 0])
        return Graph()

    monkeypatch.setattr(torch.cuda, "CUDAGraph", capture_graph)
    monkeypatch.setattr(torch.cuda, "graph", lambda *args, **kwargs: contextlib.nullcontext())
    monkeypatch.setattr(epoch, "_warm_up", lambda: None)
    monkeypatch.setattr(epoch, "_snapshot", lambda: None)
    monkeypatch.setattr(epoch, "_restore", lambda saved: None)
    epoch.use_graph = True
    epoch._replay(), epoch._replay()
    phase["playing"] = True
    epoch._replay(), epoch._replay(), epoch._replay()
    assert captured == [[False, 2], [True, 3]]


def test_the_device_side_epoch_drops_the_last_partial_batch() -> None:
    trainer, _ = setup()
    x = torch.rand(47, 6, generator=torch.Generator().manual_seed(1))
    trainer.fit(TensorBatches({"x": x}, 8, seed=2), None, 1)
    assert len(trainer._device_epoch) == 5
    assert trainer.state.global_step == 5


class StopAt(Callback):
    """Sends the trainer a SIGTERM during step ``at + 1`` (as `kill` would in mid-epoch)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_batch_begin(self, trainer: Trainer) -> None:
        if trainer.state.global_step == self.at:
            trainer._signal = signal.SIGTERM


@pytest.mark.parametrize("device", DEVICES)
def test_resume_in_mid_epoch_is_exact(tmp_path: Path, device: str) -> None:
    straight, batches = setup(callbacks=(lambda loss: schedules(loss)[0],), device=device)
    straight.fit(batches, None, 3)

    first, batches = setup(callbacks=(lambda loss: schedules(loss)[0], StopAt(8), Checkpointer(tmp_path)),
                           device=device)
    with pytest.raises(TrainingInterrupted):
        first.fit(batches, None, 3)
    assert (first.state.epoch, first.state.step) == (1, 3)  # stopped in mid-epoch
    resumed, batches = setup(seed=5, callbacks=(lambda loss: schedules(loss)[0], Checkpointer(tmp_path)),
                             device=device)
    torch.manual_seed(99)  # the checkpoint's RNG state must win
    Checkpointer(tmp_path).restore(resumed)
    resumed.fit(batches, None, 3)
    assert [r["loss"] for r in resumed.state.history] == [r["loss"] for r in straight.state.history]
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("device", DEVICES)
def test_divergence_recovery_restores_the_checkpoint_under_capture(tmp_path: Path, device: str) -> None:
    """Restoring a checkpoint replaces the optimizer's state tensors: a captured step captures again."""
    trainer, batches = setup(device=device, callbacks=(Checkpointer(tmp_path),), log_every=1, max_bad_steps=2)
    objective, poison = trainer._loss, torch.ones((), device=device)
    trainer._loss = lambda model, batch: objective(model, {"x": batch["x"] * poison})  # NaN when poisoned
    trainer.fit(batches, None, 1)  # a good epoch, checkpointed
    saved = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    poison.fill_(math.nan)
    trainer.fit(batches, None, 2)  # 6 steps, all NaN: restored after steps 2, 4 and 6
    assert all(torch.equal(saved[k], v) for k, v in trainer.model.state_dict().items())
    assert trainer.state.lr_scale == pytest.approx(0.001)
    assert trainer.state.history[-1]["skipped_steps"] == 6
    assert trainer._device_epoch is not None


@pytest.mark.parametrize("network", ["mlp", "conv"])
def test_the_step_reads_nothing_back_to_the_host(network: str) -> None:
    """What would break a CUDA graph (.item(), bool(tensor), nonzero...) shows up on the CPU too."""
    trainer, batches = setup("elbo", network)
    device_epoch = DeviceEpoch(trainer, batches)
    watch = HostReads(trainer.device)
    with watch:
        device_epoch._body()
    assert watch.found == []


def test_a_host_read_in_the_step_is_found() -> None:
    trainer, batches = setup()
    loss = trainer._loss

    def reads_back(model: nn.Module, batch: dict[str, Tensor]):
        out = loss(model, batch)
        if bool(out.loss > 1e9):  # a data-dependent branch: the host waits for the device
            raise AssertionError
        return out

    trainer._loss = reads_back
    watch = HostReads(trainer.device)
    with watch:
        DeviceEpoch(trainer, batches)._body()
    assert "_local_scalar_dense" in watch.found


@pytest.mark.parametrize("network", ["mlp", "conv"])
def test_the_loss_compiles_into_one_graph(network: str) -> None:
    """The model's part of the step (forward, loss, metrics) traces with no graph break; the
    backward and the fused update are torch's own (checked for host reads above)."""
    trainer, batches = setup("elbo", network)
    torch._dynamo.reset()
    compiled = torch.compile(lambda model, batch: torch.stack(list(trainer._loss(model, batch).metrics().values())),
                             fullgraph=True, backend="eager")
    batch = next(iter(batches.iterate(0)))
    assert compiled(trainer.model, batch).shape == (4,)


def test_where_it_does_not_apply_it_trains_eagerly_and_says_why(caplog) -> None:
    raw = RawData(x=np.random.default_rng(0).random((40, 6)).astype(np.float32), kind="table")
    streaming = make_batches(raw, SPEC, DataConfig(in_memory="no"), 8, "cpu", seed=3)
    trainer, _ = setup()
    with caplog.at_level(logging.INFO, logger="vaekit"):
        trainer.fit(streaming, None, 1)
    assert trainer._device_epoch is None
    assert any("training eagerly: the data stream from host memory" in m for m in caplog.messages)

    trainer, batches = setup()
    trainer.optimizer = torch.optim.Adam(trainer.params, lr=1e-3)  # not fused: the guard reads a flag
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vaekit"):
        trainer.fit(batches, None, 1)
    assert [m for m in caplog.messages if "eagerly" in m] == [
        "training eagerly: Adam is not fused: its guard against non-finite steps reads a flag on the host"]

    trainer, batches = setup(capture="auto")  # auto on the CPU: the eager loop, nothing to say
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vaekit"):
        trainer.fit(batches, None, 1)
    assert trainer._device_epoch is None and not [m for m in caplog.messages if "eagerly" in m]


def test_capture_option_reads_on_and_off_as_words() -> None:
    assert resolve_config(overrides=["train.capture=on"]).train.capture == "on"
    assert resolve_config(overrides=["train.capture=off"]).train.capture == "off"
    assert resolve_config().train.capture == "auto"


def test_the_capture_check_script_runs_on_the_cpu(tmp_path: Path, monkeypatch) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import capture_check

    out = tmp_path / "check.json"
    monkeypatch.setattr(sys, "argv", ["capture_check.py", "--device", "cpu", "--data", "digits", "--quick",
                                      "--out", str(out)])
    assert capture_check.main() == 0
    import json

    report = json.loads(out.read_text())
    assert report["cases"]["vae-mlp"]["max_relative_difference"] == 0.0
    assert report["cases"]["vae-gan"]["captured"]["finite"]
