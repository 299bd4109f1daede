"""DataSpec: what input a model accepts and how raw values are scaled, fitted on the training split.

The spec is saved beside the weights (``data_spec.json``), so a loaded model validates and scales new
input exactly as it did in training, and maps its outputs back to the data's own units.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from vaekit.data.columns import Column
from vaekit.data.kinds import KINDS, DataKind
from vaekit.data.sources.base import RawData
from vaekit.data.tokens import Vocabulary
from vaekit.errors import DataError
from vaekit.sections import DataConfig

Scale = Literal["unit", "standardize", "none"]


@dataclass
class DataSpec:
    kind: str  # a name in vaekit.data.kinds.KINDS: "image", "table" or "sequence"
    shape: list[int]  # one sample, e.g. [1, 28, 28] or [D]
    scale: Scale
    max_level: float | None = None  # "unit": raw values are divided by this
    loc: list[float] | None = None  # "standardize": per feature (tables) or channel (images)
    std: list[float] | None = None
    binarize: bool = False
    value_range: list[float] = field(default_factory=lambda: [0.0, 1.0])  # after scaling, on train
    n_levels: int | None = None  # distinct evenly spaced values in [0, 1] (8-bit pixels: 256)
    class_names: list[str] | None = None
    class_shares: list[float] | None = None  # tables: each class's share of the training rows (synthesis)
    feature_names: list[str] | None = None
    # Tables: one entry per column (kind, categories, standardisation); None for images and for
    # run folders written before columns existed, which scale the table as one array.
    columns: list[Column] | None = None
    has_missing: bool = False  # the training table had empty cells
    # Sequences (text, molecules): the tokeniser and its vocabulary; shape is [positions].
    vocabulary: Vocabulary | None = None
    # Molecules with a property head (data.properties): the RDKit properties and their training
    # mean and standard deviation (the head predicts standardised values).
    properties: list[str] | None = None
    property_loc: list[float] | None = None
    property_std: list[float] | None = None

    # ---------------------------------------------------------------- fitting and persistence
    @classmethod
    def fit(cls, raw: RawData, config: DataConfig, others: list[RawData] | None = None) -> DataSpec:
        """Choose the scaling from ``config.scale`` and the training data, and record ranges (as the
        data's kind does: :meth:`DataKind.fit <vaekit.data.kinds.base.DataKind.fit>`)."""
        if len(raw.x) == 0:
            raise DataError(f"data {config.source!r}: the training split is empty")
        others = [o for o in others or [] if o is not None and len(o)]
        return KINDS.get(raw.kind).fit(raw, config, others, make=cls)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, tree: dict[str, Any]) -> DataSpec:
        tree = dict(tree)
        if tree.get("columns") is not None:
            tree["columns"] = [Column(**column) for column in tree["columns"]]
        if tree.get("vocabulary") is not None:
            tree["vocabulary"] = Vocabulary.from_dict(tree["vocabulary"])
        return cls(**tree)

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    # ---------------------------------------------------------------- using it (asks the kind)
    @property
    def data_kind(self) -> DataKind:
        """What this kind of data does (:mod:`vaekit.data.kinds`)."""
        return KINDS.get(self.kind)

    @property
    def n_classes(self) -> int:
        return len(self.class_names) if self.class_names else 0

    def transform(self, x: np.ndarray | Tensor, name: str = "input", allow_nan: bool = False,
                  check_range: bool = False) -> Tensor:
        """Validate raw samples (N, *shape) and scale them to the model's float32 space. A table
        with columns codes each column (NaN where a value is missing: the model masks it).
        ``check_range``: a user's inputs far outside the training range are refused or warned
        about (:meth:`check_range`)."""
        return self.data_kind.transform(self, x, name, allow_nan, check_range)

    # Inputs may stray this share of the training range's width beyond it before they are called far
    # outside: test data rightly exceed the training data a little (unit-scaled levels: 0.1).
    RANGE_SLACK = 0.5

    def check_range(self, x: Tensor, name: str = "input") -> None:
        """Scaled inputs against the range the run was trained on. Unit-scaled data (images, divided
        by their maximum level) far outside [0, 1] are an error: 0..16000 given to a run trained on
        0..16 would be read as nonsense without a word; a little outside is a warning. Other data
        far outside the training range are a warning: a user may mean it."""
        self.data_kind.check_range(self, x, name)

    def align(self, raw: RawData, what: str = "input", label_column: str | None = None) -> RawData:
        """New table rows with a header -> their columns in the order the model was trained on,
        matched by name: a missing column is an error naming it, extra columns are left out with a
        warning (``label_column``, read as a column when its labels were not needed, without one).
        Rows without names (images, headerless files) are left as they are."""
        return self.data_kind.align(self, raw, what, label_column)

    def property_targets(self, x: np.ndarray) -> Tensor:
        """Strings -> (N, P) float32 standardised properties (NaN where RDKit cannot read one)."""
        from vaekit.data import properties

        values = properties.compute(np.asarray(x, dtype=object).reshape(-1).tolist(), self.properties or [])
        return torch.from_numpy((values - np.array(self.property_loc)) / np.array(self.property_std)).float()

    def property_units(self, values: Tensor) -> Tensor:
        """Standardised property predictions (..., P) -> the properties' own units."""
        loc = torch.tensor(self.property_loc, device=values.device, dtype=values.dtype)
        return values * torch.tensor(self.property_std, device=values.device, dtype=values.dtype) + loc

    def to_text(self, ids: Tensor | np.ndarray) -> list[str]:
        """Token ids (N, positions) -> strings (SELFIES decoded back to SMILES)."""
        return self.data_kind.to_text(self, ids)

    def inverse(self, x: Tensor) -> Tensor:
        """Map model-space values back to the data's own units (the inverse of the scaling); a
        table's categories stay codes (:meth:`to_table` names them)."""
        return self.data_kind.inverse(self, x)

    def to_table(self, x: Tensor, model_space: bool = True) -> np.ndarray:
        """Table rows, in model space (or already in data units: ``model_space=False``) -> raw
        values, categories by name (an object array if any are text)."""
        return self.data_kind.to_values(self, x, model_space)

    # ---------------------------------------------------------------- likelihood choice
    def default_likelihood(self) -> str:
        """The per-column likelihood for a table with columns; Bernoulli for data in [0, 1]
        (images, binary); Gaussian for anything unbounded."""
        return self.data_kind.default_likelihood(self)

    def check_likelihood(self, name: str, support: str) -> None:
        """Refuse a likelihood whose support does not cover the (scaled) data, naming the fix."""
        self.data_kind.check_likelihood(self, name, support)
