"""The latents of a whole image folder, streamed to sharded safetensors files (``vaekit encode --out FOLDER``),
as latent-diffusion training reads them.

The folder written::

    manifest.json               what was encoded: the run (its weights' SHA-256), the data folder, the
                                image files (relative to it, in order), their sizes (width, height),
                                labels and class names (one subfolder per class), latent_shape,
                                latent_scaling, the tensors and the shards with their item counts
    shard-00000.safetensors     up to ``shard_size`` items: ``mean`` (n, *latent_shape) float32,
    shard-00001.safetensors     ``logvar`` (when the posterior has one), ``sample`` (a seeded draw, with
    ...                         ``sample=True``), ``index`` (n,) int64: positions in the manifest's file
                                list, and ``label`` (n,) int64 when the folder has classes

A diffusion model trains on ``latents = (mean - shift_factor) * scaling_factor`` (``latent_scaling``
in the manifest: a shift of None or absent is 0, a scaling absent is 1; an ordinary VAE has neither).

Images are read a batch at a time and the latents leave memory shard by shard, so memory does not grow
with the folder. Every image must have the run's size (C, H, W): another size is a DataError naming the
file, unless ``resize`` (bilinear, as ``data.image_size`` resizes in training). All headers are read
before anything is written. Each shard is written atomically, so a shard whose file exists is whole:
run the same command again after an interruption and it skips those (the manifest must match: the
same run weights, files, sizes and options; anything else is refused), giving the same bytes as an
uninterrupted run.

Larger images than the run's (a kl-f run only: its autoencoder is fully convolutional): ``size``
reads every image at that size, and ``tile`` encodes it through overlapping tiles (``ldm_runs.AnySize``),
so memory follows the tile, not the image. :func:`decode_folder` turns such a folder back into images,
one PNG per encoded file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vaekit.data.loaders import centre_window
from vaekit.data.sources.image_folder import image_headers, index_folder, is_grey, read_image
from vaekit.distributions.posteriors import DiagonalGaussian
from vaekit.errors import ConfigError, DataError
from vaekit.files import FolderLock, atomic_save_tensors, atomic_write_json, sweep_partial_writes
from vaekit.training.callbacks import progress_bar

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "vaekit-latents/1"
# The manifest fields a resumed run must share with the folder's: anything else would mix two encodings.
SAME = ("run_sha256", "files", "sizes", "labels", "class_names", "latent_shape", "tensors", "shard_size",
        "resize", "seed", "size", "tile", "overlap")


@dataclass
class Summary:
    """What :func:`encode_folder` did: ``items`` in ``shards`` files, ``written`` now, ``skipped``
    (already there), in ``seconds``."""

    out: Path
    items: int
    shards: int
    written: int
    skipped: int
    seconds: float


def shard_name(k: int) -> str:
    return f"shard-{k:05d}.safetensors"


def weights_sha256(model: torch.nn.Module) -> str:
    """A fingerprint of the model's weights (names, shapes, dtypes and bytes), whatever file they came from."""
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        tensor = value.detach().to("cpu").contiguous().reshape(-1)  # 1-d: a 0-d buffer cannot be viewed as bytes
        digest.update(f"{name}:{tuple(value.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _conditions(run: Any, labels: np.ndarray | None, class_names: list[str] | None, data: Path) -> np.ndarray | None:
    """The condition (class index of the run) of every image when the run is conditional, else None;
    the folder's class subfolders are matched to the run's classes by name."""
    if not run.model.condition_dim:
        return None
    if labels is None:
        raise DataError(f"--data '{data}': this run is conditional and needs one subfolder per class; "
                        "these images have none")
    known = run.spec.class_names
    if known:
        unknown = [name for name in class_names if name not in known]
        if unknown:
            raise DataError(f"--data '{data}': class folder '{unknown[0]}' is not one of the run's classes "
                            f"({', '.join(known)})")
        return np.array([known.index(name) for name in class_names], dtype=np.int64)[labels]
    if len(class_names) > run.model.condition_dim:
        raise DataError(f"--data '{data}': {len(class_names)} class folders but the run has "
                        f"{run.model.condition_dim} classes")
    return labels


def read_size(run: Any, resize: bool, size: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """The (H, W) images are read at: ``size`` when given, else as training read them:
    ``data.image_size``, else the run's size (equal already, or resized); None for a run trained on
    crops without resizing: each image at its own size, then centre-cropped (:func:`_batch`)."""
    if size is not None:
        return size
    if run.config.data.image_size is not None:
        return tuple(run.config.data.image_size)
    if resize or run.config.data.crop is None:
        return tuple(run.spec.shape[1:])
    return None


def _check_images(run: Any, files: list[Path], headers: list[tuple[str, tuple[int, int]]], resize: bool,
                  size: tuple[int, int] | None) -> bool:
    """Every image against the run's (C, H, W) (any size is resized to ``size``); returns whether the
    run reads them as grey."""
    channels, height, width = run.spec.shape
    grey = channels == 1
    forced_grey = bool(run.config.data.grayscale)
    read = read_size(run, resize or size is not None, size)
    for path, (mode, found) in zip(files, headers, strict=True):
        if grey and not forced_grey and not is_grey(mode):
            raise DataError(f"image file '{path}': a colour image (mode {mode}) but this run was trained on "
                            "grey images; convert it to grey (mode L)")
        if read is None and (found[0] < height or found[1] < width):
            raise DataError(f"image file '{path}': {found[1]}x{found[0]} pixels (WxH), smaller than the run's "
                            f"{width}x{height} crop; pass --resize to resize every image to that size")
        if read is not None and found != read and not resize and size is None:
            raise DataError(f"image file '{path}': {found[1]}x{found[0]} pixels (WxH) but the run takes "
                            f"{width}x{height}; pass --resize to resize every image to that size")
    greys = 0 if grey else sum(is_grey(mode) for mode, _ in headers)
    if greys:
        log.info("%d of the %d images are grey: read as colour images with three equal channels (this run was "
                 "trained on colour images)", greys, len(headers))
    return grey


@torch.no_grad()
def _plan(run: Any, data: Path, shard_size: int, resize: bool, sample: bool, seed: int,
          large: Any) -> tuple[dict[str, Any], list[Path], np.ndarray | None]:
    """The manifest of this encoding, the image files and their conditions (nothing read beyond the
    image headers and the first image, nothing written)."""
    refused = run.spec.data_kind.unsupported(run.spec, "upload")
    if refused:
        raise DataError(f"--data '{data}': an image folder needs a run trained on images ({refused})")
    files, labels, class_names = index_folder(data)
    headers = image_headers(files)
    size = None if large is None else large.size
    grey = _check_images(run, files, headers, resize, size)
    conditions = _conditions(run, labels, class_names, data)
    first = _batch(run, files[:1], [headers[0][1]], grey, data, resize, size)
    if large is None:
        probe = run.model.encode(first, None if conditions is None else torch.as_tensor(conditions[:1],
                                                                                        device=run.device))
        has_logvar, latent_shape = isinstance(probe, DiagonalGaussian), list(run.model.latent_shape)
    else:
        has_logvar, latent_shape = True, list(large.encode(first).mean.shape[1:])
    tensors = ["mean"] + (["logvar"] if has_logvar else [])
    if sample:
        if "logvar" not in tensors:
            raise ConfigError("--sample: this run's code is deterministic (no log-variance); its mean is the code")
        tensors.append("sample")
    n = len(files)
    plan = {
        "format": FORMAT,
        "run": None if run.path is None else str(Path(run.path).resolve()),
        "run_sha256": weights_sha256(run.model),
        "data": str(data.resolve()),
        "files": [path.relative_to(data).as_posix() for path in files],
        "sizes": [[width, height] for _, (height, width) in headers],
        "labels": None if labels is None else labels.tolist(),
        "class_names": class_names,
        "image_shape": [run.spec.shape[0], *(size or run.spec.shape[1:])],
        "latent_shape": latent_shape,
        "latent_scaling": dict(run.model.latent_scaling),
        "latents": "latents = (mean - shift_factor) * scaling_factor (no shift when None or absent, "
                   "no scaling when absent)",
        "tensors": tensors + ["index"] + ([] if labels is None else ["label"]),
        "shard_size": shard_size,
        "resize": resize,
        "seed": seed if sample else None,
        "size": None if size is None else list(size),
        "tile": None if large is None else large.tile,
        "overlap": None if large is None else large.overlap,
        "shards": [{"file": shard_name(k), "start": start, "count": min(shard_size, n - start)}
                   for k, start in enumerate(range(0, n, shard_size))],
        "items": n,
        "complete": False,
    }
    return plan, files, conditions


def _batch(run: Any, files: list[Path], sizes: list[tuple[int, int]], grey: bool, data: Path,
           resize: bool, size: tuple[int, int] | None = None) -> Tensor:
    """Some image files (their (H, W) ``sizes``) -> the model's input (B, C, H, W) on the run's device:
    read as training read them (:func:`read_size`; :func:`_check_images` made sure a size fits), and
    centre-cropped for a run trained on crops; at ``size`` when given (no crop)."""
    read, crop = read_size(run, resize, size), None if size is not None else run.config.data.crop
    images = [read_image(path, grey, read or own) for path, own in zip(files, sizes, strict=True)]
    if crop is not None:
        images = [centre_window(image, tuple(crop), str(path)) for path, image in zip(files, images, strict=True)]
    x = np.stack(images)  # uint8 (B, C, H, W)
    spec = run.spec if size is None else replace(run.spec, shape=[run.spec.shape[0], *size])  # a kl-f run's any size
    return spec.transform(x, name=str(data), check_range=True).to(run.device)


def _existing(out: Path, plan: dict[str, Any]) -> bool:
    """Whether ``out`` holds latents of this same encoding (resume); refuses any other non-empty folder."""
    if out.exists() and not out.is_dir():
        raise DataError(f"--out '{out}' is a file; expected a folder for the latents")
    if not out.exists():
        return False
    if all(path.name.startswith(".") and path.name.endswith(".tmp") for path in out.iterdir()):
        return False  # empty, or only what a write killed before the first manifest left
    manifest = out / MANIFEST
    try:
        found = json.loads(manifest.read_text())
    except (OSError, ValueError):
        raise DataError(f"--out '{out}' is a folder that is not empty and holds no latents ({MANIFEST}); "
                        "choose another --out") from None
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise DataError(f"--out '{out}': {MANIFEST} is not a vaekit latents manifest; choose another --out")
    differ = [key for key in SAME if found.get(key) != plan[key]]
    if differ:
        what = {"run_sha256": "run weights"}.get(differ[0], differ[0])
        raise DataError(f"--out '{out}' holds latents of another encoding (its {what} differ); choose another "
                        "--out or remove that folder")
    return True


@torch.no_grad()
def _encode_shard(run: Any, files: list[Path], start: int, count: int, plan: dict[str, Any],
                  conditions: np.ndarray | None, batch_size: int, data: Path, k: int, bar: Any,
                  large: Any) -> dict[str, Tensor]:
    """One shard's tensors: its images encoded ``batch_size`` at a time."""
    grey = run.spec.shape[0] == 1
    sizes = [(height, width) for width, height in plan["sizes"]]  # the manifest keeps (W, H)
    means, logvars = [], []
    for first in range(start, start + count, batch_size):
        last = min(first + batch_size, start + count)
        condition = None if conditions is None else torch.as_tensor(conditions[first:last], device=run.device)
        x = _batch(run, files[first:last], sizes[first:last], grey, data, plan["resize"],
                   None if large is None else large.size)
        qz = run.model.encode(x, condition) if large is None else large.encode(x)
        means.append(qz.mean.float().cpu())
        if "logvar" in plan["tensors"]:
            logvars.append(qz.logvar.float().cpu())
        if bar is not None:
            bar.update(last - first)
    shape = (count, *plan["latent_shape"])
    shard = {"mean": torch.cat(means).reshape(shape)}
    if logvars:
        shard["logvar"] = torch.cat(logvars).reshape(shape)
    if "sample" in plan["tensors"]:
        state = int(np.random.SeedSequence([plan["seed"], k]).generate_state(1)[0])  # one stream per shard
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(state))
        shard["sample"] = shard["mean"] + torch.exp(0.5 * shard["logvar"]) * noise
    shard["index"] = torch.arange(start, start + count, dtype=torch.int64)
    if plan["labels"] is not None:
        shard["label"] = torch.as_tensor(plan["labels"][start : start + count], dtype=torch.int64)
    return shard


def encode_folder(run: Any, data: str | Path, out: str | Path, *, shard_size: int = 1024, batch_size: int = 64,
                  resize: bool = False, sample: bool = False, seed: int = 0, progress: bool = False,
                  size: tuple[int, int] | None = None, tile: int | None = None,
                  overlap: int | None = None) -> Summary:
    """Encode every image under ``data`` (a flat folder, or one subfolder per class) with ``run`` into
    sharded safetensors latents in the folder ``out`` (see the module's text); resumes a folder an
    interrupted call left; a run trained with ``data.image_size`` resizes as it did. Bad input (a corrupt
    image, another size without ``resize``, a non-empty
    ``out`` that is not these latents) is a DataError before anything is written. ``size`` (H, W) and
    ``tile``/``overlap`` (pixels): a kl-f run's latents of every image read at that size, tiled."""
    data, out = Path(data), Path(out)
    if shard_size < 1 or batch_size < 1:
        raise ConfigError(f"shard_size {shard_size}, batch_size {batch_size}: expected at least 1")
    if not data.is_dir():
        raise DataError(f"--data '{data}': expected a folder of images")
    started = time.perf_counter()
    resize = resize or run.config.data.image_size is not None  # trained on resized images: read alike (read_size)
    large = _any_size(run, size, tile, overlap)
    plan, files, conditions = _plan(run, data, shard_size, resize, sample, seed, large)
    resuming = _existing(out, plan)
    with FolderLock(out):
        if resuming:
            sweep_partial_writes(out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / MANIFEST, plan)
        todo = [(k, shard) for k, shard in enumerate(plan["shards"]) if not (out / shard["file"]).is_file()]
        done = plan["items"] - sum(shard["count"] for _, shard in todo)
        bar = progress_bar(plan["items"], "encode", initial=done, unit="image") if progress else None
        try:
            for k, shard in todo:
                tensors = _encode_shard(run, files, shard["start"], shard["count"], plan, conditions, batch_size,
                                        data, k, bar, large)
                atomic_save_tensors(out / shard["file"], tensors, metadata={"format": FORMAT})
        finally:
            if bar is not None:
                bar.close()
        atomic_write_json(out / MANIFEST, {**plan, "complete": True})
    return Summary(out, plan["items"], len(plan["shards"]), len(todo), len(plan["shards"]) - len(todo),
                   time.perf_counter() - started)


def _any_size(run: Any, size: tuple[int, int] | None, tile: int | None, overlap: int | None,
              decoding: bool = False) -> Any:
    """The run's autoencoder at another size or tiled (``ldm_runs.AnySize``, with ``.size``), or None
    for neither (an encoding; decoding latents of another size than the run's always needs it)."""
    if size is None and tile is None and overlap is None and not decoding:
        return None
    from vaekit.ldm_runs import AnySize

    return AnySize(run.model, run.spec, run.config, tile, overlap, decoding, size=size or read_size(run, True))


def decode_folder(run: Any, latents: str | Path, out: str | Path, *, tile: int | None = None,
                  batch_size: int = 16, progress: bool = False) -> Summary:
    """The images of a latents folder (:func:`encode_folder`'s): each shard's means decoded, one PNG per
    encoded file under ``out`` with the file's relative path (suffix .png). Latents of another size than
    the run's (``--size``) and ``tile`` (exact: ``ldm_runs.AnySize``) need a kl-f run; files already
    written are kept (resume)."""
    from vaekit.data.kinds.pictures import png_bytes
    from vaekit.files import atomic_write_bytes

    latents, out = Path(latents), Path(out)
    try:
        manifest = json.loads((latents / MANIFEST).read_text())
    except (OSError, ValueError):
        raise DataError(f"--latents '{latents}': expected a folder of latents with {MANIFEST} "
                        "(written by vaekit encode --out FOLDER)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"--latents '{latents}': {MANIFEST} is not a vaekit latents manifest")
    if not manifest.get("complete"):
        raise DataError(f"--latents '{latents}': the encoding is not complete; run the same vaekit encode again")
    if manifest["run_sha256"] != weights_sha256(run.model):
        log.warning("--latents '%s' were encoded by other weights than this run's: decoded images will not match "
                    "the files", latents)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out '{out}' is a file; expected a folder for the images")
    shape = tuple(manifest["latent_shape"])
    same = shape == tuple(run.model.latent_shape) and tile is None
    large = None if same else _any_size(run, None, tile, None, decoding=True)
    spec = replace(run.spec, shape=[run.spec.shape[0], *manifest["image_shape"][1:]])
    started, written = time.perf_counter(), 0
    bar = progress_bar(manifest["items"], "decode", unit="image") if progress else None
    from safetensors.torch import load_file

    try:
        for shard in manifest["shards"]:
            names = [Path(manifest["files"][i]).with_suffix(".png")
                     for i in range(shard["start"], shard["start"] + shard["count"])]
            todo = [i for i, name in enumerate(names) if not (out / name).is_file()]
            if todo:
                mean = load_file(latents / shard["file"])["mean"]
                for first in range(0, len(todo), batch_size):
                    chosen = todo[first:first + batch_size]
                    z = mean[chosen].to(run.device)
                    x = run.decode(z.flatten(1)) if large is None else run.spec.inverse(large.decode(z))
                    for i, data in zip(chosen, png_bytes(spec, x.float().cpu()), strict=True):
                        (out / names[i]).parent.mkdir(parents=True, exist_ok=True)
                        atomic_write_bytes(out / names[i], data)
                    written += len(chosen)
            if bar is not None:
                bar.update(shard["count"])
    finally:
        if bar is not None:
            bar.close()
    return Summary(out, manifest["items"], len(manifest["shards"]), written, manifest["items"] - written,
                   time.perf_counter() - started)


def read_latents(out: str | Path) -> dict[str, Tensor]:
    """All the shards of a latents folder, concatenated in file order (for tests and small folders)."""
    from safetensors.torch import load_file

    manifest = json.loads((Path(out) / MANIFEST).read_text())
    parts = [load_file(Path(out) / shard["file"]) for shard in manifest["shards"]]
    return {name: torch.cat([part[name] for part in parts]) for name in parts[0]} if parts else {}
