"""Text and molecules as sources: a text file (one sentence or one SMILES a line), a CSV column
(``data.text_column``), and the MOSES benchmark sets (``moses``) read from the ``molsets`` wheel's
data files without importing its code (its dependencies do not build; install it with
``pip install --no-deps molsets``).

Every source gives :class:`~vaekit.data.sources.base.RawData` of kind ``"sequence"``: ``x`` is an
(N,) object array of strings; the data spec tokenises them (:mod:`vaekit.data.tokens`).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import importlib.metadata
import importlib.util
import logging
from pathlib import Path

import numpy as np

from vaekit.data.sources.base import PATH_LOADERS, RawData, Source, Splits, register_source
from vaekit.data.sources.labels import encode_labels, find_label_column
from vaekit.errors import DataError
from vaekit.sections import DataConfig

log = logging.getLogger("vaekit")

MOSES_INSTALL = "pip install --no-deps molsets"


def sequences(texts: list[str], y: np.ndarray | None = None, class_names: list[str] | None = None) -> RawData:
    return RawData(x=np.array(texts, dtype=object), y=y, kind="sequence", class_names=class_names)


def load_lines(path: Path, config: DataConfig) -> Splits:
    """One sequence a line (blank lines skipped). In a ``.smi`` file a line may carry a name after
    the SMILES string (``CCO ethanol``): only the first field is read."""
    what = f"text file '{path}'"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{what}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise DataError(f"{what}: cannot be read ({error.strerror})") from None
    lines = [line.strip() for line in text.splitlines()]
    if path.suffix.lower() == ".smi":
        lines = [line.split()[0] for line in lines if line]
    kept = [line for line in lines if line]
    if not kept:
        raise DataError(f"{what}: no lines of text")
    return Splits(train=sequences(kept))


def texts_from_rows(names: list[str] | None, body: list[list[str]], config: DataConfig, what: str) -> RawData:
    """A CSV's ``data.text_column`` as sequences (``data.label_column`` as labels, if given)."""
    if names is None:
        raise DataError(f"{what}: data.text_column={config.text_column!r} needs a header row, and the file has none")
    if config.text_column not in names:
        raise DataError(f"{what}: no column {config.text_column!r} for data.text_column; columns: {', '.join(names)}")
    column = names.index(config.text_column)
    texts = [row[column].strip() for row in body]
    keep = [i for i, t in enumerate(texts) if t]
    if len(keep) < len(texts):
        log.warning("%s: %d rows with an empty %r left out", what, len(texts) - len(keep), config.text_column)
    if not keep:
        raise DataError(f"{what}: column {config.text_column!r} is empty")
    label = find_label_column(names, config.label_column, what)
    y = class_names = None
    if label is not None:
        y, class_names = encode_labels([body[i][label].strip() for i in keep], what)
    return sequences([texts[i] for i in keep], y, class_names)


# ---------------------------------------------------------------- MOSES (Polykovskiy et al. 2020)
def moses_folder() -> Path | None:
    """Where the molsets wheel keeps its data files, found without importing the package: from the
    installed distribution's files, else from where ``moses`` would be imported from."""
    candidates = []
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        candidates.append(Path(importlib.metadata.distribution("molsets").locate_file("moses")))
    spec = importlib.util.find_spec("moses")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(Path(next(iter(spec.submodule_search_locations))))
    for package in candidates:
        folder = package / "dataset" / "data"
        if (folder / "train.csv.gz").is_file():
            return folder
    return None


def _read_moses(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        header = next(rows)
        if "SMILES" not in header:
            raise DataError(f"'{path}': expected a SMILES column, got {', '.join(header)}")
        column = header.index("SMILES")
        return [row[column] for row in rows if row]


def load_moses(config: DataConfig) -> Splits:
    """The MOSES training set (1,584,663 molecules) and its test set (176,074) as SMILES."""
    folder = moses_folder()
    if folder is None:
        raise DataError(f"moses: the molsets package is not installed ({MOSES_INSTALL}; vaekit reads its data "
                        "files and never imports it)")
    return Splits(train=sequences(_read_moses(folder / "train.csv.gz")),
                  test=sequences(_read_moses(folder / "test.csv.gz")))


register_source(Source(
    name="moses",
    description="MOSES molecules as SMILES: 1.58 M training, 176 k test",
    load=load_moses,
    available_offline=lambda config: moses_folder() is not None,
    fetch=MOSES_INSTALL,
))
PATH_LOADERS.add(".txt", load_lines)
PATH_LOADERS.add(".smi", load_lines)
