"""Atomic file writes: every artefact goes to a temporary name in its folder, then is renamed.

A reader (or a crash) therefore sees either the old file or the complete new one, never half.
:func:`save_array` writes an array that way, as .npy or .csv.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import save as safetensors_bytes
from torch import Tensor

from vaekit.errors import DataError


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


try:
    import fcntl
except ImportError:  # Windows: run folders are not locked there
    fcntl = None

_UMASK = _read_umask()  # read once at import: os.umask can only be read by setting it


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file beside ``path``, then rename: readers never see half a file.
    The file gets the permissions a plain ``open`` would give (mkstemp's are owner-only)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise _naming(error, path) from None
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _naming(error, path) from None
        raise
    return path


def _naming(error: OSError, path: Path) -> OSError:
    """The same error naming ``path`` (a failed write() names no file; a failed mkstemp names a
    temporary one the user never asked for)."""
    if error.errno is None:
        return error
    named = OSError(error.errno, error.strerror, str(path))  # OSError() picks the subclass by errno
    named.__notes__ = list(getattr(error, "__notes__", []))
    return named


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, tree: Any) -> Path:
    return atomic_write_text(path, json.dumps(tree, indent=2, sort_keys=True) + "\n")


def atomic_save_tensors(path: str | Path, tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> Path:
    """Save tensors as safetensors (no pickle), copied to contiguous CPU memory first."""
    flat = {name: value.detach().to("cpu").contiguous().clone() for name, value in tensors.items()}
    return atomic_write_bytes(path, safetensors_bytes(flat, metadata=metadata))


def sweep_partial_writes(folder: str | Path) -> list[Path]:
    """Remove what :func:`atomic_write_bytes` leaves behind when its process is killed mid-write
    (``.NAME.XXXX.tmp`` beside NAME), in ``folder`` and its subfolders; returns what it removed.
    Only for a folder this process owns (a run being resumed): another writer's file would go too."""
    removed = []
    for leftover in Path(folder).rglob(".*.tmp"):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


class FolderLock:
    """One process owns a run folder: an exclusive ``flock`` on ``.NAME.lock`` beside it, holding
    the owner's pid. The kernel drops the lock when its process dies, however it dies, so a lock
    left by a killed run is taken over at once; a live owner makes :meth:`acquire` raise with its
    pid. Used as a context manager; the lock file is removed on release."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        self.path = folder.parent / f".{folder.name}.lock"
        self.folder, self._fd = folder, None

    def acquire(self) -> FolderLock:
        from vaekit.errors import RunFolderError

        if fcntl is None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunFolderError(f"run folder {str(self.folder)!r} is in use by pid {owner}; wait for it to "
                                 "finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # while still held: no one can be holding this file
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def save_array(values: Tensor | np.ndarray, path: str | Path, header: list[str] | None = None) -> Path:
    """Write .npy (no pickle) or .csv, atomically."""
    path = Path(path)
    array = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
    buffer = io.BytesIO()
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(buffer, array, allow_pickle=False)
    elif suffix == ".csv" and array.dtype == object:  # a table with text (category) columns
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(header or [f"v{i}" for i in range(array.shape[1])])
        writer.writerows([["" if _blank(v) else (f"{v:.7g}" if isinstance(v, float) else v) for v in row]
                          for row in array])
        buffer.write(text.getvalue().encode())
    elif suffix == ".csv":
        flat = array.reshape(len(array), -1)
        names = header or [f"v{i}" for i in range(flat.shape[1])]
        np.savetxt(buffer, flat, delimiter=",", header=",".join(names), comments="", fmt="%.7g")
    else:
        raise DataError(f"output {str(path)!r}: expected a .npy or .csv file")
    return atomic_write_bytes(path, buffer.getvalue())


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
