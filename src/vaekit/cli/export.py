"""vaekit export"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from vaekit.cli.common import example, load_run

log = logging.getLogger("vaekit")


@example("vaekit export runs/fm --onnx --out exported/")
def export(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    onnx: bool = typer.Option(False, "--onnx", help="Write encoder.onnx and decoder.onnx (needs vaekit[onnx])."),
    out: Path = typer.Option(None, "--out", help="Folder for the files; default RUN/export."),
) -> None:
    """Export the encoder and decoder for other runtimes."""
    from vaekit.errors import ConfigError
    from vaekit.io import export_onnx

    if not onnx:
        raise ConfigError("choose a format: --onnx")
    run = load_run(run_dir)
    refused = run.spec.data_kind.unsupported(run.spec, "onnx")
    if refused:
        raise ConfigError(f"--onnx: run {str(run_dir)!r} {refused}")
    for path in export_onnx(run.model, run.spec, out or run_dir / "export"):
        log.info("wrote %s", path)
