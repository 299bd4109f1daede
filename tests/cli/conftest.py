"""Fixtures for the command-line tests: subprocess and in-process runners, and one trained run
folder that every test may read but none may change."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from cli_support import SUBPROCESS_TIMEOUT, TINY, TRAIN_TINY, cli_env, run_in_process, vaekit_command
from typer.testing import CliRunner, Result

import vaekit
from vaekit.cli import app
from vaekit.data.loaders import prepare_data
from vaekit.data.sources import RawData

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty dataset folder for $VAEKIT_DATA: no test reads a real download cache."""
    return tmp_path_factory.mktemp("vaekit-data")


@pytest.fixture
def run_cli(data_store: Path, tmp_path: Path):
    """Run ``python -m vaekit ARGS`` (cwd ``tmp_path``); returns the CompletedProcess (text)."""

    def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(vaekit_command(*args), cwd=cwd or tmp_path, env=cli_env(data_store),
                              capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)

    return run


# The warning filters of a fresh interpreter (`python -W` unset): what a real `python -m vaekit` would print.
FRESH_INTERPRETER_FILTERS = [("default", DeprecationWarning, "__main__"), ("ignore", DeprecationWarning, ""),
                             ("ignore", PendingDeprecationWarning, ""), ("ignore", ImportWarning, ""),
                             ("ignore", ResourceWarning, "")]


@pytest.fixture
def run_cli_in_process(data_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch):
    """Like ``run_cli`` but in this process, through ``run_in_process`` (the same ``run_app`` that maps
    errors to exit codes and lines): no interpreter start-up per case. Warnings a fresh interpreter would
    show are written to stderr as it would, so a check for exactly one stderr line still sees them."""
    monkeypatch.setenv("VAEKIT_DATA", str(data_store))
    monkeypatch.chdir(tmp_path)

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        with warnings.catch_warnings(record=True) as caught:
            warnings.resetwarnings()
            for action, category, module in reversed(FRESH_INTERPRETER_FILTERS):
                warnings.filterwarnings(action, category=category, module=module)
            code = run_in_process(args)
        captured = capsys.readouterr()
        shown = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in caught)
        return subprocess.CompletedProcess(vaekit_command(*args), code, captured.out, captured.err + shown)

    return run


@pytest.fixture(scope="session")
def invoke(data_store: Path):
    """Run a command in-process through typer's CliRunner; fails the test on an unexpected exit code."""
    runner = CliRunner()

    def run(args: Sequence[str | Path], expect: int = 0) -> Result:
        words = [str(a) for a in args]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("VAEKIT_DATA", str(data_store))
            result = runner.invoke(app, words)
        if result.exit_code != expect:
            detail = result.output + (f"\n{result.exception!r}" if result.exception else "")
            pytest.fail(f"vaekit {' '.join(words)}: exit {result.exit_code}, expected {expect}\n{detail}")
        return result

    return run


@pytest.fixture(scope="session")
def pristine_run(tmp_path_factory: pytest.TempPathFactory, invoke) -> Path:
    """A 2-epoch run folder on digits, trained once per session. Read it; never write into it."""
    out = tmp_path_factory.mktemp("pristine") / "run"
    invoke([*TRAIN_TINY, "--out", out])
    return out


@pytest.fixture(scope="session")
def cvae_run(tmp_path_factory: pytest.TempPathFactory, invoke) -> Path:
    """A 1-epoch cvae on digits (classes named "0".."9"), trained once per session. Read it; never write
    into it."""
    out = tmp_path_factory.mktemp("cvae") / "run"
    invoke(["train", "--data", "digits", "--preset", "cvae", "--epochs", "1", *TINY, "--out", out])
    return out


@pytest.fixture
def run_copy(pristine_run: Path, tmp_path: Path) -> Path:
    """A private copy of the trained run, for commands that write into the run folder."""
    return Path(shutil.copytree(pristine_run, tmp_path / "run"))


@pytest.fixture(scope="session")
def held_out(pristine_run: Path) -> RawData:
    """The run's own test split (labelled digits): what every command reads without --data."""
    return prepare_data(vaekit.load(pristine_run).config.data).test


@pytest.fixture
def run_main(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run ``vaekit ARGS`` in-process as ``python -m vaekit`` does; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "cache"))

    def run(*args: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run_in_process(args)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
