"""The ``vaekit`` command line: one file per command, each a thin layer over the library.

Bad input (a :class:`~vaekit.errors.VaekitError`) prints one line on stderr and exits with code 2;
``--debug`` shows the traceback instead. Internal errors exit with code 1.
"""

from __future__ import annotations

import logging
import sys

import typer

from vaekit.cli import common
from vaekit.cli.anomaly import anomaly
from vaekit.cli.config import config
from vaekit.cli.data_commands import datasets, presets
from vaekit.cli.evaluate import evaluate
from vaekit.cli.explore import arithmetic, interpolate, swap, traverse
from vaekit.cli.export import export
from vaekit.cli.generate import decode, sample
from vaekit.cli.impute import impute
from vaekit.cli.info import info
from vaekit.cli.latent import encode, optimize, reconstruct
from vaekit.cli.maps import cluster, embed
from vaekit.cli.report import report
from vaekit.cli.restore import restore
from vaekit.cli.synthesize import synthesize
from vaekit.cli.train import train
from vaekit.cli.web import explore

app = typer.Typer(
    name="vaekit",
    help="Variational Autoencoders for your own data: train, sample, reconstruct, explore, evaluate.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback(invoke_without_command=True)
def _options(context: typer.Context,
             debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.")) -> None:
    common.STATE["debug"] = debug
    common.STATE["inputs"], common.STATE["outputs"] = set(), set()  # what this command reads and writes (see claim)
    if context.invoked_subcommand is None:
        typer.echo(context.get_help())
        raise typer.Exit(0)


for command in (train, sample, synthesize, reconstruct, encode, decode, interpolate, traverse, arithmetic, swap, embed,
                cluster, anomaly, restore, impute, optimize, explore, evaluate, report, info, datasets, presets, config,
                export):
    app.command(name=command.__name__, help=command.__doc__, epilog=getattr(command, "example", None))(command)


class _Lines(logging.Formatter):
    """Log records as bare lines on stderr; a warning starts with "warning: " so it stands out."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return f"warning: {line}" if record.levelno >= logging.WARNING else line


def log_handler() -> logging.Handler:
    """The handler ``vaekit`` logs through: bare lines on stderr, warnings marked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Lines("%(message)s"))
    return handler


def main() -> None:
    logging.basicConfig(level=logging.INFO, handlers=[log_handler()])
    common.run_app(app)
