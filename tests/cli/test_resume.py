"""Interrupted training continues with ``vaekit train --out RUN --resume`` (DESIGN §4, §5).

A real ``python -m vaekit train`` subprocess is stopped while it trains, by SIGKILL (no chance to
clean up: the last per-epoch checkpoint must do) or SIGTERM (checkpoint at the next step boundary,
exit code 130). The resumed run must have one history row per epoch with no gaps or duplicates,
keep the rows written before the stop, and, since a checkpoint carries the RNG state and the
epoch's position, end with exactly the weights of an uninterrupted run with the same seed.

Each epoch is made slow enough to stop mid-run (batches of 8, a host sync every step), and the
run is asked for far more epochs than it will get, so no timing assumption can make it finish.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from cli_support import TINY, cli_env, read_history, vaekit_command
from safetensors.torch import load_file

import vaekit

SLOW_EPOCHS = ["--batch-size", "8", "--set", "train.log_every=1", "--set", "train.threads=1", "--seed", "0"]
TIMING_COLUMNS = {"train_seconds", "samples_per_s"}  # wall-clock measurements, different on every run
START_TIMEOUT = 180  # seconds to wait for the first epochs of the subprocess


def train_args(out: Path, epochs: int) -> list[str]:
    return ["train", "--data", "digits", "--epochs", str(epochs), *SLOW_EPOCHS, *TINY, "--out", str(out)]


@dataclass
class Stopped:
    folder: Path
    rows: list[dict[str, str]]  # history.csv as it was when the process had exited
    returncode: int
    stderr: str


def train_until_stopped(out: Path, data_store: Path, sig: signal.Signals, min_rows: int,
                        settle: float = 0.0) -> Stopped:
    """Start training for 100 epochs; ``settle`` s after history.csv has ``min_rows`` rows, send ``sig``."""
    log = out.parent / f"{out.name}.stderr"
    with log.open("w") as stderr:
        process = subprocess.Popen(vaekit_command(*train_args(out, 100)), cwd=out.parent, env=cli_env(data_store),
                                   stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            history = out / "history.csv"
            while not (history.is_file() and len(read_history(history)) >= min_rows):
                if process.poll() is not None:
                    pytest.fail(f"training exited with {process.returncode} before {min_rows} epochs:\n"
                                f"{log.read_text()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"no {min_rows} epochs in {START_TIMEOUT} s:\n{log.read_text()}")
                time.sleep(0.01)
            time.sleep(settle)  # into the next epoch, most likely mid-way (any moment is valid)
            process.send_signal(sig)
            returncode = process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return Stopped(out, read_history(out / "history.csv"), returncode, log.read_text())


def without_timing(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]


def epochs_of(rows: list[dict[str, str]]) -> list[int]:
    return [int(float(row["epoch"])) for row in rows]


def assert_loads_and_samples(folder: Path) -> None:
    run = vaekit.load(folder)
    samples = run.sample(4, seed=0)
    assert samples.shape == (4, 1, 8, 8) and torch.isfinite(samples).all()


# ------------------------------------------------------------------------------------ SIGKILL


def test_resume_after_sigkill(tmp_path: Path, data_store: Path, invoke) -> None:
    stopped = train_until_stopped(tmp_path / "run", data_store, signal.SIGKILL, min_rows=2)
    assert stopped.returncode == -signal.SIGKILL
    before = stopped.rows
    assert len(before) >= 2 and epochs_of(before) == list(range(1, len(before) + 1))
    assert not (stopped.folder / "model.safetensors").exists(), "killed runs have no final weights"

    target = len(before) + 2
    invoke(["train", "--out", stopped.folder, "--resume", "--epochs", target])

    after = read_history(stopped.folder / "history.csv")
    assert epochs_of(after) == list(range(1, target + 1)), "one row per epoch, no gap, no duplicate"
    # The kill may land between the epoch's history row and its checkpoint; that epoch is then
    # trained again, identically, but with its own timing. Every earlier row is kept as written.
    assert after[: len(before) - 1] == before[:-1]
    assert without_timing(after[: len(before)]) == without_timing(before)
    assert_loads_and_samples(stopped.folder)
    assert "test" in json.loads((stopped.folder / "metrics.json").read_text())


# ------------------------------------------------------------------------------------ SIGTERM


@pytest.fixture(scope="module")
def sigterm_run(tmp_path_factory: pytest.TempPathFactory, data_store: Path) -> Stopped:
    """A run stopped by SIGTERM after at least one finished epoch (read-only: copy it to resume)."""
    return train_until_stopped(tmp_path_factory.mktemp("sigterm") / "run", data_store, signal.SIGTERM, min_rows=1,
                               settle=0.05)


@pytest.fixture
def resumable(sigterm_run: Stopped, tmp_path: Path) -> Path:
    return Path(shutil.copytree(sigterm_run.folder, tmp_path / "run"))


@pytest.fixture(scope="module")
def resumed(sigterm_run: Stopped, tmp_path_factory: pytest.TempPathFactory, invoke) -> Path:
    """A copy of the SIGTERM run resumed once to two epochs past its last row (finish the interrupted
    epoch, then one more); read-only, shared by the tests that read the resumed run."""
    folder = Path(shutil.copytree(sigterm_run.folder, tmp_path_factory.mktemp("resumed") / "run"))
    invoke(["train", "--out", folder, "--resume", "--epochs", len(sigterm_run.rows) + 2])
    return folder


def test_sigterm_exits_130_and_says_how_to_resume(sigterm_run: Stopped) -> None:
    assert sigterm_run.returncode == 130, sigterm_run.stderr
    assert "Traceback" not in sigterm_run.stderr
    assert "--resume" in sigterm_run.stderr and str(sigterm_run.folder) in sigterm_run.stderr
    assert (sigterm_run.folder / "checkpoint" / "last.safetensors").is_file()
    assert not (sigterm_run.folder / "model.safetensors").exists()
    assert epochs_of(sigterm_run.rows) == list(range(1, len(sigterm_run.rows) + 1))


def test_resume_after_sigterm_continues_the_history(resumed: Path, sigterm_run: Stopped) -> None:
    before = sigterm_run.rows
    target = len(before) + 2  # finish the interrupted epoch, then one more
    after = read_history(resumed / "history.csv")
    assert epochs_of(after) == list(range(1, target + 1)), "one row per epoch, no gap, no duplicate"
    assert after[: len(before)] == before, "rows written before the stop are unchanged"
    assert_loads_and_samples(resumed)
    assert vaekit.load(resumed).history[-1]["epoch"] == target


def test_resume_sweeps_the_leftovers_of_a_write_cut_short(resumable: Path, sigterm_run: Stopped, invoke) -> None:
    """Issue 17: a kill during a checkpoint write leaves `.last.safetensors.XXXX.tmp`; resuming removes
    it (and keeps what it should)."""
    leftovers = [resumable / "checkpoint" / ".last.safetensors.k1ll3d.tmp", resumable / ".history.csv.x.tmp"]
    for leftover in leftovers:
        leftover.write_bytes(b"half a file")
    invoke(["train", "--out", resumable, "--resume", "--epochs", len(sigterm_run.rows) + 1])
    assert not any(leftover.exists() for leftover in leftovers)
    assert_loads_and_samples(resumable)


def test_resume_is_exact(resumed: Path, sigterm_run: Stopped, tmp_path: Path, invoke) -> None:
    """Stopped at a step boundary and resumed == never stopped: same weights, same history."""
    target = len(sigterm_run.rows) + 2
    reference = tmp_path / "uninterrupted"
    invoke(train_args(reference, target))

    resumed_weights = load_file(str(resumed / "model.safetensors"))
    reference_weights = load_file(str(reference / "model.safetensors"))
    assert resumed_weights.keys() == reference_weights.keys()
    for name, value in reference_weights.items():
        torch.testing.assert_close(resumed_weights[name], value, rtol=0, atol=0, msg=lambda m, n=name: f"{n}: {m}")
    assert without_timing(read_history(resumed / "history.csv")) == without_timing(
        read_history(reference / "history.csv"))
    resumed_metrics = json.loads((resumed / "metrics.json").read_text())["test"]
    reference_metrics = json.loads((reference / "metrics.json").read_text())["test"]
    assert resumed_metrics == reference_metrics
