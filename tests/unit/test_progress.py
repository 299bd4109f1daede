"""The progress bar (issue 18): a user training a long epoch sees steps done, samples/s and the time
left in the epoch and in the run within its first seconds, long before the epoch (or the first
``log_every`` steps) ends. Driven through the callback's hooks with a fake trainer and clock."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from vaekit.training import callbacks
from vaekit.training.callbacks import ProgressBar, duration_text
from vaekit.training.trainer import TrainState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stream(monkeypatch) -> io.StringIO:
    """The bar's output: a tqdm bar that writes to a string instead of stderr."""
    from tqdm import tqdm

    out = io.StringIO()
    monkeypatch.setattr(callbacks, "progress_bar", lambda total, desc, initial=0, unit="it": tqdm(
        total=total, initial=initial, desc=desc, file=out, mininterval=0, ascii=True))
    return out


def test_the_time_left_shows_within_the_first_steps_of_the_first_epoch(stream: io.StringIO) -> None:
    clock = Clock()
    bar = ProgressBar(epochs=3, steps_per_epoch=1000, batch_size=128, refresh=3.0, clock=clock)
    trainer = SimpleNamespace(state=TrainState(), is_main=True)
    bar.on_epoch_begin(trainer)
    for _ in range(3):  # 3 steps of 1 s each, no on_log (log_every is 50)
        bar.on_batch_begin(trainer)
        trainer.state.step += 1
        clock.now += 1.0
    bar.on_batch_begin(trainer)
    text = stream.getvalue()
    assert "epoch 1/3" in text
    assert "samples/s=128" in text  # 128 samples a second
    assert "epoch left=16m37s" in text  # 997 steps of 1 s
    assert "run left=49m57s" in text  # and two more epochs of 1000
    assert trainer.state.step < bar.steps


def test_the_bar_waits_for_the_refresh_interval_and_the_logged_metrics_join_it(stream: io.StringIO) -> None:
    clock = Clock()
    bar = ProgressBar(epochs=1, steps_per_epoch=10, batch_size=4, refresh=5.0, clock=clock)
    trainer = SimpleNamespace(state=TrainState(), is_main=True)
    bar.on_epoch_begin(trainer)
    trainer.state.step, clock.now = 1, clock.now + 1.0
    bar.on_batch_begin(trainer)
    assert "left" not in stream.getvalue()  # 1 s < 5 s: not yet
    bar.on_log(trainer, {"loss": 1.5, "samples_per_s": 4.0})
    assert "loss=1.500" in stream.getvalue() and "epoch left=9s" in stream.getvalue()


def test_a_non_main_rank_shows_nothing(stream: io.StringIO) -> None:
    bar = ProgressBar(epochs=1, steps_per_epoch=10, batch_size=4, clock=Clock())
    trainer = SimpleNamespace(state=TrainState(), is_main=False)
    bar.on_epoch_begin(trainer)
    bar.on_batch_begin(trainer)
    assert stream.getvalue() == ""


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0s"), (42, "42s"), (425, "7m05s"), (11_520, "3h12m")])
def test_durations_read_as_people_write_them(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text
