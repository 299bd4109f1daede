"""Pictures of image data (PIL): grids, captions, PNG and GIF files, each image at its own size."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from vaekit.errors import DataError
from vaekit.files import atomic_write_bytes

if TYPE_CHECKING:
    from vaekit.data.spec import DataSpec


def to_unit(spec: DataSpec, x: Tensor) -> Tensor:
    """Data-unit images -> [0, 1] for display (divide by the format's full scale, else min-max)."""
    x = x.float()
    if spec.max_level:
        return (x / spec.max_level).clamp(0, 1)
    low, high = x.min(), x.max()
    return (x - low) / (high - low).clamp_min(1e-8)


def image_grid(images: Tensor, nrow: int | None = None, padding: int = 2, scale: int = 1) -> Image.Image:
    """(N, C, H, W) in [0, 1] -> one PIL image, ``nrow`` images per row, upscaled ``scale`` times."""
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = torch.ones(c, rows * (h + padding) + padding, nrow * (w + padding) + padding)
    for i in range(n):
        top, left = padding + (i // nrow) * (h + padding), padding + (i % nrow) * (w + padding)
        grid[:, top : top + h, left : left + w] = images[i]
    array = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(array[:, :, 0] if c == 1 else array[:, :, :3])
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST) if scale > 1 else picture


def with_row_captions(picture: Image.Image, captions: Sequence[str], row_height: int, top: int) -> Image.Image:
    """``picture`` with a white margin on its left holding ``captions[i]`` beside row ``i`` (rows
    ``row_height`` pixels apart, the first ``top`` pixels down)."""
    font = ImageFont.load_default()
    width = max(int(font.getlength(text)) for text in captions) + 8
    out = Image.new(picture.mode, (picture.width + width, picture.height), "white")
    out.paste(picture, (width, 0))
    draw = ImageDraw.Draw(out)
    for row, text in enumerate(captions):
        draw.text((4, top + row * row_height + row_height // 2), text, fill="black", font=font, anchor="lm")
    return out


def display_scale(spec: DataSpec) -> int:
    """Upscale small images so an 8x8 grid is still legible."""
    return max(1, 64 // max(spec.shape[-2:]))


def save_png(picture: Image.Image, path: str | Path) -> Path:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())


def png_bytes(spec: DataSpec, images: Tensor) -> list[bytes]:
    """Data-unit images (N, C, H, W) -> one PNG file's bytes each, at their own size."""
    out = []
    for picture in to_unit(spec, images.detach().cpu()):
        buffer = io.BytesIO()
        image_grid(picture[None], nrow=1, padding=0).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def save_images(spec: DataSpec, images: Tensor, path: str | Path, nrow: int | None = None,
                row_captions: Sequence[str] | None = None) -> Path:
    """Data-unit images (N, C, H, W) -> a PNG grid, with ``row_captions`` (one per row) on its left."""
    _refuse_other_data(spec, path)
    scale, padding = display_scale(spec), 2
    picture = image_grid(to_unit(spec, images.cpu()), nrow, padding, scale)
    if row_captions:
        row_height = (spec.shape[-2] + padding) * scale
        picture = with_row_captions(picture, row_captions, row_height, padding * scale)
    return save_png(picture, path)


def save_gif(spec: DataSpec, frames: Tensor, path: str | Path, frame_ms: int = 120, bounce: bool = True) -> Path:
    """Data-unit images (N, C, H, W) -> an endlessly looping animated GIF, one image per frame;
    ``bounce`` plays the frames forward then back, so an interpolation returns to its start."""
    _refuse_other_data(spec, path)
    unit = to_unit(spec, frames.cpu())
    pictures = [image_grid(frame[None], 1, padding=0, scale=display_scale(spec) * 2) for frame in unit]
    if bounce and len(pictures) > 2:
        pictures = pictures + pictures[-2:0:-1]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0)
    return atomic_write_bytes(path, buffer.getvalue())


def _refuse_other_data(spec: DataSpec, path: str | Path) -> None:
    refused = spec.data_kind.unsupported(spec, "figures")
    if refused:
        raise DataError(f"{str(path)!r}: {refused}")
