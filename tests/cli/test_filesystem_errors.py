"""Issue 17: the file system failing under a command (a full disk, a file-size limit, a read-only
place) is one line naming the path, exit 2, and no half-written run folder: a disk full at the
first write leaves nothing; a disk full mid-run keeps the last good checkpoint, which resumes.

Before, each was exit 1 "internal error" (an OSError naming no file), and a run folder holding only
its config was left behind."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
from pathlib import Path

import pytest
from cli_support import SUBPROCESS_TIMEOUT, TINY, cli_env, read_history, vaekit_command
from test_bad_input import assert_clean_error

import vaekit.files


def train_args(out: Path, epochs: int = 1) -> list[str]:
    return ["train", "--data", "digits", "--epochs", str(epochs), *TINY, "--out", str(out)]


def one_line(code: int, err: str, *names: str) -> str:
    """Exit 2 and one stderr line naming ``names`` (as assert_clean_error, for in-process runs)."""
    lines = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert code == 2, err
    assert "Traceback" not in err and len(lines) == 1, err
    for name in names:
        assert name in lines[0], f"the error does not name {name!r}: {lines[0]}"
    return lines[0]


def disk_full(monkeypatch: pytest.MonkeyPatch, when=lambda: True) -> None:
    """Every file vaekit writes (they all go through files.atomic_write_bytes) fails with ENOSPC at
    its fsync while ``when()`` holds, as a full disk fails a write."""
    real = os.fsync

    def fsync(fd: int) -> None:
        if when():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(vaekit.files.os, "fsync", fsync)


def test_a_full_disk_at_the_first_write_leaves_no_run_folder(run_main, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    disk_full(monkeypatch)
    code, _, err = run_main(*train_args(out))
    line = one_line(code, err, str(out), "No space left on device", "the disk is full")
    assert "no run folder was kept" in line
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))


def test_a_full_disk_mid_run_keeps_the_last_good_checkpoint_which_resumes(
        run_main, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    checkpoint = out / "checkpoint" / "last.safetensors"
    disk_full(monkeypatch, when=checkpoint.exists)  # the disk fills up once epoch 1 is checkpointed
    code, _, err = run_main(*train_args(out, epochs=3))
    one_line(code, err, "No space left on device", str(out), "keeps the last good checkpoint", "--resume")
    assert checkpoint.is_file() and not list(out.rglob(".*.tmp"))

    monkeypatch.undo()  # space freed
    code, _, err = run_main("train", "--resume", "--out", str(out))
    assert code == 0, err
    assert [row["epoch"] for row in read_history(out / "history.csv")] == ["1", "2", "3"]


def test_a_file_size_limit_is_one_line_naming_the_file(data_store: Path, tmp_path: Path) -> None:
    """A real failing write (no mock): RLIMIT_FSIZE below the checkpoint's size makes the kernel
    refuse it with EFBIG; the header files, smaller, were written, and are removed again."""
    out = tmp_path / "run"

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (16_384, 16_384))

    result = subprocess.run(vaekit_command(*train_args(out)), cwd=tmp_path, env=cli_env(data_store),
                            capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, preexec_fn=small_files)
    line = assert_clean_error(result, "last.safetensors", "File too large")
    assert "no run folder was kept" in line
    assert not out.exists()


def test_a_figure_to_a_place_that_cannot_be_written_is_one_line(run_main, pristine_run: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only file system (mocked: the tests may run as root, whom permissions do not stop)."""
    real = vaekit.files.tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):  # noqa: A002 (mkstemp's own name)
        if Path(dir).is_relative_to(tmp_path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(Path(dir) / "tmpXYZ"))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(vaekit.files.tempfile, "mkstemp", read_only)
    out = tmp_path / "samples.png"
    code, _, err = run_main("sample", str(pristine_run), "--n", "4", "--out", str(out))
    line = one_line(code, err, str(out), "Read-only file system")
    assert "tmpXYZ" not in line  # the path the user gave, not a temporary name
    assert not out.exists()


@pytest.mark.parametrize("make", ["directory", "below-a-file"])
def test_an_output_file_that_is_a_directory_or_below_a_file(run_main, pristine_run: Path, tmp_path: Path,
                                                            make: str) -> None:
    if make == "directory":
        out = tmp_path / "samples.png"
        out.mkdir()
    else:
        (tmp_path / "notes.txt").write_text("keep\n")
        out = tmp_path / "notes.txt" / "samples.png"
    code, _, err = run_main("sample", str(pristine_run), "--n", "4", "--out", str(out))
    one_line(code, err, str(out))
    assert (tmp_path / "notes.txt").read_text() == "keep\n" if make != "directory" else out.is_dir()
