"""Figures: image grids (samples, reconstructions) and training curves, written as PNG; which items
of a data file a figure shows, and how to name them."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from vaekit.data.spec import DataSpec
from vaekit.errors import DataError
from vaekit.files import atomic_write_bytes


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


def pick_items(count: int, n: int, seed: int) -> np.ndarray:
    """Which of ``count`` items to show when there is room for ``n``: all of them, in file order, when
    they fit, else a seeded random ``n`` (sorted). Files are often sorted by label, so the first ``n``
    items would all be one class."""
    if n >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, n, replace=False))


def label_names(indices: Sequence[int], labels: np.ndarray | None,
                class_names: Sequence[str] | None) -> list[str] | None:
    """The labels of the items at ``indices`` by class name where there is one, else None when the
    data have no labels."""
    if labels is None:
        return None
    names = list(class_names or [])
    return [names[y] if 0 <= y < len(names) else str(y) for y in (int(labels[i]) for i in indices)]


def describe_items(indices: Sequence[int], count: int, labels: np.ndarray | None = None,
                   class_names: Sequence[str] | None = None, limit: int = 32) -> str:
    """"items 812, 3, 1290 (labels 3, 0, 7)": which of ``count`` items a figure shows, the first
    ``limit`` of them listed."""
    indices = [int(i) for i in indices]
    if len(indices) == count > limit and indices == list(range(count)):
        return f"all {count} items, in file order"
    more = f", ... ({len(indices)} in all)" if len(indices) > limit else ""
    text = f"item{'s' if len(indices) != 1 else ''} {', '.join(map(str, indices[:limit]))}{more}"
    names = label_names(indices[:limit], labels, class_names)
    if names is not None:
        text += f" (label{'s' if len(names) != 1 else ''} {', '.join(names)}{more and ', ...'})"
    return text


def item_captions(indices: Sequence[int], labels: np.ndarray | None = None,
                  class_names: Sequence[str] | None = None) -> list[str]:
    """One caption per item for the side of a figure's row: "#812: 3", or "#812" without labels."""
    names = label_names(indices, labels, class_names)
    return [f"#{int(i)}" + ("" if names is None else f": {name}") for i, name in
            zip(indices, names or [None] * len(indices), strict=True)]


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


def molecule_svg(smiles: str, size: int = 180) -> str | None:
    """A molecule drawn as SVG text by RDKit (the chem extra), or None when RDKit is not installed
    or the string is not a valid molecule."""
    try:
        from rdkit import Chem, RDLogger
        from rdkit.Chem.Draw import rdMolDraw2D
    except ImportError:
        return None
    RDLogger.DisableLog("rdApp.*")  # an invalid sample is expected, not worth a log line
    molecule = Chem.MolFromSmiles(smiles) if smiles else None
    if molecule is None:
        return None
    drawer = rdMolDraw2D.MolDraw2DSVG(size, size)
    drawer.DrawMolecule(molecule)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


def save_images(spec: DataSpec, images: Tensor, path: str | Path, nrow: int | None = None,
                row_captions: Sequence[str] | None = None) -> Path:
    """Data-unit images (N, C, H, W) -> a PNG grid, with ``row_captions`` (one per row) on its left."""
    if spec.kind != "image":
        raise DataError(f"{str(path)!r}: this model's data are tables, not images; write .npy or .csv")
    scale, padding = display_scale(spec), 2
    picture = image_grid(to_unit(spec, images.cpu()), nrow, padding, scale)
    if row_captions:
        row_height = (spec.shape[-2] + padding) * scale
        picture = with_row_captions(picture, row_captions, row_height, padding * scale)
    return save_png(picture, path)


def save_gif(spec: DataSpec, frames: Tensor, path: str | Path, frame_ms: int = 120, bounce: bool = True) -> Path:
    """Data-unit images (N, C, H, W) -> an endlessly looping animated GIF, one image per frame;
    ``bounce`` plays the frames forward then back, so an interpolation returns to its start."""
    import io

    if spec.kind != "image":
        raise DataError(f"{str(path)!r}: this model's data are tables, not images; write .npy or .csv")
    unit = to_unit(spec, frames.cpu())
    pictures = [image_grid(frame[None], 1, padding=0, scale=display_scale(spec) * 2) for frame in unit]
    if bounce and len(pictures) > 2:
        pictures = pictures + pictures[-2:0:-1]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0)
    return atomic_write_bytes(path, buffer.getvalue())


def save_array(values: Tensor | np.ndarray, path: str | Path, header: list[str] | None = None) -> Path:
    """Write .npy (no pickle) or .csv, atomically."""
    import io

    path = Path(path)
    array = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
    buffer = io.BytesIO()
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(buffer, array, allow_pickle=False)
    elif suffix == ".csv" and array.dtype == object:  # a table with text (category) columns
        import csv

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


def save_history_plot(history: list[dict[str, float]], path: str | Path) -> Path:
    """Training (and validation) loss per epoch."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.2), dpi=120)
    epochs = [row["epoch"] for row in history]
    for key, label in (("loss", "train -ELBO"), ("val_loss", "validation -ELBO")):
        if any(key in row for row in history):
            axis.plot(epochs, [row.get(key, math.nan) for row in history], label=label)
    axis.set_xlabel("epoch")
    axis.set_ylabel("nats per sample")
    axis.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())
