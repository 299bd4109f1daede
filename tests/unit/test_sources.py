"""Data sources on tiny files generated under tmp_path: IDX, CIFAR, arrays, images, tables."""

from __future__ import annotations

import gzip
import io
import struct
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vaekit.config import DataConfig
from vaekit.data.sources import SOURCES, load_source
from vaekit.data.sources.cifar import RECORD, read_cifar10_archive
from vaekit.data.sources.idx import (
    DEBIAN_FASHION_DIR,
    IMAGES_MAGIC,
    LABELS_MAGIC,
    read_idx,
)
from vaekit.errors import DataError


@pytest.fixture(autouse=True)
def empty_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the default data folder at an empty place: no test sees a real cache."""
    store = tmp_path / "store"
    monkeypatch.setenv("VAEKIT_DATA", str(store))
    return store


# ---------------------------------------------------------------------------------------- IDX


def write_idx(path: Path, magic: int, array: np.ndarray, compress: bool = True) -> Path:
    """An unsigned-byte IDX file: magic, sizes (big-endian uint32), then the bytes."""
    data = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_mnist(folder: Path, n_train: int = 6, n_test: int = 4, compress: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        end = ".gz" if compress else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{end}", IMAGES_MAGIC, images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{end}", LABELS_MAGIC, labels, compress)


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path: Path, compress: bool) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "images.idx", IMAGES_MAGIC, images, compress=compress)
    out = read_idx(path, IMAGES_MAGIC)
    np.testing.assert_array_equal(out, images)
    assert out.dtype == np.uint8 and out.flags.writeable


_SIZES = struct.pack(">III", 2, 28, 28)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            gzip.compress(struct.pack(">II", LABELS_MAGIC, 3) + bytes(3)),
            r"bad magic 0x00000801, expected 0x00000803 \(images\)",
        ),
        (
            gzip.compress(struct.pack(">I", IMAGES_MAGIC) + _SIZES + bytes(2 * 784 - 100)),
            r"1468 data bytes, expected 1568 for sizes \[2, 28, 28\] \(truncated",
        ),
        (struct.pack(">II", IMAGES_MAGIC, 2), r"header truncated \(8 of 16 bytes\)"),
        (b"\x00\x00", r"2 bytes, too short"),
        (gzip.compress(struct.pack(">IIII", IMAGES_MAGIC, 0, 28, 28)), r"sizes \[0, 28, 28\]"),
        (b"\x1f\x8b not really gzip", r"cannot be read"),
    ],
)
def test_read_idx_rejects_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "images.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"^IDX file '.*images\.gz': {message}"):
        read_idx(path, IMAGES_MAGIC)


def test_read_idx_refuses_a_header_larger_than_memory(tmp_path: Path) -> None:
    """Issue 17: sizes whose product wraps around in numpy (65536 x 65537 x 4294901761) passed."""
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(struct.pack(">IIII", IMAGES_MAGIC, 65536, 65537, 4294901761) + bytes(64)))
    with pytest.raises(DataError, match=r"declares 18,446,744,073,709,617,152 bytes .* more than half"):
        read_idx(path, IMAGES_MAGIC)


def test_read_idx_stops_a_gzip_bomb_after_its_header(tmp_path: Path) -> None:
    """Issue 17: a small gzip file that inflates to far more than its header declares was inflated
    whole (1.6 MB to 3.4 GB) before the check. Now memory stays at the declared size."""
    import tracemalloc

    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(struct.pack(">I", IMAGES_MAGIC) + _SIZES + bytes(60_000_000)))  # ~60 kB
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"more than 1568 data bytes, expected 1568"):
            read_idx(path, IMAGES_MAGIC)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, f"{peak:,} bytes held while reading"


def npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    """A .npy file's magic and header declaring ``shape``, with no data after it."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()  # the writer puts the magic first


@pytest.mark.parametrize(("name", "content", "message"), [
    ("huge.npy", npy_header((256_000, 1_000, 1_000)), r"declares an array of 2,048,000,000,000 bytes"),
    ("short.npy", npy_header((100, 8)) + bytes(80), r"declares 6,400 bytes of data but the file holds 80"),
], ids=["238-GiB-header", "truncated"])
def test_an_npy_header_is_checked_before_anything_is_allocated(tmp_path: Path, name: str, content: bytes,
                                                               message: str) -> None:
    """Issue 17: a .npy header declaring 238 GiB ended in MemoryError."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_path(path)


def test_an_npz_member_header_is_checked_before_anything_is_allocated(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", npy_header((256_000, 1_000, 1_000)))
    with pytest.raises(DataError, match=r"array 'x': its header declares an array of 2,048,000,000,000 bytes"):
        load_path(path)


def test_mnist_source_reads_official_split(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mnist")
    config = DataConfig(source="mnist", root=str(tmp_path / "mnist"), download=False)
    assert SOURCES.get("mnist").available_offline(config)
    splits = load_source(config)
    assert splits.train.x.shape == (6, 1, 28, 28) and splits.train.x.dtype == np.uint8
    assert splits.test is not None and splits.test.x.shape == (4, 1, 28, 28)
    assert splits.train.y.dtype == np.int64
    np.testing.assert_array_equal(splits.train.y, [0, 1, 2, 3, 4, 5])
    assert splits.train.kind == "image" and splits.train.max_level == 255
    assert splits.train.class_names == [str(d) for d in range(10)]


@pytest.mark.parametrize(
    ("name", "filename"),
    [("mnist", "train-images-idx3-ubyte.gz"), ("cifar10", "cifar-10-binary.tar.gz")],
)
def test_missing_files_offline(tmp_path: Path, name: str, filename: str) -> None:
    config = DataConfig(source=name, root=str(tmp_path / "nowhere"), download=False)
    assert not SOURCES.get(name).available_offline(config)
    with pytest.raises(DataError, match=rf"'{name}': .*{filename}.* not found \(looked in"):
        load_source(config)


def test_mnist_count_mismatch_and_bad_label(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    write_mnist(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", LABELS_MAGIC, np.zeros(5))
    config = DataConfig(source="mnist", root=str(folder), download=False)
    with pytest.raises(DataError, match=r"6 images but 5 labels"):
        load_source(config)
    write_idx(folder / "train-labels-idx1-ubyte.gz", LABELS_MAGIC, np.full(6, 12))
    with pytest.raises(DataError, match=r"label 12 out of range, expected 0\.\.9"):
        load_source(config)


def test_fashion_mnist_accepts_uncompressed_files(tmp_path: Path) -> None:
    write_mnist(tmp_path / "fm", compress=False)
    config = DataConfig(source="fashion-mnist", root=str(tmp_path / "fm"), download=False)
    splits = load_source(config)
    assert splits.train.x.shape == (6, 1, 28, 28)
    assert splits.train.class_names[0] == "T-shirt/top"
    assert splits.train.class_names[9] == "Ankle boot"


def test_fashion_mnist_from_debian_package() -> None:
    if not (DEBIAN_FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist package is not installed")
    config = DataConfig(source="fashion-mnist", download=False)
    assert SOURCES.get("fashion-mnist").available_offline(config)
    splits = load_source(config)
    assert splits.train.x.shape == (60000, 1, 28, 28)
    assert splits.test is not None and splits.test.x.shape == (10000, 1, 28, 28)
    assert np.bincount(splits.train.y).tolist() == [6000] * 10


# -------------------------------------------------------------------------------------- CIFAR


def cifar_batch(n: int, first_label: int = 0) -> bytes:
    """n records whose R, G and B planes hold 1, 2 and 3 (checks the CHW order)."""
    planes = np.concatenate([np.full(1024, c + 1, dtype=np.uint8) for c in range(3)])
    return b"".join(bytes([(first_label + i) % 10]) + planes.tobytes() for i in range(n))


def write_cifar(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def cifar_members() -> dict[str, bytes]:
    members = {f"data_batch_{i}.bin": cifar_batch(2, first_label=i) for i in range(1, 6)}
    members["test_batch.bin"] = cifar_batch(3)
    return members


def test_cifar10_source_reads_binary_archive(tmp_path: Path) -> None:
    members = cifar_members()
    members["batches.meta.txt"] = b"\n".join(f"class{k}".encode() for k in range(10)) + b"\n\n"
    write_cifar(tmp_path / "c" / "cifar-10-binary.tar.gz", members)
    config = DataConfig(source="cifar10", root=str(tmp_path / "c"), download=False)
    assert SOURCES.get("cifar10").available_offline(config)
    splits = load_source(config)
    assert splits.train.x.shape == (10, 3, 32, 32) and splits.train.x.dtype == np.uint8
    assert splits.test is not None and splits.test.x.shape == (3, 3, 32, 32)
    assert splits.train.y.tolist() == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6]
    assert [int(splits.train.x[0, c, 5, 7]) for c in range(3)] == [1, 2, 3]
    assert splits.train.class_names == [f"class{k}" for k in range(10)]
    assert splits.train.max_level == 255 and splits.train.kind == "image"


def test_cifar10_fixed_class_names_without_meta(tmp_path: Path) -> None:
    splits = read_cifar10_archive(write_cifar(tmp_path / "a.tar.gz", cifar_members()))
    assert splits.train.class_names[0] == "airplane" and splits.train.class_names[9] == "truck"


def test_cifar10_bad_record_size(tmp_path: Path) -> None:
    members = cifar_members()
    members["data_batch_3.bin"] = cifar_batch(2)[:-5]
    path = write_cifar(tmp_path / "a.tar.gz", members)
    with pytest.raises(DataError, match=rf"data_batch_3\.bin' has {2 * RECORD - 5} bytes"):
        read_cifar10_archive(path)


def test_cifar10_missing_batch_and_unreadable_archive(tmp_path: Path) -> None:
    members = cifar_members()
    del members["test_batch.bin"]
    path = write_cifar(tmp_path / "a.tar.gz", members)
    with pytest.raises(DataError, match=r"a\.tar\.gz': missing cifar-10-batches-bin/test_batch"):
        read_cifar10_archive(path)
    path.write_bytes(b"this is not an archive")
    with pytest.raises(DataError, match=r"a\.tar\.gz': cannot be read"):
        read_cifar10_archive(path)


# ------------------------------------------------------------------------------------- arrays


def load_path(path: Path, **options: object) -> object:
    return load_source(DataConfig(source=str(path), **options))


def test_npy_image_stack_gets_channel_axis(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((5, 8, 9), dtype=np.uint8))
    splits = load_path(tmp_path / "x.npy")
    assert splits.train.x.shape == (5, 1, 8, 9) and splits.train.kind == "image"
    assert splits.train.max_level == 255 and splits.train.y is None


def test_npy_table_and_float_images(tmp_path: Path) -> None:
    np.save(tmp_path / "t.npy", np.ones((4, 3), dtype=np.float64))
    table = load_path(tmp_path / "t.npy").train
    assert table.kind == "table" and table.x.shape == (4, 3) and table.max_level is None
    np.save(tmp_path / "i.npy", np.ones((2, 3, 4, 4), dtype=np.float32))
    images = load_path(tmp_path / "i.npy").train
    assert images.kind == "image" and images.x.shape == (2, 3, 4, 4) and images.max_level is None


def test_npz_with_labels_and_bool_images(tmp_path: Path) -> None:
    x = np.zeros((4, 6, 6), dtype=bool)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 1, 2], dtype=np.int32))
    data = load_path(tmp_path / "d.npz").train
    assert data.x.dtype == np.uint8 and data.max_level == 1 and data.x.shape == (4, 1, 6, 6)
    assert data.y.dtype == np.int64 and data.y.tolist() == [0, 1, 1, 2]


def test_npz_without_x_lists_keys(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", a=np.zeros(3), b=np.zeros(3))
    with pytest.raises(DataError, match=r"d\.npz': no array 'x' \(keys present: 'a', 'b'\)"):
        load_path(tmp_path / "d.npz")


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros(5), None, r"shape \(5,\), expected \(N, D\)"),
        (np.zeros((2, 2, 2, 2, 2)), None, r"shape \(2, 2, 2, 2, 2\)"),
        (np.zeros((3, 2), dtype=np.complex64), None, r"dtype complex64, expected integer"),
        (np.zeros((0, 4)), None, r"no empty axis"),
        (np.zeros((3, 2)), np.zeros(4, dtype=int), r"'y' has shape \(4,\), expected \(3,\)"),
        (np.zeros((3, 2)), np.zeros((3, 1), dtype=int), r"'y' has shape \(3, 1\)"),
        (np.zeros((3, 2)), np.zeros(3), r"'y' has dtype float64, expected integer"),
        (np.zeros((3, 2)), np.array([0, -1, 2]), r"'y' holds -1, expected labels >= 0"),
    ],
)
def test_bad_arrays(tmp_path: Path, x: np.ndarray, y: np.ndarray | None, message: str) -> None:
    arrays = {"x": x} if y is None else {"x": x, "y": y}
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_path(tmp_path / "d.npz")


def test_object_arrays_are_refused_not_unpickled(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"o\.npy': holds Python objects"):
        load_path(tmp_path / "o.npy")
    np.savez(tmp_path / "o.npz", x=np.array([[1], None], dtype=object))
    with pytest.raises(DataError, match=r"o\.npz': holds Python objects"):
        load_path(tmp_path / "o.npz")


def test_corrupt_and_mismatched_numpy_files(tmp_path: Path) -> None:
    (tmp_path / "bad.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"bad\.npy': not a NumPy file"):
        load_path(tmp_path / "bad.npy")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(DataError, match=r"bad\.npz': cannot be read"):
        load_path(tmp_path / "bad.npz")
    np.save(tmp_path / "one.npy", np.zeros((2, 2)))
    (tmp_path / "one.npz").write_bytes((tmp_path / "one.npy").read_bytes())
    with pytest.raises(DataError, match=r"one\.npz': holds one array"):
        load_path(tmp_path / "one.npz")


def test_unknown_path_and_type(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"neither a dataset name .* nor an existing path"):
        load_path(tmp_path / "absent.npz")
    (tmp_path / "d.xyz").write_text("1")
    with pytest.raises(DataError, match=r"unsupported type '\.xyz'"):
        load_path(tmp_path / "d.xyz")


# ------------------------------------------------------------------------------- image folder


def save_image(path: Path, mode: str, size: tuple[int, int], value: int | tuple[int, ...]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)  # size is (W, H)


def test_class_folders_become_labels(tmp_path: Path) -> None:
    save_image(tmp_path / "cat" / "a.png", "L", (5, 4), 10)
    save_image(tmp_path / "cat" / "b.png", "L", (5, 4), 20)
    save_image(tmp_path / "ant" / "c.png", "L", (5, 4), 30)
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    data = load_path(tmp_path).train
    assert data.x.shape == (3, 1, 4, 5) and data.x.dtype == np.uint8 and data.max_level == 255
    assert data.class_names == ["ant", "cat"]
    assert data.y.tolist() == [0, 1, 1]
    assert data.x[:, 0, 0, 0].tolist() == [30, 10, 20]


def test_flat_folder_rgb_and_forced_grayscale(tmp_path: Path) -> None:
    save_image(tmp_path / "a.png", "RGB", (3, 3), (200, 100, 50))
    save_image(tmp_path / "b.jpg", "L", (3, 3), 7)
    data = load_path(tmp_path).train
    assert data.y is None and data.class_names is None
    assert data.x.shape == (2, 3, 3, 3)
    assert data.x[0, :, 1, 1].tolist() == [200, 100, 50]
    assert load_path(tmp_path, grayscale=True).train.x.shape == (2, 1, 3, 3)


def test_mixed_sizes_need_image_size(tmp_path: Path) -> None:
    save_image(tmp_path / "a.png", "L", (4, 4), 0)
    save_image(tmp_path / "b.png", "L", (6, 5), 0)
    with pytest.raises(DataError, match=r"'.*b\.png' is 5x6 \(HxW\).*data\.image_size=\[H,W\]"):
        load_path(tmp_path)
    resized = load_path(tmp_path, image_size=(8, 7)).train
    assert resized.x.shape == (2, 1, 8, 7)


def test_unreadable_image_and_empty_folder(tmp_path: Path) -> None:
    save_image(tmp_path / "a.png", "L", (4, 4), 0)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"image file '.*broken\.png': cannot be read as an image"):
        load_path(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"image folder '.*empty': no images"):
        load_path(empty)


# ------------------------------------------------------------------------------------- tables


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_with_header_and_label_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", "a,label,b\n1,dog,2\n3,cat,\n5,dog,6.5\n")
    data = load_path(path, label_column="label").train
    assert data.kind == "table" and data.x.dtype == np.float64 and data.x.shape == (3, 2)
    assert data.feature_names == ["a", "b"]
    assert data.class_names == ["cat", "dog"] and data.y.tolist() == [1, 0, 1]
    assert np.isnan(data.x[1, 1]) and data.x[2, 1] == 6.5


@pytest.mark.parametrize("separator", [";", "\t", "|"], ids=["semicolon", "tab", "bar"])
def test_a_csv_separated_otherwise_reads_as_its_columns(tmp_path: Path, separator: str) -> None:
    """Issue 17: a semicolon-separated CSV trained as one text column. The wine table written with
    another separator reads exactly as with commas (a decimal comma stays text, never a split)."""
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).frame.head(40)
    lines = [",".join(wine.columns), *(",".join(f"{v:g}" for v in row) for row in wine.to_numpy())]
    commas = load_path(write_csv(tmp_path / "comma.csv", "\n".join(lines) + "\n"), label_column="target").train
    other = load_path(write_csv(tmp_path / "other.csv", "\n".join(line.replace(",", separator) for line in lines)
                                + "\n"), label_column="target").train
    assert other.feature_names == commas.feature_names and len(other.feature_names) == 13
    np.testing.assert_array_equal(other.x, commas.x)
    assert other.y.tolist() == commas.y.tolist()
    european = load_path(write_csv(tmp_path / "eu.csv", "a;b\n1,5;2\n2,5;3\n")).train
    assert european.feature_names == ["a", "b"] and european.x[:, 0].tolist() == ["1,5", "2,5"]


def test_csv_numeric_labels_sort_numerically(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", "x,y\n0,10\n1,2\n2,1\n")
    data = load_path(path, label_column="y").train
    assert data.class_names == ["1", "2", "10"] and data.y.tolist() == [2, 1, 0]


def test_csv_without_header(tmp_path: Path) -> None:
    data = load_path(write_csv(tmp_path / "t.csv", "1,2,3\n\n4,5,6\n")).train
    assert data.feature_names is None and data.y is None
    np.testing.assert_array_equal(data.x, [[1, 2, 3], [4, 5, 6]])


def test_csv_text_columns_stay_text_for_the_spec(tmp_path: Path) -> None:
    data = load_path(write_csv(tmp_path / "t.csv", "a,b\n1,abc\n2,\n,xyz\n")).train
    assert data.x.dtype == object
    assert data.x[:, 1].tolist() == ["abc", None, "xyz"]  # an empty text cell is missing
    assert data.x[0, 0] == 1.0 and np.isnan(data.x[2, 0])


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("a,b,c\n1,2,3\n4,5\n", {}, r"t\.csv': row 3 has 2 columns, expected 3"),
        ("a,b\n1,2\n", {"label_column": "label"}, r"no column 'label'.*columns: a, b"),
        ("1,2\n", {"label_column": "label"}, r"needs a header row"),
        ("a,b\n", {}, r"a header but no data rows"),
        ("\n\n", {}, r"t\.csv': empty"),
        ("a,b\n1,\n", {"label_column": "b"}, r"row 2: empty label in column 'b'"),
        ("a\n1\n", {"label_column": "a"}, r"no feature columns"),
    ],
)
def test_bad_csv(tmp_path: Path, text: str, options: dict, message: str) -> None:
    path = write_csv(tmp_path / "t.csv", text)
    with pytest.raises(DataError, match=message):
        load_path(path, **options)


def test_csv_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b\n\xff\xfe,1\n")
    with pytest.raises(DataError, match=r"t\.csv': not UTF-8"):
        load_path(path)


def test_parquet_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("pyarrow", "pyarrow.parquet", "pyarrow.compute"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    with pytest.raises(DataError, match=r"needs pyarrow: pip install 'vaekit\[parquet\]'"):
        load_path(tmp_path / "t.parquet")


def test_parquet_table(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"a": [1, 2, None], "kind": ["x", "y", "x"], "b": [0.5, 1.5, 2.5]})
    pq.write_table(table, tmp_path / "t.parquet")
    data = load_path(tmp_path / "t.parquet", label_column="kind").train
    assert data.x.dtype == np.float64 and data.x.shape == (3, 2)
    assert data.feature_names == ["a", "b"] and np.isnan(data.x[2, 0])
    assert data.class_names == ["x", "y"] and data.y.tolist() == [0, 1, 0]
    pq.write_table(pa.table({"s": ["u", None]}), tmp_path / "s.parquet")  # text stays text, for the spec
    assert load_path(tmp_path / "s.parquet").train.x.tolist() == [["u"], [None]]
    pq.write_table(pa.table({"l": [[1, 2], [3]]}), tmp_path / "l.parquet")
    with pytest.raises(DataError, match=r"column 'l' has type list<.*>, expected numbers or text"):
        load_path(tmp_path / "l.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="cannot be read"):
        load_path(tmp_path / "bad.parquet")


def test_a_parquet_boolean_column_reads_as_true_and_false(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"x": [0.5, 1.5, 2.5, 3.5], "flag": pd.array([True, None, False, True], dtype="boolean")})
    frame.to_parquet(tmp_path / "t.parquet")
    raw = load_path(tmp_path / "t.parquet").train
    assert list(raw.x[:, 1]) == ["True", None, "False", "True"]  # as a CSV's text, never 1.0 / 0.0
    assert raw.x[0, 0] == 0.5
