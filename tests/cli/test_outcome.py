"""The one place that turns an exception into the CLI's outcome (issue 17): known failures are one
line and exit 2, an interrupt exits 130, only true bugs are "internal error" exit 1."""

from __future__ import annotations

import errno
import os

import pytest
import typer

from vaekit.cli.common import outcome
from vaekit.errors import ConfigError, DivergenceError


def noted(error: BaseException, note: str) -> BaseException:
    error.add_note(note)
    return error


CASES = [
    (ConfigError("model.latent_dim: expected a positive number"), 2, "vaekit: error: model.latent_dim"),
    (noted(DivergenceError("training diverged"), "no epoch had finished"), 2, "diverged; no epoch had finished"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "runs/x"), 2, "runs/x: No such file"),
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), 2, "No space left on device (the disk is full"),
    (PermissionError(errno.EACCES, "Permission denied", "/etc/x"), 2, "/etc/x: Permission denied (no permission"),
    (OSError(errno.EXDEV, os.strerror(errno.EXDEV), "a", None, "b"), 2, "a -> b: "),
    (MemoryError(), 2, "out of memory: lower data.batch_size"),
    (type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory.\nTried to allocate 2 GiB"), 2,
     "out of memory (CUDA out of memory.)"),
    (KeyboardInterrupt(), 130, ""),
    (typer.Abort(), 130, ""),
    (BrokenPipeError(errno.EPIPE, "Broken pipe"), 130, ""),
    (ConnectionResetError(errno.ECONNRESET, "reset"), 1, "internal error: ConnectionResetError"),
    (KeyError("x"), 1, "vaekit: internal error: KeyError: 'x' (rerun with --debug"),
    (RuntimeError("two\nlines"), 1, "RuntimeError: two lines (rerun"),
]


@pytest.mark.parametrize(("error", "code", "start"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_every_exception_has_one_outcome(error: BaseException, code: int, start: str) -> None:
    status, line = outcome(error)
    assert status == code
    assert start in line
    assert "\n" not in line
