"""Figures: image grids (samples, reconstructions) and training curves, written as PNG."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
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


def save_images(spec: DataSpec, images: Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Data-unit images (N, C, H, W) -> a PNG grid."""
    if spec.kind != "image":
        raise DataError(f"{str(path)!r}: this model's data are tables, not images; write .npy or .csv")
    return save_png(image_grid(to_unit(spec, images.cpu()), nrow, scale=display_scale(spec)), path)


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
