"""MNIST and Fashion-MNIST from their IDX files (gzip-compressed or raw), official train/test split.

IDX (LeCun et al.): a big-endian header ``0x0000 <type> <ndim>`` then ``ndim`` uint32 sizes, then
the values. Only unsigned bytes (type 0x08) are read: 0x00000803 for images, 0x00000801 labels.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from functools import partial
from pathlib import Path
from typing import BinaryIO

import numpy as np

from vaekit.data.download import fetch_files, find_local
from vaekit.data.sources.base import RawData, Source, Splits, machine_memory, register_source
from vaekit.errors import DataError
from vaekit.sections import DataConfig

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (N, rows, cols)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (N,)
_GZIP_MAGIC = b"\x1f\x8b"
_WHAT = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}


def _sums(text: str) -> dict[str, str]:
    """``{filename: sha256}`` from lines in `sha256sum` output format."""
    return {name: digest for digest, name in (line.split() for line in text.strip().splitlines())}


SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# SHA-256 of the gzip files as served, in `sha256sum` format; the same digests are pinned by
# tensorflow/datasets (tensorflow_datasets/url_checksums/mnist.txt and fashion_mnist.txt).
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_SHA256 = _sums("""
440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609  train-images-idx3-ubyte.gz
3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c  train-labels-idx1-ubyte.gz
8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6  t10k-images-idx3-ubyte.gz
f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6  t10k-labels-idx1-ubyte.gz
""")
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_SHA256 = _sums("""
3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84  train-images-idx3-ubyte.gz
a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845  train-labels-idx1-ubyte.gz
346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073  t10k-images-idx3-ubyte.gz
67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5  t10k-labels-idx1-ubyte.gz
""")
# Debian's `dataset-fashion-mnist` package. Its files are re-compressed (other gzip bytes, so other
# digests) around the same IDX content; local files are read, not re-verified.
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

MNIST_CLASSES = [str(digit) for digit in range(10)]
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


def _open_idx(path: Path) -> BinaryIO:
    """The file's IDX bytes as a stream: gunzipped on the fly when it starts with the gzip magic
    (sniffed rather than trusted from the suffix: gunzipped files keep odd names)."""
    with open(path, "rb") as probe:
        zipped = probe.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if zipped else open(path, "rb")  # noqa: SIM115 (the caller closes it)


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read an unsigned-byte IDX file, checking its magic number, sizes and length.

    The header is read first from the (decompressing) stream and its declared size checked against
    this machine's memory before anything else is read; then exactly that many bytes, and one more
    to prove there are none: a small gzip file that would inflate to gigabytes is refused after a
    few bytes, not after filling memory.

    Parameters
    ----------
    path
        A ``.gz`` or uncompressed IDX file.
    magic
        :data:`IMAGES_MAGIC` or :data:`LABELS_MAGIC`.

    Returns
    -------
    numpy.ndarray
        uint8 array shaped as the header says: (N, rows, cols) images or (N,) labels.

    Raises
    ------
    DataError
        Wrong magic number, a zero size, a declared size larger than half this machine's memory,
        or a byte count that does not match the header (a truncated or padded file).
    """
    what = _WHAT.get(magic, "data")
    try:
        with _open_idx(Path(path)) as stream:
            start = stream.read(4)
            if len(start) < 4:
                raise DataError(f"IDX file '{path}': {len(start)} bytes, too short for an IDX header")
            (found,) = struct.unpack(">I", start)
            if found != magic:
                raise DataError(f"IDX file '{path}': bad magic 0x{found:08x}, expected 0x{magic:08x} ({what})")
            ndim = magic & 0xFF
            sizes = stream.read(4 * ndim)
            if len(sizes) < 4 * ndim:
                raise DataError(f"IDX file '{path}': header truncated ({4 + len(sizes)} of {4 + 4 * ndim} bytes)")
            dims = struct.unpack(f">{ndim}I", sizes)
            if 0 in dims:
                raise DataError(f"IDX file '{path}': sizes {list(dims)} include a zero ({what})")
            expected = math.prod(dims)  # exact: numpy's prod wraps around at 2^63
            if expected > machine_memory() // 2:
                raise DataError(f"IDX file '{path}': its header declares {expected:,} bytes ({list(dims)}), more than "
                                "half of this machine's memory; expected an IDX file of images or labels")
            data = stream.read(expected + 1)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DataError(
            f"IDX file '{path}': cannot be read ({error.__class__.__name__}: {error}); "
            "expected a gzip or raw IDX file"
        ) from None
    if len(data) != expected:
        shown = f"{len(data)}" if len(data) <= expected else f"more than {expected}"
        raise DataError(
            f"IDX file '{path}': {shown} data bytes, expected {expected} for sizes {list(dims)} (truncated or corrupt)"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(dims).copy()  # writable, owns its memory


def read_split(images_path: Path, labels_path: Path, class_names: list[str]) -> RawData:
    """One split from an images file and a labels file: x (N, 1, H, W) uint8, y (N,) int64."""
    images = read_idx(images_path, IMAGES_MAGIC)  # (N, H, W)
    labels = read_idx(labels_path, LABELS_MAGIC)  # (N,)
    if len(images) != len(labels):
        raise DataError(
            f"IDX files '{images_path}' and '{labels_path}': {len(images)} images but "
            f"{len(labels)} labels, expected the same number"
        )
    if labels.max() >= len(class_names):
        raise DataError(
            f"IDX file '{labels_path}': label {int(labels.max())} out of range, "
            f"expected 0..{len(class_names) - 1}"
        )
    return RawData(
        x=images[:, None, :, :],  # (N, 1, H, W)
        y=labels.astype(np.int64),
        kind="image",
        max_level=255.0,
        class_names=list(class_names),
    )


def _load(
    name: str,
    base_url: str,
    sha256: dict[str, str],
    class_names: list[str],
    extra_dirs: tuple[Path, ...],
    config: DataConfig,
) -> Splits:
    files = {filename: (base_url + filename, digest) for filename, digest in sha256.items()}
    paths = fetch_files(name, files, config, extra_dirs=extra_dirs)
    train, test = (
        read_split(paths[images], paths[labels], class_names)
        for images, labels in (SPLIT_FILES["train"], SPLIT_FILES["test"])
    )
    return Splits(train=train, test=test)


def _available(
    name: str, sha256: dict[str, str], extra_dirs: tuple[Path, ...], config: DataConfig
) -> bool:
    found = find_local(name, list(sha256), config, extra_dirs=extra_dirs)
    return all(path is not None for path in found.values())


def _register(
    name: str,
    description: str,
    base_url: str,
    sha256: dict[str, str],
    class_names: list[str],
    fetch: str,
    extra_dirs: tuple[Path, ...] = (),
) -> None:
    register_source(
        Source(
            name=name,
            description=description,
            load=partial(_load, name, base_url, sha256, class_names, extra_dirs),
            available_offline=partial(_available, name, sha256, extra_dirs),
            fetch=fetch,
        )
    )


_register(
    "mnist",
    "MNIST handwritten digits, 28x28 grey, 60,000 train + 10,000 test, 10 classes",
    MNIST_URL,
    MNIST_SHA256,
    MNIST_CLASSES,
    "12 MB download",
)
_register(
    "fashion-mnist",
    "Fashion-MNIST clothing, 28x28 grey, 60,000 train + 10,000 test, 10 classes",
    FASHION_URL,
    FASHION_SHA256,
    FASHION_CLASSES,
    "31 MB download",
    extra_dirs=(DEBIAN_FASHION_DIR,),
)
