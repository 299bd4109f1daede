"""The generic trainer, its callbacks and the batches (in memory and streamed): behaviour a training run
relies on, divergence recovery included; CPU tuning, bf16, TensorBoard and torch.compile (slow)."""

from __future__ import annotations

import math
from dataclasses import dataclass

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
from vaekit.training.callbacks import EarlyStopping, LRSchedule, ScheduledValue, TensorBoard, warmup_weight
from vaekit.training.checkpoint import Checkpointer
from vaekit.training.trainer import Callback, Trainer, make_optimizer

CONFIG = ModelConfig(network="mlp", latent_dim=2, hidden=[16], likelihood="bernoulli")


def tiny_vae(seed: int = 0):
    torch.manual_seed(seed)
    spec = DataSpec(kind="table", shape=[6], scale="none", value_range=[0.0, 1.0])
    return build_model(spec, CONFIG), build_objective(CONFIG)


def table(n: int, seed: int = 0) -> Tensor:
    return torch.rand(n, 6, generator=torch.Generator().manual_seed(seed))  # (N, 6) in [0, 1]


def table_batches(n: int = 64, batch_size: int = 16) -> TensorBatches:
    return TensorBatches({"x": table(n)}, batch_size, seed=0)


class ParameterSnapshots(Callback):
    """Copies of all parameters before every batch (and once at the end)."""

    def __init__(self) -> None:
        self.before: list[list[Tensor]] = []

    def _take(self, trainer: Trainer) -> None:
        self.before.append([p.detach().clone() for p in trainer.model.parameters()])

    on_batch_begin = _take
    on_fit_end = _take


def same(a: list[Tensor], b: list[Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


# --------------------------------------------------------------------------- non-finite steps and divergence
BAD_STEPS = {2, 5}  # 0-based calls of the loss that see a NaN input


def nan_on_some_steps(objective, record: list[Tensor]):
    calls = {"n": 0}

    def loss_fn(model: nn.Module, batch: dict[str, Tensor]):
        step = calls["n"]
        calls["n"] += 1
        if step in BAD_STEPS:
            batch = {"x": batch["x"] * math.nan}  # a diverged forward: loss and metrics are NaN
        out = objective(model, batch)
        if step not in BAD_STEPS:
            record.append(out.per_sample.detach().sum())
        return out

    return loss_fn


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "foreach-adam"])
def test_non_finite_step_is_skipped_and_counted(name: str) -> None:
    model, objective = tiny_vae()
    if name == "foreach-adam":  # the host-side guard, for optimizers without an in-kernel skip
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, foreach=True)
    else:
        optimizer = make_optimizer(model.parameters(), name, 1e-2)
        assert optimizer.defaults.get("fused")  # on CPU too: the NaN guard runs in the kernel
    snapshots = ParameterSnapshots()
    trainer = Trainer(model, nan_on_some_steps(objective, []), optimizer, callbacks=[snapshots])
    state = trainer.fit(TensorBatches({"x": table(40)}, 5, seed=0), None, epochs=1)  # 8 steps

    params = snapshots.before  # params[i]: before step i; params[8]: after the last step
    for step in range(8):
        if step in BAD_STEPS:
            assert same(params[step], params[step + 1]), f"step {step} (NaN) changed the parameters"
        else:
            assert not same(params[step], params[step + 1]), f"step {step} (finite) did not update"
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert state.history[0]["skipped_steps"] == len(BAD_STEPS)
    assert state.bad_steps == len(BAD_STEPS)
    if "adam" in name:
        adam_steps = {float(s["step"]) for s in optimizer.state.values()}
        assert adam_steps == {8.0 - len(BAD_STEPS)}  # bias correction counts only the real updates


def test_skipped_step_does_not_poison_the_epoch_metrics() -> None:
    model, objective = tiny_vae()
    good_sums: list[Tensor] = []
    optimizer = make_optimizer(model.parameters(), "adam", 1e-2)
    trainer = Trainer(model, nan_on_some_steps(objective, good_sums), optimizer)
    row = trainer.fit(TensorBatches({"x": table(40)}, 5, seed=0), None, epochs=1).history[0]
    assert row["skipped_steps"] == len(BAD_STEPS)
    assert math.isfinite(row["loss"]), row  # the NaN step was skipped, so its values must not count
    expected = float(torch.stack(good_sums).sum()) / (5 * len(good_sums))
    assert row["loss"] == pytest.approx(expected, rel=1e-5)


class InfiniteGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad * float("inf")


def test_finite_loss_with_infinite_gradients_is_skipped() -> None:
    model, objective = tiny_vae()

    def loss_fn(module: nn.Module, batch: dict[str, Tensor]):
        out = objective(module, batch)
        out.loss = InfiniteGradient.apply(out.loss)
        return out

    before = [p.detach().clone() for p in model.parameters()]
    trainer = Trainer(model, loss_fn, make_optimizer(model.parameters(), "adam", 1e-2), max_bad_steps=100)
    trainer.fit(TensorBatches({"x": table(32)}, 8), None, 1)
    assert trainer.state.history[-1]["skipped_steps"] == 4
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_divergence_restores_the_checkpoint_and_lowers_the_learning_rate(tmp_path) -> None:
    model, objective = tiny_vae()
    optimizer = make_optimizer(model.parameters(), "adam", 1e-2)
    diverge = {"on": False}

    def loss_fn(module: nn.Module, batch: dict[str, Tensor]):
        if diverge["on"]:
            batch = {"x": batch["x"] * math.nan}
        return objective(module, batch)

    checkpoints = Checkpointer(tmp_path)
    trainer = Trainer(model, loss_fn, optimizer, callbacks=[checkpoints], log_every=1, max_bad_steps=2)
    trainer.fit(table_batches(), None, 1)  # a good epoch, checkpointed
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():  # drift away from the checkpoint, as a diverging run would
        for parameter in model.parameters():
            parameter.add_(1.0)
    diverge["on"] = True
    trainer.fit(table_batches(), None, 2)  # every step NaN: restore after 2, and again after 2 more
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert trainer.state.lr_scale == pytest.approx(0.01)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert trainer.state.history[-1]["skipped_steps"] == 4


def test_divergence_without_a_checkpoint_raises_with_advice() -> None:
    model, objective = tiny_vae()
    trainer = Trainer(model, lambda m, b: objective(m, {"x": b["x"] * math.nan}),
                      make_optimizer(model.parameters(), "adam", 1e-3), log_every=1, max_bad_steps=3)
    with pytest.raises(FloatingPointError, match="grad_clip"):
        trainer.fit(table_batches(), None, 1)


# --------------------------------------------------------------------------- schedules
def test_linear_kl_warmup_moves_the_objective_weight_from_0_to_1() -> None:
    model, objective = tiny_vae()
    batches = TensorBatches({"x": table(40)}, 10, seed=0)  # 4 steps per epoch
    seen: list[tuple[float, Tensor, Tensor]] = []

    def loss_fn(model: nn.Module, batch: dict[str, Tensor]):
        out = objective(model, batch)
        seen.append((float(objective.kl_weight), out.loss.detach(), (out.recon + objective.kl_weight * out.kl).mean()))
        return out

    warmup = ScheduledValue(objective.kl_weight, warmup_weight("linear", 2), len(batches))
    Trainer(model, loss_fn, make_optimizer(model.parameters(), "adam", 1e-3), callbacks=[warmup]).fit(batches, None, 3)

    weights = [w for w, _, _ in seen]
    assert weights == pytest.approx([min(1.0, (epoch + step / 4) / 2) for epoch in range(3) for step in range(4)])
    assert weights[0] == 0.0 and weights[-1] == 1.0
    assert all(a <= b for a, b in zip(weights, weights[1:], strict=False))
    for _, loss, expected in seen:  # the weight is what the loss actually used
        torch.testing.assert_close(loss, expected.detach())


def test_cyclical_and_constant_warmup_weights() -> None:
    cyclical = warmup_weight("cyclical", 4)
    assert [cyclical(t) for t in (0, 1, 2, 3, 4, 5, 7.5)] == pytest.approx([0, 0.5, 1, 1, 0, 0.5, 1])
    assert warmup_weight("none", 4)(0.0) == 1.0


def test_lr_schedule_factors() -> None:
    cosine = LRSchedule(1.0, "cosine", epochs=10)
    assert [cosine.factor(e) for e in (0, 5, 10)] == pytest.approx([1.0, 0.5, 0.0], abs=1e-12)
    assert all(cosine.factor(e) > cosine.factor(e + 1) for e in range(9))
    step = LRSchedule(1.0, "step", epochs=10, step_size=3, gamma=0.5)
    assert [step.factor(e) for e in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    warm = LRSchedule(1.0, "cosine", epochs=12, warmup_epochs=2)
    assert [warm.factor(e) for e in (0, 1, 2, 7)] == pytest.approx([1 / 3, 2 / 3, 1.0, 0.5])
    assert LRSchedule(1.0, "none", epochs=5).factor(4) == 1.0


def test_plateau_schedule_keeps_the_lr_while_the_loss_improves() -> None:
    plateau = LRSchedule(1.0, "plateau", epochs=10, gamma=0.5, patience=1)
    for epoch, value in enumerate((4.0, 3.0, 2.0, 1.0, 0.5, 0.25)):
        plateau.on_epoch_end(None, {"val_loss": value})  # type: ignore[arg-type]
        assert plateau.best == value, f"epoch {epoch}: an improvement was not recorded"
    assert plateau.factor(6) == 1.0


def test_plateau_schedule_decays_after_patience() -> None:
    plateau = LRSchedule(1.0, "plateau", epochs=10, gamma=0.5, patience=1)
    for value in (1.0, 1.0, 1.0):  # best, then two epochs without improvement (> patience)
        plateau.on_epoch_end(None, {"val_loss": value})  # type: ignore[arg-type]
    assert plateau.factor(3) == 0.5
    plateau.on_epoch_end(None, {"val_loss": 0.1})  # type: ignore[arg-type]
    assert plateau.factor(4) == 0.5 and plateau.wait == 0


def test_lr_schedule_sets_the_optimizer_lr_each_epoch() -> None:
    model, objective = tiny_vae()
    schedule = LRSchedule(0.01, "step", epochs=4, step_size=2, gamma=0.1)
    trainer = Trainer(model, objective, make_optimizer(model.parameters(), "adam", 0.01), callbacks=[schedule])
    history = trainer.fit(TensorBatches({"x": table(20)}, 10), None, 4).history
    assert [row["lr"] for row in history] == pytest.approx([0.01, 0.01, 0.001, 0.001])


# --------------------------------------------------------------------------- early stopping
@dataclass
class ScalarLoss:
    loss: Tensor

    def metrics(self) -> dict[str, Tensor]:
        return {"loss": self.loss.detach()}


def test_early_stopping_stops_and_restores_the_best_weights() -> None:
    """Training moves w up by 0.25 per epoch; the validation loss (w - 1)^2 is best at epoch 4."""
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)

    def loss_fn(model: nn.Module, batch: dict[str, Tensor]) -> ScalarLoss:
        w, is_val = model.weight.squeeze(), batch["x"].mean()
        return ScalarLoss((1 - is_val) * -w + is_val * (w - 1) ** 2)

    train = TensorBatches({"x": torch.zeros(1, 1)}, 1)
    val = TensorBatches({"x": torch.ones(1, 1)}, 1, shuffle=False)
    stopper = EarlyStopping(patience=2)
    trainer = Trainer(model, loss_fn, torch.optim.SGD(model.parameters(), lr=0.25), callbacks=[stopper])
    history = trainer.fit(train, val, epochs=20).history

    assert [row["val_loss"] for row in history] == pytest.approx([0.5625, 0.25, 0.0625, 0.0, 0.0625, 0.25])
    assert len(history) == 6  # two epochs without improvement after the best
    assert stopper.best_epoch == 4
    assert model.weight.item() == 1.0  # the best epoch's weights, not the last (1.5)


def test_early_stopping_is_remembered_across_a_resume() -> None:
    stopper = EarlyStopping(patience=1)
    stopper.best = 1.0
    stopper.on_epoch_end(type("T", (), {"stop_training": False})(), {"epoch": 3, "val_loss": 2.0})
    restored = EarlyStopping(patience=1)
    restored.load_state_dict(stopper.state_dict())
    trainer = type("T", (), {"stop_training": False})()
    restored.on_fit_begin(trainer)
    assert trainer.stop_training


def test_a_time_budget_ends_training_after_the_step_that_passes_it(monkeypatch) -> None:
    """A clock that moves one second a batch; the budget (4.5 s) is looked at every 2 steps, so
    training ends after step 6 of the first epoch, which is still closed, validated and logged."""
    import types

    from vaekit.training import trainer as trainer_module

    clock = [0.0]
    monkeypatch.setattr(trainer_module, "time", types.SimpleNamespace(
        monotonic=lambda: clock[0], perf_counter=trainer_module.time.perf_counter))

    class Tick(Callback):
        def on_batch_begin(self, trainer: Trainer) -> None:
            clock[0] += 1.0

    model, objective = tiny_vae()
    train = TensorBatches({"x": table(24)}, 2, seed=1)  # 12 steps an epoch
    val = TensorBatches({"x": table(8, seed=1)}, 4, shuffle=False)
    trainer = Trainer(model, objective, make_optimizer(model.parameters(), "adam", 1e-3), callbacks=[Tick()],
                      log_every=2, max_seconds=4.5)
    state = trainer.fit(train, val, epochs=5)
    assert state.global_step == 6 and state.epoch == 1 and len(state.history) == 1
    assert "val_loss" in state.history[0] and math.isfinite(state.history[0]["loss"])
    assert trainer.stop_training
    clock[0] = 0.0  # every fit() gets the whole budget again
    assert trainer.fit(train, val, epochs=5).global_step == 12


# --------------------------------------------------------------------------- history rows
def test_history_rows_have_the_expected_columns_and_sample_weighted_means() -> None:
    model, objective = tiny_vae()
    sums: list[Tensor] = []

    def loss_fn(model: nn.Module, batch: dict[str, Tensor]):
        out = objective(model, batch)
        sums.append(out.per_sample.detach().sum())
        return out

    train = TensorBatches({"x": table(23)}, 10, seed=1)  # batches of 10, 10, 3
    val = TensorBatches({"x": table(8, seed=1)}, 4, shuffle=False)
    trainer = Trainer(model, loss_fn, make_optimizer(model.parameters(), "adam", 1e-3))
    history = trainer.fit(train, val, epochs=2).history
    assert [row["epoch"] for row in history] == [1, 2]
    expected_columns = {"epoch", "loss", "recon", "kl", "skipped_steps", "train_seconds", "samples_per_s", "lr",
                        "val_loss", "val_recon", "val_kl"}
    for row in history:
        assert expected_columns <= set(row)
        assert row["samples_per_s"] > 0 and row["train_seconds"] > 0
        assert row["skipped_steps"] == 0
        assert all(math.isfinite(value) for value in row.values())
    first_epoch = float(torch.stack(sums[:3]).sum()) / 23  # per sample, not per batch
    assert history[0]["loss"] == pytest.approx(first_epoch, rel=1e-5)


# --------------------------------------------------------------------------- batches
def index_batches(n: int = 23, batch_size: int = 5, **kwargs) -> TensorBatches:
    return TensorBatches({"x": torch.arange(n).float().unsqueeze(1), "y": torch.arange(n)}, batch_size, **kwargs)


def epoch_indices(batches: TensorBatches, epoch: int, start: int = 0) -> list[list[int]]:
    out = []
    for batch in batches.iterate(epoch, start):
        assert torch.equal(batch["x"][:, 0].long(), batch["y"])  # fields stay aligned
        out.append(batch["y"].tolist())
    return out


def test_every_index_once_per_epoch() -> None:
    batches = index_batches(23, 5, seed=0)
    assert len(batches) == 5
    for epoch in range(3):
        order = epoch_indices(batches, epoch)
        assert [len(b) for b in order] == [5, 5, 5, 5, 3]
        assert sorted(i for b in order for i in b) == list(range(23))
    assert len(index_batches(23, 5, drop_last=True)) == 4
    assert epoch_indices(index_batches(7, 3, shuffle=False), 0) == [[0, 1, 2], [3, 4, 5], [6]]


def test_order_is_a_function_of_seed_and_epoch() -> None:
    first, again = index_batches(seed=4), index_batches(seed=4)
    assert epoch_indices(first, 2) == epoch_indices(again, 2)
    assert epoch_indices(first, 2) != epoch_indices(first, 3)
    assert epoch_indices(first, 2) != epoch_indices(index_batches(seed=5), 2)


def test_ranks_take_disjoint_shards_with_equal_steps() -> None:
    ranks = [index_batches(23, 4, seed=1, rank=rank, world_size=2) for rank in (0, 1)]
    assert len(ranks[0]) == len(ranks[1])
    for epoch in range(2):
        shards = [{i for b in epoch_indices(r, epoch) for i in b} for r in ranks]
        assert not shards[0] & shards[1]
        assert len(shards[0]) == len(shards[1]) == 11
        assert shards[0] | shards[1] <= set(range(23))


def test_iterate_resumes_at_a_batch() -> None:
    batches = index_batches(seed=2)
    full = epoch_indices(batches, 1)
    assert epoch_indices(batches, 1, start=3) == full[3:]
    assert epoch_indices(batches, 1, start=len(batches)) == []


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


# --------------------------------------------------------------------------- CPU, precision, logging, compilation
def test_cpu_tuning_flushes_subnormals_on_every_thread() -> None:
    assert cpu.tune() is None
    subnormal = torch.full((4_000_000,), 1e-39)  # large enough to be split across threads
    assert bool((subnormal * 1.0 == 0).all())


def test_bf16_autocast_trains_with_finite_loss() -> None:
    model, objective = tiny_vae()
    trainer = Trainer(model, objective, make_optimizer(model.parameters(), "adam", 1e-3),
                      autocast_dtype=torch.bfloat16)
    trainer.fit(table_batches(), None, 2)
    assert all(math.isfinite(row["loss"]) and row["skipped_steps"] == 0 for row in trainer.state.history)


def test_tensorboard_writes_event_files(tmp_path) -> None:
    pytest.importorskip("tensorboard")
    model, objective = tiny_vae()
    trainer = Trainer(model, objective, make_optimizer(model.parameters(), "adam", 1e-3),
                      callbacks=[TensorBoard(tmp_path / "tb")])
    trainer.fit(table_batches(), None, 1)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_compiled_step_matches_eager(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    losses = []
    for compile in (False, True):
        model, objective = tiny_vae()
        trainer = Trainer(model, objective, make_optimizer(model.parameters(), "adam", 1e-3), compile=compile)
        torch.manual_seed(1)
        trainer.fit(TensorBatches(table_batches().tensors, 16, seed=0, drop_last=True), None, 2)
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
