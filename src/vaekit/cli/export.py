"""vaekit export"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from vaekit.cli.common import example, load_run

log = logging.getLogger("vaekit")

SCALING_ITEMS = 1000  # training images whose latents set the diffusers scaling factor


@example("vaekit export runs/fm --onnx --out exported/\n  vaekit export runs/klf4 --diffusers --out vae/")
def export(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    onnx: bool = typer.Option(False, "--onnx", help="Write encoder.onnx and decoder.onnx (needs vaekit[onnx])."),
    diffusers: bool = typer.Option(False, "--diffusers", help="Write a latent-diffusion run (kl-f4, kl-f8) as a "
                                   "diffusers AutoencoderKL folder (config.json + "
                                   "diffusion_pytorch_model.safetensors)."),
    scaling_factor: float = typer.Option(None, "--scaling-factor", min=1e-12,
                                         help="--diffusers: the latents' scaling factor; default 1 / the standard "
                                         f"deviation of the latents of up to {SCALING_ITEMS} training images."),
    out: Path = typer.Option(None, "--out", help="Folder for the files; default RUN/export."),
) -> None:
    """Export the encoder and decoder for other runtimes."""
    from vaekit.errors import ConfigError
    from vaekit.io import export_onnx

    if onnx == diffusers:
        raise ConfigError("choose one format: --onnx or --diffusers")
    run = load_run(run_dir)
    folder = out or run_dir / "export"
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {str(folder)!r} is a file; expected a folder")
    if diffusers:
        _export_diffusers(run, folder, scaling_factor)
        return
    refused = run.spec.data_kind.unsupported(run.spec, "onnx")
    if refused:
        raise ConfigError(f"--onnx: run {str(run_dir)!r} {refused}")
    for path in export_onnx(run.model, run.spec, folder):
        log.info("wrote %s", path)


def _export_diffusers(run, folder: Path, scaling_factor: float | None) -> None:
    from vaekit.ldm_runs import latent_scaling_factor, save_diffusers_run
    from vaekit.run import seeded_part

    shift = run.model.latent_scaling.get("shift_factor")
    if scaling_factor is None:
        scaling_factor = run.model.latent_scaling.get("scaling_factor")
    if scaling_factor is None:
        images = seeded_part(run.inputs(split="train"), SCALING_ITEMS, seed=0)
        scaling_factor = latent_scaling_factor(run.model, run.to_model_space(images.x, "training images"))
        log.info("scaling factor %.5g: 1 / the standard deviation of the latents of %d training images",
                 scaling_factor, len(images))
    save_diffusers_run(run.model, run.spec, run.config, folder, scaling_factor, shift)
    log.info("wrote %s (diffusers AutoencoderKL; load with AutoencoderKL.from_pretrained)", folder)
