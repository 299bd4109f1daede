"""vaekit reconstruct, vaekit encode, vaekit optimize"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from vaekit.cli.common import (
    check_not_below_a_file,
    check_suffix,
    choose_items,
    claim,
    example,
    labels_of,
    load_inputs,
    load_run,
    output_for,
    prints_lines,
    say_items,
    write_output,
    write_texts,
)

log = logging.getLogger("vaekit")


@example("vaekit reconstruct runs/fm --n 16 --out recon.png")
def reconstruct(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    data: str = typer.Option(None, "--data", help="Inputs (dataset name or path); default the run's test split."),
    n: int = typer.Option(None, "--n", min=1, max=10_000, help="How many inputs (default 16): a seeded random "
                          "choice, or all of them in file order when there are no more."),
    indices: str = typer.Option(None, "--indices", help="These inputs instead, comma-separated indices (3,17,42)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the choice of inputs."),
    out: Path = typer.Option(None, "--out", help="FILE.png (originals above reconstructions), .npy or .csv."),
) -> None:
    """Reconstruct inputs: originals beside their reconstructions."""
    import torch

    from vaekit.applications.visualize import save_images
    from vaekit.errors import DataError

    run = load_run(run_dir)
    out = output_for(run, out, "reconstructions", (".png", ".npy", ".csv"))
    refused = out is not None and out.suffix.lower() == ".png" and run.spec.data_kind.unsupported(run.spec, "png")
    if refused:  # before any work
        raise DataError(f"--out {str(out)!r}: {refused}")
    inputs = load_inputs(run, data, "test")
    chosen = choose_items(inputs, n, 16, seed, indices)
    x = inputs.x[chosen]
    labels = labels_of(run, inputs, data or "test split")
    recon = run.reconstruct(x, name=data or "test split", condition=None if labels is None else labels[chosen])
    if prints_lines(run, out):
        pairs = zip(x, run.spec.to_text(recon), strict=True)  # text or molecules: "input -> reconstruction"
        write_texts([f"{original}\t{decoded}" for original, decoded in pairs], out)
    elif out.suffix.lower() == ".png":
        original = torch.as_tensor(x, dtype=torch.float32)
        nrow = min(len(x), 16)
        rows = [torch.cat([original[i : i + nrow], recon[i : i + nrow].cpu()]) for i in range(0, len(x), nrow)]
        save_images(run.spec, torch.cat(rows), out, nrow=nrow)
        log.info("wrote %s", out)
    else:
        write_output(run, recon, out)
    say_items(run, inputs, chosen)


@example("vaekit encode runs/fm --data fashion-mnist --out codes.npy")
def encode(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    data: str = typer.Option(None, "--data", help="Inputs (dataset name or path); default all of the run's data."),
    split: str = typer.Option("all", "--split", help="For datasets with an official split: train, test or all."),
    out: Path = typer.Option(..., "--out", help="FILE.npy: (N, 2, L) means and log-variances, or (N, L) means "
                             "for a deterministic code; FILE.csv: columns mean_*, logvar_* (and label); FOLDER "
                             "(no suffix): the latents of the image folder --data, streamed into "
                             "shard-NNNNN.safetensors files and manifest.json (resumable)."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Inputs per forward pass (default 1024; "
                                   "64 images for --out FOLDER)."),
    shard_size: int = typer.Option(None, "--shard-size", min=1, help="--out FOLDER: items per shard file "
                                   "(default 1024)."),
    resize: bool = typer.Option(False, "--resize", help="--out FOLDER: resize every image to the run's size "
                                "(bilinear); without it another size is an error."),
    sample: bool = typer.Option(False, "--sample", help="--out FOLDER: also store a draw z ~ q(z|x) per image."),
    seed: int = typer.Option(0, "--seed", help="--out FOLDER with --sample: seed of the draws."),
    size: str = typer.Option(None, "--size", help="--out FOLDER, a kl-f run: read every image at this size, "
                             "WxH (e.g. 512x512; sides multiples of f), not the run's."),
    tile: int = typer.Option(None, "--tile", help="--out FOLDER, a kl-f run: encode through overlapping tiles "
                             "of this many pixels a side (memory follows the tile; the output changes a little)."),
    overlap: int = typer.Option(None, "--overlap", help="--tile's overlap in pixels (default a quarter tile)."),
) -> None:
    """Encode inputs to their posterior means and log-variances; a folder of images to sharded
    safetensors latents (for latent-diffusion training: latents = (mean - shift) * scaling, from
    manifest.json's latent_scaling), e.g. vaekit encode runs/ldm --data photos/ --out latents/.
    Run it again after an interruption: finished shards are kept."""
    import numpy as np
    import torch

    from vaekit.applications.visualize import save_array
    from vaekit.errors import ConfigError

    if split not in ("train", "test", "all"):
        raise ConfigError(f"--split {split!r}: expected train, test or all")
    if out.suffix == "" or out.is_dir():
        return _encode_folder(run_dir, data, split, out, batch_size, shard_size, resize, sample, seed,
                              (size, tile, overlap))
    if shard_size is not None or resize or sample or size or tile is not None or overlap is not None:
        raise ConfigError("--shard-size, --resize, --sample, --size, --tile and --overlap are for --out FOLDER "
                          "(latents of an image folder)")
    check_suffix(out, (".npy", ".csv"))
    run = load_run(run_dir)
    inputs = load_inputs(run, data, split)
    labels = labels_of(run, inputs, data or "the run's data")
    mean, logvar = run.encode_all(inputs.x, name=data or "the run's data", condition=labels,
                                  batch_size=batch_size or 1024)
    dim = mean.shape[1]
    if out.suffix.lower() == ".npy":
        save_array(mean if logvar is None else torch.stack([mean, logvar], 1), out)
    else:
        columns = [mean] + ([] if logvar is None else [logvar])
        header = [f"mean_{i}" for i in range(dim)] + ([] if logvar is None else [f"logvar_{i}" for i in range(dim)])
        table = torch.cat(columns, 1).numpy()
        if inputs.y is not None:
            table = np.concatenate([table, inputs.y[:, None].astype(np.float32)], 1)
            header.append("label")
        save_array(table, out, header)
    log.info("wrote %s (%d samples, latent_dim %d)", out, len(mean), dim)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """--size WxH (or one number for a square) -> (H, W)."""
    from vaekit.errors import ConfigError

    if text is None:
        return None
    parts = text.lower().split("x")
    try:
        width, height = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (0, 0)
    except ValueError:
        width = height = 0
    if width < 1 or height < 1:
        raise ConfigError(f"--size {text!r}: expected WxH in pixels, e.g. 512x512")
    return height, width


def _encode_folder(run_dir: Path, data: str | None, split: str, out: Path, batch_size: int | None,
                   shard_size: int | None, resize: bool, sample: bool, seed: int,
                   large: tuple[str | None, int | None, int | None]) -> None:
    """vaekit encode --out FOLDER: vaekit.applications.latents.encode_folder, checked first."""
    import sys

    from vaekit.applications.latents import encode_folder
    from vaekit.errors import ConfigError, DataError

    if data is None or not Path(data).is_dir():
        what = "no --data" if data is None else f"--data {data!r} is not a folder"
        raise DataError(f"--out {str(out)!r} is a folder of latents, which needs --data FOLDER of images ({what}); "
                        "for one file give --out FILE.npy or FILE.csv")
    if split != "all":
        raise ConfigError("--split is for named datasets; an image folder is encoded whole")
    claim(data, "inputs", "--data")
    claim(out, "outputs", "--out")
    check_not_below_a_file(out)
    run = load_run(run_dir)
    size, tile, overlap = large
    done = encode_folder(run, data, out, shard_size=shard_size or 1024, batch_size=batch_size or 64, resize=resize,
                         sample=sample, seed=seed, progress=sys.stderr.isatty(), size=parse_size(size),
                         tile=tile, overlap=overlap)
    log.info("wrote %s: %d items in %d shards (%d written now, %d already there), %.1f s", out, done.items,
             done.shards, done.written, done.skipped, done.seconds)


@example("vaekit optimize runs/mols --seed 'CCOc1ccc(C(=O)NCc2ccccc2)cc1' --property qed --steps 200")
def optimize(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder of a molecule VAE with a property head."),
    seed: str = typer.Option(..., "--seed", help="The starting molecule (SMILES)."),
    prop: str = typer.Option(..., "--property", help="The property to climb: one the run's head predicts."),
    steps: int = typer.Option(200, "--steps", min=1, max=100_000, help="Gradient steps in z."),
    lr: float = typer.Option(0.05, "--lr", help="Adam's step size in z."),
    prior_weight: float = typer.Option(0.05, "--prior-weight", help="Pull toward the prior: lambda * |z|^2 / 2."),
    every: int = typer.Option(20, "--every", min=1, help="Decode every this many steps."),
    minimize: bool = typer.Option(False, "--minimize", help="Descend instead (e.g. lower logP)."),
    decoding: str = typer.Option("greedy", "--decode", help="How each code is decoded: greedy or beam."),
    out: Path = typer.Option(None, "--out", help="FILE.csv: the path (step, smiles, valid, predicted, measured)."),
) -> None:
    """Climb a molecular property in latent space from a seed molecule (gradient ascent on the
    run's property head), decoding along the way; each molecule is measured with RDKit too. The
    first row (step -1) is the seed itself, which stays a candidate."""
    from vaekit.applications.optimize import SEED_STEP, best, optimize_property

    if out is not None:
        check_suffix(out, (".csv",))
    run = load_run(run_dir)
    path = optimize_property(run, seed, prop, steps, lr, prior_weight, every, minimize, decoding)
    lines = ["step\tpredicted\tmeasured\tsmiles"] + [
        f"{s.step}\t{s.predicted:.3f}\t{'invalid' if not s.valid else f'{s.measured:.3f}'}\t{s.smiles}" for s in path]
    if out is None:
        for line in lines:
            typer.echo(line)
    else:
        import csv
        import io

        from vaekit.files import atomic_write_bytes

        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["step", "smiles", "valid", f"predicted_{prop}", f"measured_{prop}"])
        writer.writerows([s.step, s.smiles, int(s.valid), f"{s.predicted:.6g}", "" if not s.valid else
                          f"{s.measured:.6g}"] for s in path)
        atomic_write_bytes(out, buffer.getvalue().encode())
        log.info("wrote %s", out)
    top = best(path, minimize)
    found = "the seed itself" if top.step == SEED_STEP else f"{top.smiles} (step {top.step})"
    log.info("seed %s: %s %.3f; best molecule: %s, %s %.3f", seed, prop, path[0].measured, found, prop, top.measured)
