"""Tables (N, D): one typed column per feature (:mod:`vaekit.data.columns`), matched by name.

A spec without columns (run folders from before typed columns existed) scales its table as one
array, as the :class:`~vaekit.data.kinds.base.DataKind` defaults do.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from vaekit.data.columns import decode, encode, infer_columns
from vaekit.data.kinds.base import IMAGE_NETWORKS, DataKind, check_support, class_names_of, refuse_conv, refuse_mismatch
from vaekit.data.quantiles import from_model
from vaekit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from vaekit.data.sources.base import RawData
    from vaekit.data.spec import DataSpec
    from vaekit.sections import DataConfig

log = logging.getLogger("vaekit")


class TableKind(DataKind):
    name = "table"
    supports = frozenset({"onnx", "synthesis"})

    def fit(self, raw: RawData, config: DataConfig, others: list[RawData], make: type[DataSpec]) -> DataSpec:
        """A :class:`~vaekit.data.columns.Column` per column; continuous columns are mapped to normal
        scores (``data.continuous_transform`` quantile, or auto with ``data.scale`` auto), or
        standardised (``data.scale`` auto or standardize), min-max scaled (unit) or left (none)."""
        x = raw.x if raw.x.dtype == object or np.issubdtype(raw.x.dtype, np.number) else raw.x.astype(object)
        scale = "standardize" if config.scale == "auto" else config.scale
        transform = config.continuous_transform
        if transform == "auto":
            transform = "quantile" if config.scale == "auto" else "standardize"
        columns = infer_columns(x, raw.feature_names, config.column_types, f"data {config.source!r}",
                                [o.x for o in others], scale, transform=transform)
        spec = make(kind="table", shape=[x.shape[1]], scale="none", class_names=class_names_of(raw),
                    feature_names=[c.name for c in columns], columns=columns)
        if raw.y is not None and spec.class_names:  # synthetic rows draw their classes in these shares
            counts = np.bincount(np.asarray(raw.y, dtype=np.int64), minlength=len(spec.class_names))
            spec.class_shares = (counts / counts.sum()).tolist()
        scaled = spec.transform(x, name=config.source)
        missing = torch.isnan(scaled)
        spec.has_missing = bool(missing.any())
        finite = scaled[~missing]
        spec.value_range = [float(finite.min()), float(finite.max())] if finite.numel() else [0.0, 0.0]
        return spec

    def transform(self, spec: DataSpec, x: np.ndarray | Tensor, name: str = "input", allow_nan: bool = False,
                  check_range: bool = False) -> Tensor:
        """Each column coded (NaN where a value is missing: the model masks it)."""
        if spec.columns is None:
            return super().transform(spec, x, name, allow_nan, check_range)
        array = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
        if array.ndim != 2:
            raise DataError(f"{name}: samples have shape {tuple(array.shape[1:])}, the model expects "
                            f"({len(spec.columns)},): one value per column")
        return encode(spec.columns, array, name)

    def inverse(self, spec: DataSpec, x: Tensor) -> Tensor:
        """Continuous columns back to their units; categories stay codes (:meth:`to_values` names them)."""
        if spec.columns is None:
            return super().inverse(spec, x)
        if any(c.quantiles is not None for c in spec.columns):
            out = x.detach().cpu().double().numpy().copy()
            for j, column in enumerate(spec.columns):
                if column.kind == "continuous":
                    out[..., j] = from_model(column, out[..., j])
            return torch.from_numpy(out).to(device=x.device, dtype=x.dtype)
        loc = torch.tensor([c.loc if c.kind == "continuous" else 0.0 for c in spec.columns], device=x.device)
        std = torch.tensor([c.std if c.kind == "continuous" else 1.0 for c in spec.columns], device=x.device)
        return x * std.to(x.dtype) + loc.to(x.dtype)

    def to_values(self, spec: DataSpec, x: Tensor, model_space: bool = True) -> np.ndarray:
        if spec.columns is None:
            return super().to_values(spec, x, model_space)
        return decode(spec.columns, x, model_space)

    def align(self, spec: DataSpec, raw: RawData, what: str = "input", label_column: str | None = None) -> RawData:
        """Columns matched by name: a missing column is an error naming it, extra columns are left out
        with a warning (``label_column``, read as a column when its labels were not needed, without
        one). Rows without names (headerless files) are left as they are."""
        names, given = spec.feature_names, raw.feature_names
        if not names or not given or list(given) == list(names):
            return raw
        missing = [name for name in names if name not in given]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:10]) + (", ..." if len(missing) > 10 else "")
            raise DataError(f"{what}: missing column{'s' if len(missing) > 1 else ''} {shown}; the model was "
                            f"trained on {', '.join(names[:20])}{', ...' if len(names) > 20 else ''}")
        extra = [name for name in given if name not in names and name != label_column]
        if extra:
            log.warning("%s: columns %s are not the model's and are left out of it", what, ", ".join(extra[:10]))
        order = [list(given).index(name) for name in names]
        return dataclasses.replace(raw, x=raw.x[:, order], feature_names=list(names))

    def unsupported(self, spec: DataSpec, what: str) -> str | None:
        """Synthetic rows need the typed columns (their kinds, ranges and holes)."""
        if what == "synthesis" and spec.columns is None:
            return ("this table run was trained before vaekit typed a table's columns (its data_spec.json has no "
                    "columns): retrain it to synthesize rows")
        return super().unsupported(spec, what)

    def default_likelihood(self, spec: DataSpec) -> str:
        """The per-column likelihood for a table with columns."""
        return "table" if spec.columns is not None else super().default_likelihood(spec)

    def check_likelihood(self, spec: DataSpec, name: str, support: str) -> None:
        """Categorical columns and holes: only the table likelihood handles them."""
        if spec.columns is None:
            return super().check_likelihood(spec, name, support)
        if support == "tokens":
            refuse_mismatch(spec, name)
        if support != "table":
            text = [c.name for c in spec.columns if c.kind == "categorical"]
            if text or spec.has_missing:
                why = f"categorical columns ({', '.join(text[:5])})" if text else "missing values"
                raise ConfigError(f"likelihood {name!r}: this table has {why}; only the per-column table "
                                  "likelihood handles them: use model.likelihood=auto")
        check_support(spec, name, support)

    def network(self, spec: DataSpec, requested: str) -> str:
        """The table encoder (its input layer reads the columns' codes and holes)."""
        if spec.columns is None:
            return super().network(spec, requested)
        if requested in IMAGE_NETWORKS:
            refuse_conv(f"this data has shape {spec.shape}", requested)
        return "table"

    def encoder_masks_holes(self, spec: DataSpec) -> bool:
        return spec.columns is not None  # the table encoder's input layer masks them

    def column_names(self, spec: DataSpec) -> list[str] | None:
        return spec.feature_names if spec.columns is not None else None

    def write(self, spec: DataSpec, values: Tensor, out: Path, nrow: int | None = None,
              row_captions: list[str] | None = None) -> Path:
        """.csv: the table's column names and categories by name."""
        if out.suffix.lower() == ".csv" and spec.columns is not None:
            from vaekit.files import save_array

            return save_array(spec.to_table(values, model_space=False), out, header=spec.feature_names)
        return super().write(spec, values, out, nrow, row_captions)
