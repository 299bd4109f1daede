"""vaekit datasets, vaekit presets"""

from __future__ import annotations

import typer

from vaekit.cli.common import example


@example("vaekit datasets")
def datasets() -> None:
    """List the named datasets, one a line: whether each loads offline now or what getting it takes,
    and what it holds."""
    from vaekit.data.sources import PATH_LOADERS, SOURCES
    from vaekit.sections import DataConfig

    sources = [SOURCES.get(name) for name in SOURCES]
    status = {source.name: "offline" if source.available_offline(DataConfig(source=source.name))
              else f"needs {source.fetch}" for source in sources}
    _columns([(source.name, status[source.name], source.description) for source in sources])
    typer.echo(f"\npaths: {', '.join(PATH_LOADERS)} (pass a file or folder as --data)")


def _columns(rows: list[tuple[str, ...]]) -> None:
    """Print rows of text in columns as wide as their widest cell, the last left ragged."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        typer.echo("  ".join([cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]))


@example("vaekit presets")
def presets() -> None:
    """List the model presets (named variants) and the options each one sets."""
    from vaekit.presets import PRESETS

    rows = []
    for name in PRESETS:
        preset = PRESETS.get(name)
        choices = " ".join(f"{k}={v}" for k, v in preset.choices.items()) or "(defaults)"
        rows += [(name, f"{preset.description} [{preset.reference}]"), ("", choices)]
    _columns(rows)
