"""vaekit restore: inpaint, denoise or super-resolve inputs with the model as the prior."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from vaekit.cli.common import (
    check_suffix,
    choose_items,
    example,
    finite,
    item_captions,
    labels_of,
    load_inputs,
    load_run,
    say_items,
    write_output,
)

log = logging.getLogger("vaekit")


def _operator(mask: str | None, noise: float | None, downsample: int | None, shape, n: int, seed: int):
    from vaekit.applications.restore import AddedNoise, Downsample, parse_mask
    from vaekit.errors import ConfigError

    given = [name for name, value in (("--mask", mask), ("--noise", noise), ("--downsample", downsample))
             if value is not None]
    if len(given) != 1:
        raise ConfigError("restore: give exactly one of --mask, --noise and --downsample"
                          + (f" (got {' and '.join(given)})" if given else ""))
    if mask is not None:
        return parse_mask(mask, tuple(shape), n, seed)
    if noise is not None:
        if noise <= 0:
            raise ConfigError(f"--noise {noise}: expected a positive standard deviation")
        return AddedNoise(noise)
    if len(shape) != 3:
        raise ConfigError("--downsample: only images can be downsampled")
    if downsample < 2 or shape[-1] % downsample or shape[-2] % downsample:
        raise ConfigError(f"--downsample {downsample}: expected a factor of at least 2 that divides the images' "
                          f"size {shape[-1]}x{shape[-2]}")
    return Downsample(downsample)


@example("vaekit restore runs/fm --data fashion-mnist --mask half --out inpainted.png")
def restore(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    data: str = typer.Option(None, "--data", help="Inputs (dataset name or path); default the run's test split."),
    out: Path = typer.Option(..., "--out", help="FILE.png (a row per input, captioned with its index and label: "
                             "observed, restored and, when known, original) or FILE.npy (the restored inputs, "
                             "in the data's units)."),
    mask: str = typer.Option(None, "--mask", help="Missing values: half (bottom half), rect (a centred "
                             "rectangle), random:P (each value missing with probability P) or a PNG "
                             "(black = missing)."),
    noise: float = typer.Option(None, "--noise", min=0.0, max=10.0, callback=finite,
                                help="Additive Gaussian noise of this standard deviation, on "
                                "the model's scale (images in [0, 1])."),
    downsample: int = typer.Option(None, "--downsample", help="Super-resolve: the observation is the image "
                                   "averaged over FACTOR x FACTOR blocks."),
    observed: bool = typer.Option(False, "--observed", help="The inputs already are observations (noisy "
                                  "images, or for --downsample images FACTOR times smaller); otherwise "
                                  "vaekit degrades clean inputs first and shows the originals."),
    method: str = typer.Option("auto", "--method", help="auto, pseudo-gibbs, mwg, importance (masks) or "
                               "optimize (any operator)."),
    steps: int = typer.Option(100, "--steps", min=1, help="Chain iterations or optimisation steps."),
    k: int = typer.Option(100, "--k", min=1, help="Importance samples (method importance)."),
    n: int = typer.Option(None, "--n", min=1, help="Restore N inputs, a seeded random choice (default: 8 for "
                          "a PNG, all for .npy, in file order)."),
    indices: str = typer.Option(None, "--indices", help="Restore these inputs instead, comma-separated indices."),
    seed: int = typer.Option(0, "--seed", help="Seed for the choice of inputs, the degradation and the sampler."),
) -> None:
    """Restore inputs from a mask, noise or downsampling by posterior inference."""
    import numpy as np
    import torch

    from vaekit.applications.restore import METHODS, Downsample, Mask
    from vaekit.applications.restore import restore as run_restore
    from vaekit.errors import ConfigError, DataError
    from vaekit.evaluation.reconstruction import psnr

    check_suffix(out, (".png", ".npy"))
    if method not in METHODS:
        raise ConfigError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    run = load_run(run_dir)
    inputs = load_inputs(run, data, "test", check=not (observed and downsample))
    chosen = choose_items(inputs, n, 8 if out.suffix.lower() == ".png" else len(inputs), seed, indices)
    count = len(chosen)
    operator = _operator(mask, noise, downsample, run.spec.shape, count, seed)
    if observed and isinstance(operator, Mask):
        raise ConfigError("--observed with --mask: give the clean inputs; the mask says what is missing")
    name = data or "test split"
    x_raw = inputs.x[chosen]
    if observed and isinstance(operator, Downsample):
        expected = [run.spec.shape[0]] + [size // operator.factor for size in run.spec.shape[1:]]
        if list(x_raw.shape[1:]) != expected:
            raise DataError(f"{name}: low-resolution inputs of shape {tuple(x_raw.shape[1:])}; expected "
                            f"{tuple(expected)} (the model's {tuple(run.spec.shape)} / {operator.factor})")
        x_raw = np.asarray(operator.upsample(torch.as_tensor(x_raw)))  # apply() of this gives back the input
    x = run.to_model_space(x_raw, name=name)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    y = operator.apply(x) if observed and isinstance(operator, Downsample) else (
        x if observed else operator.observe(x, generator))
    condition = labels_of(run, inputs, name)
    condition = None if condition is None else condition[chosen]
    restored = run_restore(run.model, y, operator, method, steps=steps, k=k, seed=seed, condition=condition)
    if not observed:
        where = operator.unknown(x.shape)
        typer.echo(f"PSNR on the unknown values: {psnr(restored, x.cpu(), where).mean():.2f} dB restored, "
                   f"{psnr(operator.picture(y, x.shape).cpu(), x.cpu(), where).mean():.2f} dB as observed")
    if out.suffix.lower() == ".npy":
        write_output(run, run.spec.inverse(restored), out)
    else:  # a row per input: observed, restored (and original)
        columns = [operator.picture(y, x.shape).cpu(), restored] + ([] if observed else [x.cpu()])
        rows = torch.stack(columns, 1).flatten(0, 1)  # (count * len(columns), *shape)
        write_output(run, run.spec.inverse(rows), out, nrow=len(columns),
                     row_captions=item_captions(run, inputs, chosen))
    say_items(run, inputs, chosen, "restored")
