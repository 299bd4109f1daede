"""NumPy files as a source: ``.npy`` (samples only) and ``.npz`` (``x`` and optional ``y``).

Files are always read with ``allow_pickle=False``: an object array is refused, never unpickled.
The number of axes decides the kind: (N, C, H, W) or (N, H, W) images, (N, D) tables.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from vaekit.data.sources.base import PATH_LOADERS, RawData, Splits, machine_memory
from vaekit.errors import DataError
from vaekit.sections import DataConfig

_SHAPES = "expected (N, D) for a table, (N, H, W) or (N, C, H, W) for images"


def _check_numeric(array: np.ndarray, what: str) -> None:
    if array.dtype == bool or np.issubdtype(array.dtype, np.integer):
        return
    if np.issubdtype(array.dtype, np.floating):
        return
    raise DataError(f"{what}: dtype {array.dtype}, expected integer, float or bool values")


def to_raw(x: np.ndarray, y: np.ndarray | None, what: str) -> RawData:
    """Validate loaded arrays and describe them as images or a table.

    Parameters
    ----------
    x
        Samples: ndim 4 (N, C, H, W) or 3 (N, H, W) images, ndim 2 (N, D) table.
    y
        Optional (N,) non-negative integer labels.
    what
        Names the file in error messages (``"NPZ file 'a.npz'"``).

    Returns
    -------
    RawData
        uint8 images get ``max_level`` 255; bool arrays become uint8 0/1 (images: ``max_level`` 1).
    """
    _check_numeric(x, f"{what}: array 'x'")
    if x.ndim not in (2, 3, 4):
        raise DataError(f"{what}: array 'x' has shape {x.shape}, {_SHAPES}")
    if len(x) == 0 or 0 in x.shape:
        raise DataError(f"{what}: array 'x' has shape {x.shape}, expected no empty axis")
    max_level = None
    if x.dtype == bool:
        x, max_level = x.astype(np.uint8), 1.0
    elif x.dtype == np.uint8:
        max_level = 255.0
    if y is not None:
        y = _labels(y, len(x), what)
    if x.ndim == 2:
        return RawData(x=x, y=y, kind="table")
    if x.ndim == 3:
        x = x[:, None, :, :]  # (N, 1, H, W)
    return RawData(x=x, y=y, kind="image", max_level=max_level)


def _labels(y: np.ndarray, n: int, what: str) -> np.ndarray:
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{what}: array 'y' has shape {y.shape}, expected ({n},) to match 'x'")
    if y.dtype == bool or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{what}: array 'y' has dtype {y.dtype}, expected integer class labels")
    if y.min() < 0:
        raise DataError(f"{what}: array 'y' holds {int(y.min())}, expected labels >= 0")
    return y.astype(np.int64)


def _open_error(what: str, error: Exception) -> DataError:
    message = str(error)
    if isinstance(error, ValueError) and "Object arrays" in message:
        return DataError(
            f"{what}: holds Python objects; expected numeric arrays (pickle is never loaded)"
        )
    if isinstance(error, ValueError) and "pickled" in message:
        # np.load takes any file without the NumPy magic for a pickle.
        return DataError(
            f"{what}: not a NumPy file (a pickle or corrupt); expected np.save/np.savez output"
        )
    return DataError(f"{what}: cannot be read ({error.__class__.__name__}); expected a NumPy file")


_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)


def check_declared_size(stream: BinaryIO, what: str, stored: int | None = None) -> None:
    """Read an array's .npy header from ``stream`` and refuse it, before numpy allocates anything,
    when it declares more than half this machine's memory or (``stored``: the bytes the file holds
    after its header) more bytes than are there. A stream that is no .npy is left to numpy."""
    try:
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(stream)
    except (ValueError, OSError, EOFError):
        return
    declared = math.prod(shape) * dtype.itemsize  # exact, where numpy's prod wraps around
    if declared > machine_memory() // 2:
        raise DataError(f"{what}: its header declares an array of {declared:,} bytes {tuple(shape)}, more than half "
                        "of this machine's memory")
    if stored is not None and declared > stored - stream.tell():
        raise DataError(f"{what}: its header declares {declared:,} bytes of data but the file holds "
                        f"{stored - stream.tell():,} (truncated)")


def load_npy(path: Path, config: DataConfig) -> Splits:
    """A ``.npy`` file of samples (no labels)."""
    what = f"NPY file '{path}'"
    try:
        with open(path, "rb") as stream:
            check_declared_size(stream, what, stored=path.stat().st_size)
        x = np.load(path, allow_pickle=False)
    except DataError:  # already one line (a DataError is also a ValueError)
        raise
    except _READ_ERRORS as error:
        raise _open_error(what, error) from None
    if not isinstance(x, np.ndarray):
        x.close()  # an .npz archive under a .npy name
        raise DataError(f"{what}: holds several arrays; expected one array saved with np.save")
    return Splits(train=to_raw(x, None, what))


def load_npz(path: Path, config: DataConfig) -> Splits:
    """A ``.npz`` file with samples under ``x`` and, optionally, labels under ``y``."""
    what = f"NPZ file '{path}'"
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as members:
                for member in members.namelist():
                    with members.open(member) as stream:
                        check_declared_size(stream, f"{what}: array {member.removesuffix('.npy')!r}")
        archive = np.load(path, allow_pickle=False)
    except DataError:
        raise
    except _READ_ERRORS as error:
        raise _open_error(what, error) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(
            f"{what}: holds one array; expected arrays saved with np.savez(path, x=..., y=...)"
        )
    with archive:
        if "x" not in archive.files:
            keys = ", ".join(repr(key) for key in archive.files) or "none"
            raise DataError(
                f"{what}: no array 'x' (keys present: {keys}); "
                "save with np.savez(path, x=..., y=...)"
            )
        try:
            x = archive["x"]
            y = archive["y"] if "y" in archive.files else None
        except _READ_ERRORS as error:
            raise _open_error(what, error) from None
    return Splits(train=to_raw(x, y, what))


PATH_LOADERS.add(".npy", load_npy)
PATH_LOADERS.add(".npz", load_npz)
