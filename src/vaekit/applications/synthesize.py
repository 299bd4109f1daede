"""Synthetic tables: new rows drawn from a table run, in the training table's own columns and kinds.

A row is a draw x ~ p(x | z), z ~ p(z) (or z from a latent mixture fitted to the training codes,
:mod:`vaekit.applications.generate`): each column from its own likelihood (a category drawn from its
probabilities, a number with its learned spread), not the likelihood's mean, which gives every
categorical column its most probable value and every number without noise. The rows then look like
the training table's (:func:`vaekit.data.columns.synthetic_rows`): categories by name, whole-number
columns as integers, a binary column as its two values, numbers within the training range.

Missing values: the table model skips holes (the masked ELBO), so it learns nothing of where they
fall. Each column is left empty in a synthetic row with the probability it was empty in the
training rows (``Column.missing``), independently of the row's values and of the other columns'
holes: the share of holes per column is kept, not their dependence on values or on each other.

A conditional run (``model.condition=label``) gives each row a class, by name, in a last column named
after ``data.label_column``: the class asked for, or drawn in the training shares.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vaekit.applications.generate import LatentMixture
from vaekit.data.columns import Column, category_name, synthetic_rows, value_type
from vaekit.data.loaders import class_index
from vaekit.data.sources.labels import encode_labels
from vaekit.distributions.priors import prior_draws
from vaekit.errors import ConfigError, DataError
from vaekit.files import atomic_write_bytes
from vaekit.run import Run

log = logging.getLogger("vaekit")
SUFFIXES = (".csv", ".parquet")
CHUNK = 10_000  # rows drawn per forward pass


@dataclass
class SyntheticTable:
    """Rows (N, W) of Python values (int, float, str; None where empty) and each column's name and
    type ("integer", "number" or "text")."""

    names: list[str]
    types: list[str]
    rows: np.ndarray

    def last_to(self, position: int) -> SyntheticTable:
        """The same table with its last column (a conditional run's labels) moved to ``position``."""
        order = list(range(len(self.names) - 1))
        order.insert(position, len(self.names) - 1)
        return SyntheticTable([self.names[j] for j in order], [self.types[j] for j in order], self.rows[:, order])

    def to_frame(self, names: list[str], dtypes: list) -> Any:
        """A pandas DataFrame with these column ``names`` and, where the values fit them, ``dtypes``
        (a fitted frame's int32, bool, category...); else int64 (Int64 with holes), float64 or objects."""
        import pandas as pd

        frame = {}
        for j, (name, kind, dtype) in enumerate(zip(names, self.types, dtypes, strict=True)):
            values = self.rows[:, j]
            holes = any(v is None for v in values)
            series = pd.Series(values, dtype={"integer": "Int64" if holes else "int64", "number": "float64",
                                              "text": object}[kind])
            try:
                frame[name] = series.astype(dtype)
            except (TypeError, ValueError):  # NA in an int column, text in a number one
                frame[name] = series
        return pd.DataFrame(frame)


def class_codes(values: np.ndarray, classes: list[str] | None, what: str) -> tuple[np.ndarray, list[str]]:
    """A label column's values (N,) as class codes (N,) and the class names: new classes in sorted
    order when ``classes`` is None, else each value's place among ``classes``."""
    names = [category_name(value) for value in values]
    if any(name is None for name in names):
        raise DataError(f"{what}: every row needs a label; some are missing")
    if classes is None:
        return encode_labels(names, what)
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise DataError(f"{what}: unknown classes {', '.join(unknown[:5])}; fitted on {', '.join(classes[:12])}")
    return np.array([classes.index(name) for name in names], dtype=np.int64), classes


def column_position(column: str | int, names: list[str] | None, width: int, what: str) -> int:
    """Where a table's ``column`` (a name, or an index for a table without names) is, or one line."""
    if isinstance(column, str) and names is not None and column in names:
        return names.index(column)
    if isinstance(column, int | np.integer) and not isinstance(column, bool) and -width <= column < width:
        return int(column) % width
    shown = f"a column name ({', '.join(names[:12])})" if names else f"a column index 0..{width - 1}"
    raise ConfigError(f"{what}={column!r}: expected {shown}")


def check_synthesis(run: Run) -> None:
    """Refuse a run that cannot give synthetic rows (not a table with typed columns), in one line."""
    refused = run.spec.data_kind.unsupported(run.spec, "synthesis")
    if refused:
        raise ConfigError(f"synthesizing rows: {refused}")


def class_draws(run: Run, n: int, label: int | str | None, generator: torch.Generator,
                option: str = "label") -> Tensor | None:
    """Each row's class (n,) for a conditional run: ``label`` (a name or index) for all, else drawn in
    the training shares (every class in turn for a run folder that did not record them); None for an
    unconditional run, which refuses a ``label``."""
    n_classes = run.model.condition_dim
    if not n_classes:
        if label is not None:
            raise ConfigError(f"{option}: this run is not conditional; train it with data.label_column set and "
                              "the cvae preset (or model.condition=label) to synthesize rows by class")
        return None
    if label is not None:
        return torch.full((n,), class_index(label, run.spec.class_names, n_classes, option), device=run.device)
    shares = run.spec.class_shares
    if shares is None or len(shares) != n_classes:
        return torch.arange(n, device=run.device) % n_classes
    weights = torch.tensor(shares, dtype=torch.float64, device=run.device)
    return torch.multinomial(weights, n, replacement=True, generator=generator)


@torch.no_grad()
def synthesize(run: Run, n: int, *, seed: int = 0, label: int | str | None = None, temperature: float = 1.0,
               clip: bool = True, missing: bool = True, mixture: LatentMixture | None = None,
               option: str = "label") -> SyntheticTable:
    """``n`` synthetic rows of a table run, seeded: the same ``seed`` gives the same rows on the same
    device. ``label`` fixes the class of a conditional run's rows; ``temperature`` scales z's spread;
    ``clip`` keeps numbers within the training range; ``missing`` empties each column as often as in
    training; ``mixture`` draws z from a fitted latent mixture instead of the prior."""
    check_synthesis(run)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigError(f"n={n!r}: expected a whole number of rows, at least 1")
    columns, model = run.spec.columns, run.model
    generator = torch.Generator(device=run.device).manual_seed(seed)
    classes = class_draws(run, n, label, generator, option)
    if classes is None and run.spec.class_names:
        log.warning("synthetic rows: this run was trained with a label column but is not conditional, so "
                    "its rows carry no label column; train with --preset cvae (model.condition=label) to "
                    "synthesize the label too")
    draws = []
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        condition = None if classes is None else classes[start : start + size]
        if mixture is None:
            z = prior_draws(model.prior_distribution(condition, size), size, generator, temperature)  # (size, L)
        else:
            z = mixture.sample(size, torch.Generator().manual_seed(seed + start), temperature).to(run.device)
        draws.append(model.generate(z, condition, generator, temperature).sample(generator=generator).cpu())
    uniform = torch.rand(n, len(columns), generator=generator, device=run.device).cpu().numpy()  # (n, D)
    shares = np.array([column.missing for column in columns]) if missing else np.zeros(len(columns))
    rows = synthetic_rows(columns, torch.cat(draws), uniform < shares, clip)
    warn_degenerate(columns, rows)
    if classes is not None:
        label_column = Column("label", "categorical", categories=class_names_of(run))
        labels = synthetic_rows([label_column], classes.cpu()[:, None], np.zeros((n, 1), dtype=bool))
        rows = np.concatenate([rows, labels], axis=1)
    return SyntheticTable(*header(run), rows)


def warn_degenerate(columns: list[Column], rows: np.ndarray, least: int = 20) -> None:
    """Warn, naming them, of columns whose ``least`` or more synthetic rows all hold one value where
    the training data held several (a class column once came out as one class, silently)."""
    varied = [c for c in columns if not c.constant and (c.categories is None or len(c.categories) > 1)]
    one = [c.name for c in varied if len(rows) >= least
           and len({v for v in rows[:, columns.index(c)].tolist() if v is not None}) <= 1]
    if one:
        log.warning("synthetic rows: column%s %s hold%s one value in every row, several in training: the model "
                    "has not learnt %s (train longer, or check the column's kind in data.column_types)",
                    "s" if len(one) > 1 else "", ", ".join(one[:10]), "" if len(one) > 1 else "s",
                    "them" if len(one) > 1 else "it")


def class_names_of(run: Run) -> list[str]:
    return run.spec.class_names or [str(k) for k in range(run.model.condition_dim)]


def header(run: Run) -> tuple[list[str], list[str]]:
    """The names and types (:func:`~vaekit.data.columns.value_type`) of a table run's synthetic
    columns: its own, and a conditional run's label column last."""
    columns = list(run.spec.columns)
    if run.model.condition_dim:
        columns.append(Column(run.config.data.label_column or "label", "categorical", categories=class_names_of(run)))
    return [c.name for c in columns], [value_type(c) for c in columns]


def check_output(out: Path, option: str = "--out") -> None:
    """Refuse an output the writer cannot make, before any work: its suffix, and pyarrow for Parquet."""
    if out.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"{option} {str(out)!r}: expected a file ending in {' or '.join(SUFFIXES)}")
    if out.suffix.lower() == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError("writing Parquet needs pyarrow: pip install 'vaekit[parquet]'") from None


def save_table(table: SyntheticTable, out: Path) -> Path:
    """Write the table atomically as CSV (each number as its shortest text, empty cells where missing)
    or Parquet (int64, float64 and string columns, nulls where missing)."""
    check_output(out)
    if out.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        kinds = {"integer": pa.int64(), "number": pa.float64(), "text": pa.string()}
        arrays = [pa.array(table.rows[:, j].tolist(), type=kinds[kind]) for j, kind in enumerate(table.types)]
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_arrays(arrays, names=table.names), buffer)
        return atomic_write_bytes(out, buffer.getvalue())
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(table.names)
    writer.writerows([["" if v is None else repr(v) if isinstance(v, float) else v for v in row] for row in table.rows])
    return atomic_write_bytes(out, text.getvalue().encode())


def check_numbers(run: Run, what: str) -> None:
    """Refuse to write a table run's synthetic rows as numbers (.npy) when one of its columns holds text."""
    text = [column.name for column in run.spec.columns if value_type(column) == "text"]
    if text:
        raise DataError(f"{what}: this table has text columns ({', '.join(text[:5])}); write .csv or .parquet")


def numbers(table: SyntheticTable, width: int | None = None) -> np.ndarray:
    """The first ``width`` columns (default all) of a table without text in them as float64 (N, W),
    NaN where empty."""
    rows = table.rows[:, :width]
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)
