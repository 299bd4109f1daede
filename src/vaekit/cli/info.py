"""vaekit info"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from vaekit.cli.common import example, load_run

log = logging.getLogger("vaekit")


@example("vaekit info runs/fm")
def info(run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder.")) -> None:
    """Summarise a run: preset, data, model size, last epoch and metrics (a row per metric, a column
    per evaluation)."""
    from vaekit.applications.report import metric_rows, read_metrics
    from vaekit.errors import DataError
    from vaekit.models import likelihood_name
    from vaekit.networks.factory import network_kind

    run = load_run(run_dir)
    config, spec = run.config, run.spec
    n_params = sum(p.numel() for p in run.model.parameters())
    lines = [
        f"run          {run_dir}",
        f"preset       {config.preset}",
        f"data         {config.data.source}: {spec.kind}, shape {tuple(spec.shape)}, scale {spec.scale}",
        f"model        {network_kind(spec, config.model)} network, latent_dim {config.model.latent_dim}, "
        f"{likelihood_name(spec, config.model)} likelihood, objective {config.model.objective}, "
        f"{n_params:,} parameters",
    ]
    if run.history:
        last = run.history[-1]
        lines.append(f"trained      {int(last['epoch'])} epochs, last loss {last['loss']:.4f}")
    try:
        table = read_metrics(run_dir)
    except DataError as error:  # a damaged metrics file loses its table, not the summary
        log.warning("info: metrics skipped (%s)", error)
        table = {}
    if table:
        rows = metric_rows(table)
        names = [f"  {key}" for key, _ in rows]
        width = max(len(name) for name in ["metrics", *names])
        widths = [max(len(split), *(len(values[i]) for _, values in rows)) for i, split in enumerate(table)]
        lines.append(" ".join(["metrics".ljust(width), *(s.rjust(w) for s, w in zip(table, widths, strict=True))]))
        lines += [" ".join([name.ljust(width), *(v.rjust(w) for v, w in zip(values, widths, strict=True))]).rstrip()
                  for name, (_, values) in zip(names, rows, strict=True)]
    typer.echo("\n".join(lines))
