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
                             "Parquet or .npy file with the run's columns (and any others)."),
    out: Path = typer.Option(..., "--out", help="FILE.csv: every column of a CSV or Parquet input in its order, "
                             "each cell as given but for the holes filled in the model's columns; the label "
                             "column and columns the model does not use come back as they are, their empty "
                             "cells empty (with --multiple, one block per imputation and a leading "
                             "'imputation' column). FILE.npy: the model's columns only."),
    method: str = typer.Option("importance", "--method", help="importance (MIWAE) or pseudo-gibbs."),
    k: int = typer.Option(100, "--k", min=1, help="Importance samples per row."),
    steps: int = typer.Option(50, "--steps", min=1, help="Pseudo-Gibbs iterations."),
    multiple: int = typer.Option(0, "--multiple", min=0, max=1000, help="Draw this many completed tables (multiple "
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
    inputs = load_inputs(run, data, "all", holes=True)
    condition = labels_of(run, inputs, data)
    filled = run_impute(run, inputs.x, method, k, steps, seed, multiple, condition, name=data)
    if inputs.x.dtype == object:
        holes = np.vectorize(is_missing, otypes=[bool])(inputs.x)
    else:
        holes = np.isnan(inputs.x.astype(np.float64))
    names = run.spec.feature_names or [f"v{i}" for i in range(filled.shape[-1])]
    if out.suffix.lower() == ".npy":
        if filled.dtype == object:
            raise ConfigError(f"--out {str(out)!r}: this table has text categories; write a .csv")
        save_array(filled, out)
    elif filled.ndim == 2 + bool(multiple):  # a table
        names, tables = _whole_file(data, names, filled if multiple else filled[None], holes)
        if multiple:
            blocks = [np.concatenate([np.full((len(table), 1), m + 1, dtype=object), table], 1)
                      for m, table in enumerate(tables)]
            save_array(np.concatenate(blocks), out, header=["imputation", *names])
        else:
            save_array(tables[0], out, header=names)
    else:
        save_array(filled, out)
    typer.echo(f"filled {int(holes.sum())} missing values in {len(inputs.x)} rows"
               + (f" ({multiple} imputations)" if multiple else "") + f"; wrote {out}")


def _whole_file(data: str, names: list[str], tables, holes):
    """The completed tables (M, N, D) as CSV cells, and their column names. From a CSV or Parquet
    file, every column of the file in its order, each cell as the file has it but for the holes of
    the model's columns: the label column and columns the model does not use come back untouched."""

    from vaekit.data.sources.tabular import read_cells

    path = Path(data)
    if path.suffix.lower() not in (".csv", ".parquet") or not path.is_file():
        return names, [_cells(table) for table in tables]
    file_names, cells = read_cells(path)
    positions = [file_names.index(name) for name in names] if file_names else list(range(len(names)))
    completed = []
    for table in tables:
        whole = cells.copy()
        for j, position in enumerate(positions):
            whole[holes[:, j], position] = table[holes[:, j], j]
        completed.append(_cells(whole))
    return file_names or names, completed


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
