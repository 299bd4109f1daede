"""Trainer paths beyond the basic loop: divergence recovery, streaming batches, CPU tuning, bf16,
TensorBoard, and torch.compile (slow)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from vaekit.config import DataConfig, ModelConfig
from vaekit.data.loaders import StreamingBatches, TensorBatches, make_batches
from vaekit.data.sources import RawData
from vaekit.data.spec import DataSpec
from vaekit.models import build_model, build_objective
from vaekit.training import cpu
from vaekit.training.callbacks import TensorBoard
from vaekit.training.checkpoint import Checkpointer
from vaekit.training.trainer import Trainer, make_optimizer

CONFIG = ModelConfig(network="mlp", latent_dim=2, hidden=[16], likelihood="bernoulli")
SPEC = DataSpec(kind="table", shape=[6], scale="none", value_range=[0.0, 1.0])


def tiny(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(SPEC, CONFIG), build_objective(CONFIG)


def batches(n: int = 64, batch_size: int = 16) -> TensorBatches:
    x = torch.rand(n, 6, generator=torch.Generator().manual_seed(0))
    return TensorBatches({"x": x}, batch_size, seed=0)


def test_divergence_restores_the_checkpoint_and_lowers_the_learning_rate(tmp_path) -> None:
    model, objective = tiny()
    optimizer = make_optimizer(model.parameters(), "adam", 1e-2)
    diverge = {"on": False}

    def loss_fn(module: nn.Module, batch: dict[str, Tensor]):
        if diverge["on"]:
            batch = {"x": batch["x"] * math.nan}
        return objective(module, batch)

    checkpoints = Checkpointer(tmp_path)
    trainer = Trainer(model, loss_fn, optimizer, callbacks=[checkpoints], log_every=1, max_bad_steps=2)
    trainer.fit(batches(), None, 1)  # a good epoch, checkpointed
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():  # drift away from the checkpoint, as a diverging run would
        for parameter in model.parameters():
            parameter.add_(1.0)
    diverge["on"] = True
    trainer.fit(batches(), None, 2)  # every step NaN: restore after 2, and again after 2 more
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert trainer.state.lr_scale == pytest.approx(0.01)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert trainer.state.history[-1]["skipped_steps"] == 4


def test_divergence_without_a_checkpoint_raises_with_advice() -> None:
    model, objective = tiny()
    trainer = Trainer(model, lambda m, b: objective(m, {"x": b["x"] * math.nan}),
                      make_optimizer(model.parameters(), "adam", 1e-3), log_every=1, max_bad_steps=3)
    with pytest.raises(FloatingPointError, match="grad_clip"):
        trainer.fit(batches(), None, 1)


def test_streaming_batches_equal_the_in_memory_ones() -> None:
    raw = RawData(x=np.random.default_rng(0).integers(0, 256, (50, 1, 4, 4)).astype(np.uint8),
                  y=np.arange(50) % 3, kind="image", max_level=255.0)
    spec = DataSpec.fit(raw, DataConfig(source="array"))
    fast = make_batches(raw, spec, DataConfig(in_memory="yes"), 8, "cpu", seed=3)
    slow = make_batches(raw, spec, DataConfig(in_memory="no"), 8, "cpu", seed=3)
    assert isinstance(slow, StreamingBatches) and not isinstance(fast, StreamingBatches)
    for epoch in (0, 1):
        pairs = list(zip(fast.iterate(epoch, 2), slow.iterate(epoch, 2), strict=True))
        assert len(pairs) == len(fast) - 2
        for a, b in pairs:
            assert torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])


def test_cpu_tuning_flushes_subnormals_on_every_thread() -> None:
    assert cpu.tune() is None
    subnormal = torch.full((4_000_000,), 1e-39)  # large enough to be split across threads
    assert bool((subnormal * 1.0 == 0).all())


def test_bf16_autocast_trains_with_finite_loss() -> None:
    model, objective = tiny()
    trainer = Trainer(model, objective, make_optimizer(model.parameters(), "adam", 1e-3),
                      autocast_dtype=torch.bfloat16)
    trainer.fit(batches(), None, 2)
    assert all(math.isfinite(row["loss"]) and row["skipped_steps"] == 0 for row in trainer.state.history)


def test_tensorboard_writes_event_files(tmp_path) -> None:
    pytest.importorskip("tensorboard")
    model, objective = tiny()
    trainer = Trainer(model, objective, make_optimizer(model.parameters(), "adam", 1e-3),
                      callbacks=[TensorBoard(tmp_path / "tb")])
    trainer.fit(batches(), None, 1)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_compiled_step_matches_eager(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    losses = []
    for compile in (False, True):
        model, objective = tiny()
        trainer = Trainer(model, objective, make_optimizer(model.parameters(), "adam", 1e-3), compile=compile)
        torch.manual_seed(1)
        trainer.fit(TensorBatches(batches().tensors, 16, seed=0, drop_last=True), None, 2)
        losses.append(trainer.state.history[-1]["loss"])
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)  # fused kernels reorder float arithmetic


@pytest.mark.parametrize(("threads", "load", "cores", "warned"), [
    (2, 9.8, 2, True),   # the machine this project develops on, ten times oversubscribed
    (2, 2.5, 2, False),  # busy but not over 1.5 a core
    (1, 9.8, 2, False),  # one thread waits on no other
    (16, 20.0, 16, False),
])
def test_a_busy_machine_is_said_once_with_the_remedy(threads: int, load: float, cores: int, warned: bool) -> None:
    """Issue 18: seq-vae trained at 26-40 samples/s without a word; two threads on two oversubscribed
    cores ran ten times slower than one."""
    from vaekit.training.cpu import busy_machine_warning

    line = busy_machine_warning(threads, load, cores)
    assert (line is not None) == warned
    if warned:
        assert f"load average {load:.1f} on {cores} cores" in line and "train.threads=1" in line


def test_a_streamed_run_with_a_validation_split_trains_and_in_memory_reads_yaml_words(tmp_path) -> None:
    """`--set data.in_memory=no` (YAML reads `no` as false) streams the batches; the held-out split,
    streamed too, is not handed to the callbacks that need it in memory (they once got a (N, 0)
    placeholder and the first epoch ended in a shape error)."""
    import vaekit

    config = vaekit.resolve_config(overrides=["data.in_memory=no", "data.max_samples=200", "train.epochs=1",
                                              "model.hidden=[16]", "model.latent_dim=2", "train.progress=false",
                                              "eval.k=2", "eval.max_samples=20"])
    assert config.data.in_memory == "no"
    assert vaekit.resolve_config(overrides=["data.in_memory=yes"]).data.in_memory == "yes"
    run = vaekit.train(config, tmp_path / "run")
    assert len(run.history) == 1 and math.isfinite(run.history[0]["loss"])
