"""vaekit datasets, vaekit presets"""

from __future__ import annotations

import typer

from vaekit.cli.common import example


@example("vaekit datasets")
def datasets() -> None:
    """List the named datasets and whether each can be loaded offline now."""
    from vaekit.config import DataConfig
    from vaekit.data.sources import PATH_LOADERS, SOURCES

    for name in SOURCES:
        source = SOURCES.get(name)
        offline = source.available_offline(DataConfig(source=name))
        typer.echo(f"{name:<14} {'offline' if offline else 'download':<9} {source.description}")
    typer.echo(f"\npaths: {', '.join(PATH_LOADERS)} (pass a file or folder as --data)")


@example("vaekit presets")
def presets() -> None:
    """List the model presets (named variants) and the options each one sets."""
    from vaekit.models.presets import PRESETS

    for name in PRESETS:
        preset = PRESETS.get(name)
        choices = " ".join(f"{k}={v}" for k, v in preset.choices.items()) or "(defaults)"
        typer.echo(f"{name:<10} {preset.description} [{preset.reference}]\n{'':<10} {choices}")
