"""The end-of-training evaluation fits a time budget and says what it cut (issue 16, item 9).

Time is a fake clock that charges every decoded row, so the tests never depend on this machine's
speed: the budget holds when the plan judged the speed right and when it did not, and a cut is
reported in metrics (``k``, ``n_samples`` of ``n_available``) and in one log line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import vaekit
from vaekit.api import evaluation_budget
from vaekit.config import resolve_config
from vaekit.data.loaders import prepare_data, to_tensors
from vaekit.evaluation.report import MIN_ITEMS, EvalPlan, evaluate, plan_evaluation

TINY = ["data.source=digits", "model.hidden=[32]", "model.latent_dim=4", "train.epochs=1", "train.batch_size=64",
        "train.progress=false", "train.device=cpu", "eval.k=10"]


class DecoderClock:
    """A fake clock on which each row through ``model``'s decoder costs ``cost`` seconds, and
    ``later_cost`` once ``rows`` rows have gone through."""

    def __init__(self, model: torch.nn.Module, cost: float, later_cost: float | None = None, rows: int = 0) -> None:
        self.now, self.cost, self.later_cost, self.rows = 0.0, cost, later_cost, rows
        self.handle = model.decoder.register_forward_hook(self._charge)

    def _charge(self, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        self.now += inputs[0].shape[0] * (self.cost if self.rows > 0 or self.later_cost is None else self.later_cost)
        self.rows -= inputs[0].shape[0]

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocked(digits_vae) -> tuple[vaekit.Run, torch.Tensor, Callable[..., DecoderClock]]:
    """The session's digits VAE, its 359 test images, and a maker of fake clocks on its decoder."""
    data = prepare_data(digits_vae.config.data)
    clocks: list[DecoderClock] = []

    def clock(*args: float) -> DecoderClock:
        clocks.append(DecoderClock(digits_vae.model, *args))
        return clocks[-1]

    yield digits_vae, to_tensors(data.test, data.spec)["x"], clock
    for made in clocks:
        made.handle.remove()


def test_the_plan_cuts_items_first_then_importance_samples() -> None:
    assert plan_evaluation(10_000, 100, 1e-6, 30.0) == EvalPlan(10_000, 10_000, 100)  # it all fits
    assert plan_evaluation(10_000, 100, 1e-5, 5.05) == EvalPlan(5_000, 10_000, 100)  # fewer items
    assert plan_evaluation(10_000, 100, 1e-4, 3.0) == EvalPlan(MIN_ITEMS, 10_000, 29)  # then smaller k
    assert plan_evaluation(10_000, 100, 1e-2, 3.0) == EvalPlan(150, 10_000, 1)  # then items again
    assert plan_evaluation(10_000, 0, 1e-3, 2.0) == EvalPlan(2_000, 10_000, 0)  # no bound: items only


def test_evaluation_fits_a_tiny_budget_and_says_what_it_cut(clocked, caplog: pytest.LogCaptureFixture) -> None:
    """1 ms a decoded row: all 359 items at k=100 would take 36 s; in 4 s the plan keeps every
    item and lowers k, and the whole evaluation, pilot included, stays within the 4 s."""
    run, x, clock = clocked
    fake = clock(1e-3)
    with caplog.at_level(logging.INFO, logger="vaekit.evaluation.report"):
        metrics = evaluate(run.model, x, k=100, max_seconds=4.0, clock=fake)
    assert fake() <= 4.0
    assert metrics["n_samples"] == metrics["n_available"] == len(x) == 359
    assert 1 <= metrics["k"] < 100
    assert f"evaluation: k={metrics['k']} on 359 of 359 test items to fit its budget of 4 s" in caplog.messages


def test_a_misjudged_plan_still_stops_at_the_deadline(clocked, caplog: pytest.LogCaptureFixture) -> None:
    """The pilot (twice 8 items, 1 + 100 rows each) looks cheap, then rows cost 100 times more: the
    evaluation stops after the batch that passes the deadline and reports the items it did."""
    run, x, clock = clocked
    fake = clock(1e-5, 1e-3, 2 * 8 * 101)
    with caplog.at_level(logging.INFO, logger="vaekit.evaluation.report"):
        metrics = evaluate(run.model, x, k=100, batch_size=32, max_seconds=4.0, clock=fake)
    assert metrics["n_samples"] == 64 and metrics["k"] == 100  # 2 batches of 32 items: 3.2 s, then 6.5 s
    assert "evaluation: k=100 on 64 of 359 test items to fit its budget of 4 s" in caplog.messages


def test_without_a_budget_every_item_is_evaluated_at_k(clocked) -> None:
    run, x, clock = clocked
    metrics = evaluate(run.model, x, k=5, clock=clock(1.0))
    assert (metrics["n_samples"], metrics["n_available"], metrics["k"]) == (359, 359, 5)


def test_a_budget_cut_on_a_label_sorted_test_set_still_sees_every_class(clocked) -> None:
    """Items are visited in a seeded random order, so the part a budget leaves (and the part the
    mutual information is estimated on) is a fair sample, not the first classes of a sorted file."""
    run, x, clock = clocked
    labels = torch.as_tensor(prepare_data(run.config.data).test.y)
    sorted_x = x[torch.argsort(labels, stable=True)]  # (359, 1, 8, 8) zeros first, nines last
    label_of = {row.numpy().tobytes(): int(y) for row, y in zip(sorted_x, labels.sort().values, strict=True)}
    seen: list[torch.Tensor] = []  # encoder inputs: the model check (1 item), the pilot (twice 8), the batches
    handle = run.model.encoder.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    try:
        metrics = evaluate(run.model, sorted_x, k=10, batch_size=16, max_seconds=0.5, clock=clock(1e-3))
    finally:
        handle.remove()
    evaluated = torch.cat(seen[3:])
    assert len(evaluated) == metrics["n_samples"] < 359
    assert {label_of[row.numpy().tobytes()] for row in evaluated} == set(range(10))


def test_progress_shows_while_evaluating_only_when_asked(clocked, capsys: pytest.CaptureFixture[str]) -> None:
    run, x, _ = clocked
    evaluate(run.model, x[:40], k=2, batch_size=8, progress=True)
    assert "evaluation" in capsys.readouterr().err
    evaluate(run.model, x[:40], k=2, batch_size=8, progress=False)
    assert "evaluation" not in capsys.readouterr().err


def test_max_minutes_covers_training_and_evaluation() -> None:
    config = resolve_config(overrides=["train.max_minutes=1"])
    assert evaluation_budget(config) == pytest.approx(6.0)  # a tenth of the minute; training gets 54 s
    assert evaluation_budget(resolve_config()) == 30.0  # eval.max_seconds alone
    assert evaluation_budget(resolve_config(overrides=["eval.max_seconds=null"])) is None


def test_training_writes_what_the_evaluation_covered(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A budget no evaluation can meet leaves one item at k=1, and metrics.json says so."""
    config = resolve_config(overrides=[*TINY, "eval.max_seconds=1e-9"])
    with caplog.at_level(logging.INFO):
        vaekit.train(config, out=tmp_path / "run")
    test = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
    available = len(prepare_data(config.data).test)
    assert (test["n_samples"], test["n_available"], test["k"]) == (1, available, 1)
    assert f"evaluation: k=1 on 1 of {available} test items to fit its budget of 1e-09 s" in caplog.messages
    assert np.isfinite(test["nll"])
