"""vaekit impute: fill the missing values of a table (or images) with a trained model."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from vaekit.cli.common import check_suffix, example, labels_of, load_inputs, load_run

log = logging.getLogger("vaekit")


@example("vaekit impute runs/survey --data survey.csv --out filled.csv --multiple 5")
def impute(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    data: str = typer.Option(..., "--data", help="Inputs with missing values (empty cells or NaN): a CSV, "
                             "Parquet or .npy file with the run's columns."),
    out: Path = typer.Option(..., "--out", help="FILE.csv (the table completed; with --multiple, one block "
                             "per imputation and a leading 'imputation' column) or FILE.npy."),
    method: str = typer.Option("importance", "--method", help="importance (MIWAE) or pseudo-gibbs."),
    k: int = typer.Option(100, "--k", min=1, help="Importance samples per row."),
    steps: int = typer.Option(50, "--steps", min=1, help="Pseudo-Gibbs iterations."),
    multiple: int = typer.Option(0, "--multiple", min=0, help="Draw this many completed tables (multiple "
                                 "imputation) instead of one best estimate."),
    seed: int = typer.Option(0, "--seed", help="Seed for the draws."),
) -> None:
    """Impute missing values: the table back with its holes filled (observed values unchanged)."""
    import numpy as np

    from vaekit.applications.impute import METHODS
    from vaekit.applications.impute import impute as run_impute
    from vaekit.applications.visualize import save_array
    from vaekit.data.columns import is_missing
    from vaekit.errors import ConfigError

    check_suffix(out, (".csv", ".npy"))
    if method not in METHODS:
        raise ConfigError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    if multiple and method != "importance":
        raise ConfigError("--multiple draws from the importance weights: use --method importance")
    run = load_run(run_dir)
    inputs = load_inputs(run, data, "all")
    condition = labels_of(run, inputs, data)
    filled = run_impute(run, inputs.x, method, k, steps, seed, multiple, condition, name=data)
    names = run.spec.feature_names or [f"v{i}" for i in range(filled.shape[-1])]
    if out.suffix.lower() == ".npy":
        if filled.dtype == object:
            raise ConfigError(f"--out {str(out)!r}: this table has text categories; write a .csv")
        save_array(filled, out)
    elif multiple:
        blocks = [np.concatenate([np.full((filled.shape[1], 1), m + 1, dtype=object), _cells(table)], 1)
                  for m, table in enumerate(filled)]
        save_array(np.concatenate(blocks), out, header=["imputation", *names])
    else:
        save_array(_cells(filled) if filled.ndim == 2 else filled, out, header=names if filled.ndim == 2 else None)
    if inputs.x.dtype == object:
        n_missing = sum(is_missing(value) for value in inputs.x.ravel())
    else:
        n_missing = int(np.isnan(inputs.x.astype(np.float64)).sum())
    typer.echo(f"filled {n_missing} missing values in {len(inputs.x)} rows"
               + (f" ({multiple} imputations)" if multiple else "") + f"; wrote {out}")


def _cells(table):
    """A table as CSV cells that keep every digit: the observed values are returned as given, and
    the CSV writer's 7 significant digits would round large counts and identifiers."""
    import math

    import numpy as np

    def cell(value):
        if not isinstance(value, float | np.floating):
            return value
        value = float(value)
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)

    return np.vectorize(cell, otypes=[object])(table.astype(object))
