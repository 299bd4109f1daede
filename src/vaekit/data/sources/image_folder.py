"""A folder of images as a source: one subfolder per class (sorted names), or a flat folder.

Images become uint8 (N, C, H, W) with ``max_level`` 255: one channel when every image is grey
(PIL mode ``L`` or ``1``) or ``data.grayscale`` is true, else RGB. ``data.image_size`` resizes;
without it every image must have the same size.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from vaekit.data.sources.base import PATH_LOADERS, RawData, Splits
from vaekit.errors import DataError
from vaekit.sections import DataConfig

logger = logging.getLogger(__name__)

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_GREY_MODES = ("L", "1")
_READ_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
UPLOAD_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")


def _images_in(folder: Path, recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        path
        for path in found
        if path.is_file() and path.suffix.lower() in EXTENSIONS and not path.name.startswith(".")
    )


def index_folder(root: Path) -> tuple[list[Path], np.ndarray | None, list[str] | None]:
    """List a folder's images and their labels.

    Returns
    -------
    tuple
        ``(files, labels, class_names)``; labels and names are ``None`` for a flat folder.
    """
    subfolders = sorted(
        path for path in root.iterdir() if path.is_dir() and not path.name.startswith(".")
    )
    classes = [(folder, _images_in(folder, recursive=True)) for folder in subfolders]
    classes = [(folder, files) for folder, files in classes if files]
    loose = _images_in(root, recursive=False)
    if not classes:
        if not loose:
            kinds = ", ".join(EXTENSIONS)
            raise DataError(
                f"image folder '{root}': no images; expected files ending in {kinds} directly "
                "inside it or in one subfolder per class"
            )
        return loose, None, None
    if loose:
        logger.warning(
            "image folder '%s': %d images outside the class subfolders are ignored",
            root,
            len(loose),
        )
    files = [path for _, paths in classes for path in paths]
    labels = np.concatenate(
        [np.full(len(paths), k, dtype=np.int64) for k, (_, paths) in enumerate(classes)]
    )
    return files, labels, [folder.name for folder, _ in classes]


def _unreadable(path: Path, error: Exception) -> DataError:
    return DataError(
        f"image file '{path}': cannot be read as an image ({error.__class__.__name__}); "
        f"expected one of {', '.join(EXTENSIONS)}"
    )


def image_headers(files: list[Path]) -> list[tuple[str, tuple[int, int]]]:
    """Mode and (H, W) of each file, from its header only (no pixels decoded); an unreadable file is
    a DataError naming it."""
    headers = []
    for path in files:
        try:
            with Image.open(path) as image:
                headers.append((image.mode, (image.height, image.width)))
        except _READ_ERRORS as error:
            raise _unreadable(path, error) from None
    return headers


def is_grey(mode: str) -> bool:
    """Whether a PIL mode holds one grey channel (``L`` or ``1``)."""
    return mode in _GREY_MODES


def read_image(path: Path, grey: bool, size: tuple[int, int]) -> np.ndarray:
    """One image file -> uint8 (1 or 3, H, W) at ``size`` (H, W), grey or RGB, resized (bilinear) when
    its size differs; an unreadable file is a DataError naming it."""
    height, width = size
    try:
        with Image.open(path) as image:
            image = image.convert("L" if grey else "RGB")
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image)  # (H, W) or (H, W, 3)
    except _READ_ERRORS as error:
        raise _unreadable(path, error) from None
    return pixels[None] if grey else pixels.transpose(2, 0, 1)


def load_image_folder(path: Path, config: DataConfig) -> Splits:
    """Read every image under ``path`` into one uint8 (N, C, H, W) array.

    Parameters
    ----------
    path
        A folder with one subfolder of images per class, or images directly inside.
    config
        ``image_size`` (H, W) resizes every image; ``grayscale`` forces 1 (True) or 3 (False)
        channels.

    Raises
    ------
    DataError
        No images, an unreadable image, or sizes that differ without ``data.image_size``.
    """
    files, labels, class_names = index_folder(path)
    headers = image_headers(files)
    grey = all(is_grey(mode) for mode, _ in headers) if config.grayscale is None else config.grayscale
    if config.image_size is not None:
        size = tuple(config.image_size)
    else:
        size = headers[0][1]
        for file, (_, shape) in zip(files, headers, strict=True):
            if shape != size:
                raise DataError(
                    f"image folder '{path}': '{file}' is {shape[0]}x{shape[1]} (HxW) but "
                    f"'{files[0]}' is {size[0]}x{size[1]}; pass --set data.image_size=[H,W] "
                    "to resize every image"
                )
    height, width = size
    x = np.empty((len(files), 1 if grey else 3, height, width), dtype=np.uint8)  # (N, C, H, W)
    for i, file in enumerate(files):
        x[i] = read_image(file, grey, (height, width))
    return Splits(
        train=RawData(x=x, y=labels, kind="image", max_level=255.0, class_names=class_names)
    )


def image_from_bytes(data: bytes, channels: int, size: tuple[int, int], max_pixels: int = 4_000_000,
                     what: str = "upload") -> np.ndarray:
    """One encoded image (PNG, JPEG, GIF, BMP or WebP; no other format is even tried) -> uint8
    (channels, H, W) at ``size`` (H, W), grey or RGB, resized if needed. Larger than ``max_pixels``
    before resizing, or not an image: a DataError (the header is checked before any pixel is decoded)."""
    import io

    try:
        with Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS) as image:
            if image.width * image.height > max_pixels:
                raise DataError(f"{what}: {image.width}x{image.height} pixels, expected at most {max_pixels:,}")
            image = image.convert("L" if channels == 1 else "RGB")
            height, width = size
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image)  # (H, W) or (H, W, 3)
    except DataError:
        raise  # the size cap's own message (a DataError is also a ValueError, one of the read errors)
    except _READ_ERRORS as error:
        raise DataError(f"{what}: not a readable image ({error.__class__.__name__})") from None
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


PATH_LOADERS.add("folder", load_image_folder)
