"""Constants and helpers for the command-line tests (imported by conftest.py and the test files).

Subprocesses run ``python -m vaekit`` with the interpreter running the tests (so no particular
virtualenv layout is assumed), one CPU thread, and an empty ``$VAEKIT_DATA`` (no test sees a real
dataset cache).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# The smallest model that still trains: 8x8 digits, one hidden layer of 32, a 4-d latent space.
TINY = ["--set", "model.hidden=[32]", "--set", "model.latent_dim=4", "--set", "eval.k=10", "--quiet"]
TRAIN_TINY = ["train", "--data", "digits", "--epochs", "2", *TINY]

# Long enough for any single command on a slow CI machine; a hang fails instead of blocking.
SUBPROCESS_TIMEOUT = 300


def cli_env(data_store: Path) -> dict[str, str]:
    """The environment of a ``vaekit`` subprocess: one thread, no real data cache, no display, and
    the vaekit these tests imported first on the path (a relative ``PYTHONPATH=src`` would not hold
    in the subprocess's own folder, and an editable install of another checkout would run instead)."""
    import vaekit

    env = dict(os.environ)
    source = str(Path(vaekit.__file__).resolve().parents[1])
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", VAEKIT_DATA=str(data_store), MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([source, *filter(None, [env.get("PYTHONPATH")])]))
    return env


def vaekit_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "vaekit", *(str(a) for a in args)]


def run_in_process(args: Sequence[str | Path]) -> int:
    """``vaekit ARGS`` in this process as ``python -m vaekit`` runs it (its log lines on stderr); the
    exit code. ``sys.argv`` is restored afterwards."""
    from vaekit.cli import app, log_handler
    from vaekit.cli.common import run_app

    root, argv = logging.getLogger(), sys.argv
    handler, level = log_handler(), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    sys.argv = ["vaekit", *(str(a) for a in args)]
    try:
        run_app(app)
    except SystemExit as stop:
        return stop.code
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        sys.argv = argv
    return 0


def folder_digest(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``folder``: equal digests, untouched folder."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def read_history(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))
