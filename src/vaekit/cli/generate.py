"""vaekit sample, vaekit decode (vectors, or a latents folder into images)"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from vaekit.cli.common import (
    check_not_below_a_file,
    check_suffix,
    claim,
    condition_for,
    example,
    finite,
    labels_of,
    load_inputs,
    load_run,
    output_for,
    prints_lines,
    write_output,
    write_texts,
)
from vaekit.cli.synthesize import write_synthetic

log = logging.getLogger("vaekit")


@example("vaekit sample runs/fm --n 64 --temperature 0.8 --seed 1 --out samples.png")
def sample(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    n: int = typer.Option(64, "--n", min=1, max=100_000, help="How many samples."),
    temperature: float = typer.Option(1.0, "--temperature", min=0.0, max=100.0, callback=finite,
                                      help="Scale of z ~ N(0, T^2 I)."),
    label: str = typer.Option(None, "--label", help="Class to generate, by index or name (conditional runs; "
                              "default: every class in turn)."),
    condition: str = typer.Option(None, "--condition", help="A condition vector, comma-separated "
                                  "(conditional runs), e.g. 0,0,1,0."),
    seed: int = typer.Option(0, "--seed", help="Seed for z."),
    sampler: str = typer.Option("prior", "--sampler", help="prior: z ~ p(z); gmm: z from a Gaussian mixture "
                                "fitted to the training data's codes (often sharper samples)."),
    components: int = typer.Option(10, "--components", min=1, max=1000, help="Mixture components (--sampler gmm)."),
    decoding: str = typer.Option("greedy", "--decode", help="Text and molecules: greedy, sample, top-k or beam."),
    token_temperature: float = typer.Option(1.0, "--token-temperature", min=0.01, max=10.0, callback=finite,
                                            help="Text and molecules: softmax temperature of --decode sample/top-k."),
    top_k: int = typer.Option(10, "--top-k", min=1, help="Text and molecules: tokens kept by --decode top-k."),
    beam: int = typer.Option(4, "--beam", min=1, max=64, help="Text and molecules: width of --decode beam."),
    out: Path = typer.Option(None, "--out", help="FILE.png (grid), .npy or .csv; default RUN/figures/samples.png. "
                             "Text and molecules: .txt or .smi (one a line; printed without --out)."),
) -> None:
    """Generate new samples from the prior (or a fitted latent mixture): a grid PNG, an array, or lines of text;
    a table run's rows are those `vaekit synthesize` writes."""
    from vaekit.errors import ConfigError

    run = load_run(run_dir)
    out = output_for(run, out, "samples", (".png", ".npy", ".csv"))
    if sampler not in ("prior", "gmm"):
        raise ConfigError(f"--sampler {sampler!r}: expected prior or gmm")
    if run.spec.data_kind.unsupported(run.spec, "synthesis") is None and out.suffix.lower() != ".png":
        if condition is not None:
            raise ConfigError("--condition: a table run's rows are drawn by class; give --label")
        write_synthetic(run, out, n, seed=seed, label=label, temperature=temperature, sampler=sampler,
                        components=components)  # the rows vaekit synthesize writes
        return
    cond = condition_for(run, n, label, condition)
    if prints_lines(run, out):
        import torch

        from vaekit.applications.generate import sample_sequences

        z = None
        if sampler == "gmm":
            from vaekit.applications.generate import fit_aggregate_posterior

            train = load_inputs(run, None, "train")
            mixture = fit_aggregate_posterior(run, train.x, labels_of(run, train, "training split"), components, seed)
            z = mixture.sample(n, torch.Generator().manual_seed(seed), temperature)
        write_texts(sample_sequences(run, n, seed, temperature, decoding, token_temperature,
                                     top_k if decoding == "top-k" else 0, beam, cond, z), out)
        return
    if sampler == "prior":
        write_output(run, run.sample(n, seed=seed, temperature=temperature, condition=cond), out)
        return
    from vaekit.applications.generate import fit_aggregate_posterior, sample_mixture

    train = load_inputs(run, None, "train")
    mixture = fit_aggregate_posterior(run, train.x, labels_of(run, train, "training split"), components, seed)
    write_output(run, sample_mixture(run, mixture, n, seed, temperature, cond), out)


@example("vaekit decode runs/fm --latents z.npy --out decoded.png")
def decode(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    latents: Path = typer.Option(..., "--latents", help=".npy of shape (N, latent_dim), or (N, 2, latent_dim) "
                                 "as written by `vaekit encode` (the means are used); or a latents FOLDER "
                                 "(`vaekit encode --out FOLDER`): one image per encoded file."),
    out: Path = typer.Option(..., "--out", help="FILE.png, .npy or .csv; a FOLDER for a latents folder."),
    label: str = typer.Option(None, "--label", help="Class to decode as, by index or name (conditional runs; "
                              "default: every class in turn)."),
    condition: str = typer.Option(None, "--condition", help="A condition vector, comma-separated (conditional runs)."),
    tile: int = typer.Option(None, "--tile", help="--latents FOLDER, a kl-f run: decode tile by tile, this many "
                             "image pixels a side (equal to the whole decode up to rounding; memory follows "
                             "the tile)."),
) -> None:
    """Decode latent vectors into data (the likelihood's mean); a latents folder into one PNG per
    image it encoded (latents larger than the run's need a kl-f run)."""
    import numpy as np
    import torch

    from vaekit.api import MAX_CODE
    from vaekit.data.sources.arrays import check_declared_size
    from vaekit.errors import ConfigError, DataError

    if latents.is_dir():
        return _decode_folder(run_dir, latents, out, tile, label, condition)
    if tile is not None:
        raise ConfigError("--tile is for --latents FOLDER (a latents folder of vaekit encode)")
    run = load_run(run_dir)
    check_suffix(out, run.spec.data_kind.output_suffixes(run.spec, (".png", ".npy", ".csv")))
    check_suffix(latents, (".npy",), "--latents", role="inputs")
    if not latents.is_file():
        raise DataError(f"latents file {str(latents)!r} does not exist")
    try:
        with open(latents, "rb") as stream:  # a header declaring terabytes is refused before numpy allocates them
            check_declared_size(stream, f"latents file {str(latents)!r}", stored=latents.stat().st_size)
        z = np.load(latents, allow_pickle=False)
    except DataError:
        raise
    except (ValueError, EOFError, OSError):  # a 0-byte file raises EOFError
        raise DataError(f"latents file {str(latents)!r} is not a readable .npy array") from None
    if z.ndim == 3 and z.shape[1] == 2:
        z = z[:, 0]
    dim = run.model.latent_dim
    if z.ndim != 2 or z.shape[1] != dim or not len(z) or not np.issubdtype(z.dtype, np.number):
        raise DataError(f"latents file {str(latents)!r}: expected numbers of shape (N, {dim}), got {z.dtype} {z.shape}")
    if not np.isfinite(z).all():
        raise DataError(f"latents file {str(latents)!r} contains NaN or infinite values")
    if np.abs(z).max(initial=0.0) > MAX_CODE:
        raise DataError(f"latents file {str(latents)!r}: values up to {np.abs(z).max():.3g}, far outside the "
                        f"prior the decoder was trained on (codes within about +-{MAX_CODE:g}); expected codes "
                        "such as `vaekit encode` writes")
    cond = condition_for(run, len(z), label, condition)
    write_output(run, run.decode(torch.from_numpy(z.astype(np.float32)), condition=cond), out)


def _decode_folder(run_dir: Path, latents: Path, out: Path, tile: int | None, label: str | None,
                   condition: str | None) -> None:
    """vaekit decode --latents FOLDER: vaekit.applications.latents.decode_folder, checked first."""
    import sys

    from vaekit.applications.latents import MANIFEST, decode_folder
    from vaekit.errors import ConfigError, DataError

    if not (latents / MANIFEST).is_file():
        raise DataError(f"--latents '{latents}' is a folder without {MANIFEST}: expected a .npy of latents or a "
                        "latents folder (vaekit encode --out FOLDER)")
    if label is not None or condition is not None:
        raise ConfigError("--label and --condition are for a .npy of latents; a latents folder decodes unconditionally")
    if out.suffix:
        raise ConfigError(f"--out {str(out)!r}: a latents folder decodes into a FOLDER of PNGs (no suffix)")
    claim(latents, "inputs", "--latents")
    claim(out, "outputs", "--out")
    check_not_below_a_file(out)
    run = load_run(run_dir)
    done = decode_folder(run, latents, out, tile=tile, progress=sys.stderr.isatty())
    log.info("wrote %s: %d images (%d now, %d already there), %.1f s", out, done.items, done.written, done.skipped,
             done.seconds)
