"""Label columns of delimited files and frames: finding the column and coding its values as classes.

Shared by the table and the text sources (a CSV may hold either).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vaekit.errors import DataError


def is_number(cell: str) -> bool:
    """Whether a cell reads as a number (an empty cell counts: a hole in a numeric column)."""
    try:
        float(cell)
    except ValueError:
        return not cell.strip()
    return True


def encode_labels(values: Sequence[str], what: str) -> tuple[np.ndarray, list[str]]:
    """Map label values to 0..K-1 by sorted value (numerically when every value is a number).

    Returns
    -------
    tuple
        ``(y, class_names)``: (N,) int64 codes and the K distinct values as strings.
    """
    distinct = set(values)
    if not distinct:
        raise DataError(f"{what}: no labels")
    ordered = sorted(distinct, key=float) if all(is_number(value) for value in distinct) else sorted(distinct)
    code = {value: k for k, value in enumerate(ordered)}
    y = np.fromiter((code[value] for value in values), dtype=np.int64, count=len(values))
    return y, [str(value) for value in ordered]


class NoLabelColumn(DataError):
    """The file has no column of that name (or no header), or rows with no label in it: a trained
    model's new inputs may lack labels it does not need (:meth:`vaekit.Run.inputs` reads them
    without)."""


def find_label_column(names: list[str] | None, label_column: str | None, what: str) -> int | None:
    """The index of ``data.label_column`` among a file's column names (None when no label is asked for)."""
    if label_column is None:
        return None
    if names is None:
        raise NoLabelColumn(
            f"{what}: data.label_column={label_column!r} needs a header row, and the file has none"
        )
    if label_column not in names:
        raise NoLabelColumn(
            f"{what}: no column {label_column!r} for data.label_column; columns: {', '.join(names)}"
        )
    return names.index(label_column)
