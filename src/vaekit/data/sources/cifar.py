"""CIFAR-10 from the official binary archive, read straight from the tar.gz (never the pickles).

Each batch file is a run of 3,073-byte records: one label byte, then a 32x32 image as 1,024 red,
1,024 green and 1,024 blue bytes, row by row (Krizhevsky 2009, the "binary version").
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path

import numpy as np

from vaekit.data.download import fetch_files, find_local
from vaekit.data.sources.base import RawData, Source, Splits, register_source
from vaekit.errors import DataError
from vaekit.sections import DataConfig

ARCHIVE = "cifar-10-binary.tar.gz"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
# Pinned by tensorflow/datasets (tensorflow_datasets/url_checksums/cifar10.txt), 170,052,171 bytes.
SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"

FOLDER = "cifar-10-batches-bin"
TRAIN_BATCHES = [f"{FOLDER}/data_batch_{i}.bin" for i in range(1, 6)]
TEST_BATCH = f"{FOLDER}/test_batch.bin"
META = f"{FOLDER}/batches.meta.txt"
SHAPE = (3, 32, 32)
RECORD = 1 + 3 * 32 * 32  # label byte + CHW pixels
CLASS_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


def _parse_batch(data: bytes, archive: Path, member: str) -> tuple[np.ndarray, np.ndarray]:
    if not data or len(data) % RECORD:
        raise DataError(
            f"CIFAR-10 archive '{archive}': member '{member}' has {len(data)} bytes, "
            f"expected a non-zero multiple of the {RECORD}-byte record"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)  # (N, 3073)
    labels = records[:, 0].astype(np.int64)  # (N,)
    if labels.max() >= len(CLASS_NAMES):
        raise DataError(
            f"CIFAR-10 archive '{archive}': member '{member}' has label {int(labels.max())}, "
            f"expected 0..{len(CLASS_NAMES) - 1}"
        )
    images = records[:, 1:].reshape(-1, *SHAPE).copy()  # (N, 3, 32, 32), writable
    return images, labels


def _class_names(text: bytes | None) -> list[str]:
    names = [line.strip() for line in (text or b"").decode("ascii", "replace").splitlines()]
    names = [name for name in names if name]
    return names if len(names) == len(CLASS_NAMES) else list(CLASS_NAMES)


def read_cifar10_archive(path: Path) -> Splits:
    """Read the five training batches and the test batch from ``cifar-10-binary.tar.gz``.

    Parameters
    ----------
    path
        The official binary archive (or any tar.gz holding ``cifar-10-batches-bin/*.bin``).

    Returns
    -------
    Splits
        train: x (50000, 3, 32, 32) uint8 and y (50000,); test: the 10,000 test images.

    Raises
    ------
    DataError
        The archive is unreadable, a batch is missing, or a batch is not whole records.
    """
    wanted = {*TRAIN_BATCHES, TEST_BATCH, META}
    contents: dict[str, bytes] = {}
    try:
        # One pass in archive order: a gzip stream cannot seek back cheaply. "r:*" also takes
        # the archive gunzipped (``cifar-10-binary.tar``).
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name in wanted and member.isfile():
                    handle = tar.extractfile(member)
                    contents[name] = handle.read() if handle is not None else b""
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"CIFAR-10 archive '{path}': cannot be read ({error.__class__.__name__}); "
            f"expected the binary version {ARCHIVE}"
        ) from None
    missing = [name for name in [*TRAIN_BATCHES, TEST_BATCH] if name not in contents]
    if missing:
        raise DataError(
            f"CIFAR-10 archive '{path}': missing {', '.join(missing)}; "
            f"expected the binary version {ARCHIVE}"
        )
    names = _class_names(contents.get(META))
    train = [_parse_batch(contents[name], path, name) for name in TRAIN_BATCHES]
    test_x, test_y = _parse_batch(contents[TEST_BATCH], path, TEST_BATCH)

    def raw(x: np.ndarray, y: np.ndarray) -> RawData:
        return RawData(x=x, y=y, kind="image", max_level=255.0, class_names=names)

    return Splits(
        train=raw(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
        test=raw(test_x, test_y),
    )


def load_cifar10(config: DataConfig) -> Splits:
    """The official CIFAR-10 train/test split, downloaded (checksummed) when missing."""
    paths = fetch_files("cifar10", {ARCHIVE: (URL, SHA256)}, config)
    return read_cifar10_archive(paths[ARCHIVE])


def _available(config: DataConfig) -> bool:
    return find_local("cifar10", [ARCHIVE], config)[ARCHIVE] is not None


register_source(
    Source(
        name="cifar10",
        description="CIFAR-10, 32x32 colour, 50,000 train + 10,000 test, 10 classes",
        load=load_cifar10,
        available_offline=_available,
        fetch="170 MB download",
    )
)
