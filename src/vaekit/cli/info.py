"""vaekit info"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vaekit.cli.common import example, load_run


@example("vaekit info runs/fm")
def info(run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder.")) -> None:
    """Summarise a run: preset, data, model size, last epoch and metrics."""
    from vaekit import io
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
    metrics = run_dir / io.METRICS
    if metrics.is_file():
        for name, values in json.loads(metrics.read_text()).items():
            shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items() if k != "kl_per_dim"}
            lines.append(f"{name:<12} {shown}")
    typer.echo("\n".join(lines))
