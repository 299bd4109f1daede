"""The generic trainer, its callbacks and the in-memory batches: behaviour a training run relies on."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from vaekit.config import ModelConfig
from vaekit.data.loaders import TensorBatches
from vaekit.data.spec import DataSpec
from vaekit.models import build_model, build_objective
from vaekit.training.callbacks import EarlyStopping, LRSchedule, ScheduledValue, warmup_weight
from vaekit.training.trainer import Callback, Trainer, make_optimizer

CONFIG = ModelConfig(network="mlp", latent_dim=2, hidden=[16], likelihood="bernoulli")


def tiny_vae(seed: int = 0):
    torch.manual_seed(seed)
    spec = DataSpec(kind="table", shape=[6], scale="none", value_range=[0.0, 1.0])
    return build_model(spec, CONFIG), build_objective(CONFIG)


def table(n: int, seed: int = 0) -> Tensor:
    return torch.rand(n, 6, generator=torch.Generator().manual_seed(seed))  # (N, 6) in [0, 1]


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


# --------------------------------------------------------------------------- non-finite steps
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
