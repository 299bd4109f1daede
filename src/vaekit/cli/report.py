"""vaekit report"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from vaekit.cli.common import check_suffix, example, figure_path, load_inputs, load_run

log = logging.getLogger("vaekit")


@example("vaekit report runs/fm --out report.html")
def report(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    data: str = typer.Option(None, "--data", help="Held-out inputs (dataset name or path); default the run's "
                             "test split."),
    out: Path = typer.Option(None, "--out", help="FILE.html; default RUN/figures/report.html."),
    seed: int = typer.Option(0, "--seed", help="Seed for the samples and the map."),
) -> None:
    """One self-contained HTML page: config, curves, metrics, samples, reconstructions, paths, maps."""
    from vaekit.applications.report import write_report

    run = load_run(run_dir)
    out = figure_path(run, out, "report.html")
    check_suffix(out, (".html",))
    write_report(run, load_inputs(run, data, "test"), out, seed)
    log.info("wrote %s", out)
