"""Issue 17: NaN/Inf training steps are skipped, counted in history.csv and said at the end, and a
run that recovers from them trains on to the end, through the command line as a user runs it. A
folder whose run failed before it trained can be trained into again.

The faults are injected: the objective's loss is made NaN or infinite on chosen training steps
(a run that diverges on its own for a while and then recovers depends on the CPU's rounding)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from cli_support import TINY, read_history

import vaekit
import vaekit.api


class Faulty:
    """An objective whose training loss is replaced by ``value`` on the 1-based training ``steps``."""

    def __init__(self, inner, steps: set[int], value: float) -> None:
        self.inner, self.steps, self.value, self.calls = inner, steps, value, 0

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def to(self, device):
        self.inner = self.inner.to(device)
        return self

    def __call__(self, model, batch):
        out = self.inner(model, batch)
        if model.training:
            self.calls += 1
            if self.calls in self.steps:
                out.loss = out.loss * self.value
        return out


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_steps_are_skipped_counted_and_training_carries_on(run_main, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      value: float) -> None:
    # digits: the training split at batch 128 is 11 steps an epoch; steps 14, 15 and 17 are in epoch 2
    bad = {14, 15, 17}
    faulty = []

    def build(*args, **kwargs):
        faulty.append(Faulty(build_objective(*args, **kwargs), bad, value))
        return faulty[-1]

    build_objective = vaekit.build.build_objective
    monkeypatch.setattr(vaekit.build, "build_objective", build)
    out = tmp_path / "run"
    code, _, err = run_main("train", "--data", "digits", "--epochs", "3", *TINY, "--set", "train.batch_size=128",
                            "--out", str(out))
    assert code == 0, err
    assert faulty[0].calls == 33, "three epochs of 11 steps"
    rows = read_history(out / "history.csv")
    assert [int(row["skipped_steps"]) for row in rows] == [0, 3, 0]
    assert all(math.isfinite(float(row["loss"])) and math.isfinite(float(row["val_loss"])) for row in rows)
    assert float(rows[2]["loss"]) < float(rows[0]["loss"]), "training went on learning after the bad steps"
    warning = [line for line in err.splitlines() if "skipped" in line]
    assert len(warning) == 1 and "3 training steps" in warning[0] and "epoch 2" in warning[0], err
    run = vaekit.load(out)
    assert all(torch.isfinite(p).all() for p in run.model.parameters()), "a skipped step changed no weight"


def test_a_folder_whose_run_failed_early_can_be_trained_into(tmp_path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text("{}")  # written at the start, then the run died
    config = vaekit.resolve_config(overrides=["model.hidden=[8]", "model.latent_dim=2", "train.progress=false",
                                              "eval.enabled=false"], flags={"train.epochs": 1})
    run = vaekit.train(config, out=folder)
    assert (folder / "model.safetensors").is_file() and len(run.history) == 1
