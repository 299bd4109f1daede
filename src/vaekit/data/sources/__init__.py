"""Data sources: registered names (``digits``, ``mnist``, ``dsprites``…) and paths (arrays, tables, images).

Importing this package registers every source; :func:`load_source` resolves a config's ``source``.
"""

from __future__ import annotations

from pathlib import Path

from vaekit.data.sources import (  # noqa: F401  (importing registers them)
    arrays,
    cifar,
    digits,
    dsprites,
    idx,
    image_folder,
    tabular,
    text,
)
from vaekit.data.sources.base import PATH_LOADERS, SOURCES, RawData, Source, Splits
from vaekit.errors import DataError
from vaekit.sections import DataConfig

__all__ = ["PATH_LOADERS", "SOURCES", "RawData", "Source", "Splits", "load_source"]


IN_MEMORY = "array"  # data.source of a run trained on samples passed in memory


def load_source(config: DataConfig) -> Splits:
    """Load the named dataset or the file/folder that ``config.source`` names."""
    name = config.source
    if name in SOURCES:
        return SOURCES.get(name).load(config)
    path = Path(name).expanduser()
    if name == IN_MEMORY and not path.exists():
        raise DataError("this run was trained on samples passed in memory (vaekit.train(data=...)): it has no data "
                        "source to read again; pass the inputs (--data PATH, or the samples themselves in Python)")
    if not path.exists():
        known = ", ".join(SOURCES)
        raise DataError(
            f"data source {name!r} is neither a dataset name ({known}) nor an existing path"
        )
    key = "folder" if path.is_dir() else "".join(path.suffixes[-1:]).lower()
    if key not in PATH_LOADERS:
        kinds = ", ".join(PATH_LOADERS)
        raise DataError(f"data file {name!r}: unsupported type {key!r}; expected one of: {kinds}")
    return PATH_LOADERS.get(key)(path, config)
