"""Tables as a source: CSV (standard library) and Parquet (pyarrow, optional).

A table becomes float64 (N, D) with ``kind="table"``, or an object array when a column holds text
(categories): float64, not float32, because a table's values are given back as they were (a binary
column's two values, the observed cells of an imputed table), and float32 keeps 7 digits of
diabetes' 0.05068011873981862. Empty cells are missing values (NaN, or None in a text column), which the model
masks, not rejects. ``data.label_column`` names the column that holds labels: its
values map to 0..K-1 in sorted order and become ``y``, and the values themselves the class names.
Row numbers in CSV errors are line numbers in the file (the header is row 1). A CSV may be
separated by semicolons, tabs or bars instead of commas (:func:`_delimiter`).
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
from pathlib import Path

import numpy as np

from vaekit.data.sources.base import PATH_LOADERS, RawData, Splits
from vaekit.data.sources.labels import NoLabelColumn, encode_labels, find_label_column, is_number
from vaekit.data.sources.text import texts_from_rows
from vaekit.errors import DataError
from vaekit.sections import DataConfig

log = logging.getLogger(__name__)
DELIMITERS = (",", ";", "\t", "|")  # a comma first: it wins every tie
SNIFFED_LINES = 20


def _delimiter(path: Path) -> str:
    """The separator of a CSV file: a comma, unless commas split its first non-blank lines into one
    column or into unequal numbers of columns while another of :data:`DELIMITERS` splits every
    line into the same number, more than one (a European export ``a;b`` / ``1,5;2``: commas give 1
    then 2 columns, semicolons 2 and 2). A comma too when the file cannot be read
    (:func:`_read_rows` then says why), so that a ragged comma file still gets its own error."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            lines = [line for line in itertools.islice(handle, 4 * SNIFFED_LINES) if line.strip()][:SNIFFED_LINES]
        widths = {delimiter: {len(row) for row in csv.reader(lines, delimiter=delimiter)} for delimiter in DELIMITERS}
    except (OSError, UnicodeDecodeError, csv.Error):
        return ","
    best = ","
    if len(widths[","]) > 1 or widths[","] == {1}:
        regular = [d for d in DELIMITERS[1:] if len(widths[d]) == 1 and min(widths[d]) > 1]
        best = max(regular, key=lambda d: min(widths[d]), default=",")
    if best != ",":
        log.info("CSV file '%s': columns separated by %r", path, best)
    return best


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank rows with their line numbers in the file."""
    what = f"CSV file '{path}'"
    rows: list[tuple[int, list[str]]] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=_delimiter(path))
            for row in reader:
                if any(cell.strip() for cell in row):
                    rows.append((reader.line_num, row))
    except UnicodeDecodeError:
        raise DataError(f"{what}: not UTF-8 text; expected comma-separated numbers") from None
    except csv.Error as error:
        raise DataError(f"{what}: line {reader.line_num}: {error}") from None
    except OSError as error:
        raise DataError(f"{what}: cannot be read ({error.__class__.__name__})") from None
    if not rows:
        raise DataError(f"{what}: empty; expected comma-separated numbers")
    return rows


def _header_and_body(path: Path) -> tuple[list[str] | None, list[tuple[int, list[str]]]]:
    """A CSV file's column names (None when its first row is all numbers: no header) and its data
    rows with their line numbers, every row as wide as the first."""
    what = f"CSV file '{path}'"
    rows = _read_rows(path)
    first = rows[0][1]
    has_header = not all(is_number(cell) for cell in first)
    names = [cell.strip() for cell in first] if has_header else None
    body = rows[1:] if has_header else rows
    if not body:
        raise DataError(f"{what}: a header but no data rows")
    for number, row in body:
        if len(row) != len(first):
            raise DataError(f"{what}: row {number} has {len(row)} columns, expected {len(first)}")
    return names, body


def read_cells(path: Path) -> tuple[list[str] | None, np.ndarray]:
    """Every column of a CSV or Parquet file as it is stored (column names, or None for a CSV
    without a header; an object array (N, W) of the CSV's cell text or Parquet's values), for
    writing a table back with only some of its cells changed (``vaekit impute``)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq  # load_parquet has read this file already, so pyarrow is there

        table = pq.read_table(path)
        columns = [np.array(table.column(name).to_pylist(), dtype=object) for name in table.column_names]
        return list(table.column_names), np.stack(columns, axis=1)
    names, body = _header_and_body(path)
    cells = np.empty((len(body), len(body[0][1])), dtype=object)
    for i, (_, row) in enumerate(body):
        cells[i] = row
    return names, cells


def load_csv(path: Path, config: DataConfig) -> Splits:
    """Read a CSV file; a first row that is not all numbers is the header. Columns of numbers
    become floats (an empty cell is NaN, a missing value); a column with any text is kept as text
    (an object array), for the data spec to treat as categorical.

    Raises
    ------
    DataError
        A ragged row (naming its row and column counts), or a ``data.label_column`` that is not in
        the header.
    """
    what = f"CSV file '{path}'"
    names, body = _header_and_body(path)
    width = len(body[0][1])
    if config.text_column is not None:  # one column of text: sequences, not a table
        return Splits(train=texts_from_rows(names, [row for _, row in body], config, what))
    label_index = find_label_column(names, config.label_column, what)
    features = [j for j in range(width) if j != label_index]
    if not features:
        raise DataError(f"{what}: no feature columns besides the label column")
    text = [j for j in features if not all(is_number(row[j]) for _, row in body)]
    if text:  # a column with words is categorical: the table stays raw (object) until the spec codes it
        x = np.empty((len(body), len(features)), dtype=object)  # (N, D)
        for i, (_, row) in enumerate(body):
            x[i] = [(row[j].strip() or None) if j in text else (float(row[j]) if row[j].strip() else math.nan)
                    for j in features]
    else:
        x = np.empty((len(body), len(features)), dtype=np.float64)  # (N, D)
        for i, (_, row) in enumerate(body):
            x[i] = [float(row[j]) if row[j].strip() else math.nan for j in features]
    y = class_names = None
    if label_index is not None:
        values = [row[label_index].strip() for _, row in body]
        for (number, _), value in zip(body, values, strict=True):
            if not value:
                raise NoLabelColumn(f"{what}: row {number}: empty label in column {config.label_column!r}")
        y, class_names = encode_labels(values, what)
    feature_names = [names[j] for j in features] if names else None
    return Splits(
        train=RawData(x=x, y=y, kind="table", class_names=class_names, feature_names=feature_names)
    )


def load_parquet(path: Path, config: DataConfig) -> Splits:
    """Read a Parquet file of numeric and text columns (needs pyarrow); text columns are kept as
    text (an object array) for the spec to treat as categorical.

    Raises
    ------
    DataError
        pyarrow is missing, the file is unreadable, a feature column is neither numbers nor text, or the
        label column is absent or has missing values.
    """
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("reading Parquet needs pyarrow: pip install 'vaekit[parquet]'") from None
    what = f"Parquet file '{path}'"
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{what}: cannot be read ({error.__class__.__name__})") from None
    if table.num_rows == 0:
        raise DataError(f"{what}: no rows")
    names = list(table.column_names)
    label_index = find_label_column(names, config.label_column, what)
    features = [name for j, name in enumerate(names) if j != label_index]
    if not features:
        raise DataError(f"{what}: no feature columns besides the label column")
    columns = []
    for name in features:
        column = table.column(name)
        kind = column.type
        numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
        if numeric:  # nulls become NaN through the float cast
            columns.append(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False))
        # Text; booleans too, as "True"/"False" like a CSV's, so they are written back as booleans, never 1/0.
        elif (pa.types.is_boolean(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)
              or pa.types.is_dictionary(kind)):
            columns.append(np.array([None if v is None else str(v) for v in column.to_pylist()], dtype=object))
        else:
            raise DataError(f"{what}: column {name!r} has type {kind}, expected numbers or text")
    x = np.stack(columns, axis=1)  # (N, D)
    y = class_names = None
    if label_index is not None:
        values = table.column(names[label_index]).to_pylist()
        if any(value is None for value in values):
            raise NoLabelColumn(f"{what}: missing labels in column {config.label_column!r}")
        y, class_names = encode_labels([str(value) for value in values], what)
    return Splits(
        train=RawData(x=x, y=y, kind="table", class_names=class_names, feature_names=features)
    )


PATH_LOADERS.add(".csv", load_csv)
PATH_LOADERS.add(".parquet", load_parquet)


def from_frame(frame, label_column: str | None = None) -> RawData:
    """A pandas DataFrame as a table: numeric and boolean columns as numbers (NaN missing), any
    other column (text, pandas categoricals) as text, ``label_column`` as labels."""
    what = "DataFrame"
    names = [str(name) for name in frame.columns]
    label_index = find_label_column(names, label_column, what)
    features = [name for j, name in enumerate(frame.columns) if j != label_index]
    if not features or len(frame) == 0:
        raise DataError(f"{what}: expected at least one feature column and one row")
    columns = []
    for name in features:
        series = frame[name]
        if series.dtype.kind in "biuf":
            columns.append(series.to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            values, missing = series.astype(object).tolist(), series.isna().tolist()
            columns.append(np.array([None if gap else str(v) for v, gap in zip(values, missing, strict=True)],
                                    dtype=object))
    x = np.stack(columns, axis=1)
    y = class_names = None
    if label_index is not None:
        values = frame.iloc[:, label_index].tolist()
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
            raise DataError(f"{what}: missing labels in column {label_column!r}")
        y, class_names = encode_labels([str(v) for v in values], what)
    return RawData(x=x, y=y, kind="table", class_names=class_names, feature_names=[str(n) for n in features])
