"""What a data source returns, and the registry of named sources.

A source turns a :class:`~vaekit.config.DataConfig` into raw numpy arrays: it knows file formats
and where files live, nothing about scaling or models (that is :mod:`vaekit.data.spec`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vaekit.registry import Registry
from vaekit.sections import DataConfig


@dataclass
class RawData:
    """Samples as loaded from disk, before any scaling.

    ``x`` is (N, C, H, W) for images (any numeric dtype: uint8 images stay uint8), (N, D) for
    tables (numbers, or objects when some columns hold text), (N,) strings for sequences (text,
    SMILES). ``y`` is (N,) int64 labels or None. ``factors`` is (N, K) int64 ground-truth factor
    indices, named by ``factor_names``, when the source generated the data (dSprites).
    """

    x: np.ndarray
    y: np.ndarray | None = None
    kind: str = "table"  # a name in vaekit.data.kinds.KINDS: "image", "table" or "sequence"
    max_level: float | None = None  # the format's full-scale value (255 for 8-bit images)
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    factors: np.ndarray | None = None
    factor_names: list[str] | None = None

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: np.ndarray) -> RawData:
        return RawData(
            x=self.x[index],
            y=None if self.y is None else self.y[index],
            kind=self.kind,
            max_level=self.max_level,
            class_names=self.class_names,
            feature_names=self.feature_names,
            factors=None if self.factors is None else self.factors[index],
            factor_names=self.factor_names,
        )


@dataclass
class Splits:
    """A source's data: the training split and, when the source defines one, its test split."""

    train: RawData
    test: RawData | None = None


@dataclass
class Source:
    """A named dataset: how to load it and whether it can be loaded without the network; ``fetch``
    says what getting it takes when it cannot ("31 MB download")."""

    name: str
    description: str
    load: Callable[[DataConfig], Splits]
    available_offline: Callable[[DataConfig], bool] = field(default=lambda config: True)
    fetch: str = "download"


SOURCES: Registry[Source] = Registry("dataset")


def register_source(source: Source) -> Source:
    SOURCES.add(source.name, source)
    return source


# Loaders for a path given as the source, keyed by file suffix (".npz", ".csv"…) or "folder".
PathLoader = Callable[[Path, DataConfig], Splits]
PATH_LOADERS: Registry[PathLoader] = Registry("file type")


def machine_memory() -> int:
    """Bytes of physical memory (a large number where the system does not say): a file whose header
    declares more than half of it is refused before anything is allocated."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40
