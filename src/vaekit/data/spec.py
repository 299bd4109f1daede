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

from vaekit.config import DataConfig
from vaekit.data.sources.base import RawData
from vaekit.errors import ConfigError, DataError

Scale = Literal["unit", "standardize", "none"]


@dataclass
class DataSpec:
    kind: Literal["image", "table"]
    shape: list[int]  # one sample, e.g. [1, 28, 28] or [D]
    scale: Scale
    max_level: float | None = None  # "unit": raw values are divided by this
    loc: list[float] | None = None  # "standardize": per feature (tables) or channel (images)
    std: list[float] | None = None
    binarize: bool = False
    value_range: list[float] = field(default_factory=lambda: [0.0, 1.0])  # after scaling, on train
    n_levels: int | None = None  # distinct evenly spaced values in [0, 1] (8-bit pixels: 256)
    class_names: list[str] | None = None
    feature_names: list[str] | None = None

    # ---------------------------------------------------------------- fitting and persistence
    @classmethod
    def fit(cls, raw: RawData, config: DataConfig) -> DataSpec:
        """Choose the scaling from ``config.scale`` and the training data, and record ranges."""
        x = raw.x
        if not np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_:
            raise DataError(f"data {config.source!r}: expected numeric values, got dtype {x.dtype}")
        if len(x) == 0:
            raise DataError(f"data {config.source!r}: the training split is empty")
        scale: Scale = config.scale if config.scale != "auto" else ("unit" if raw.kind == "image" else "none")
        max_level = None
        if scale == "unit":
            max_level = raw.max_level or float(np.nanmax(x))
            if max_level <= 0:
                raise DataError(f"data {config.source!r}: cannot scale to [0, 1], the maximum is {max_level}")
        class_names = raw.class_names
        if class_names is None and raw.y is not None and len(raw.y):  # unnamed labels 0..K-1
            class_names = [str(i) for i in range(int(np.max(raw.y)) + 1)]
        spec = cls(
            kind=raw.kind,
            shape=list(x.shape[1:]),
            scale=scale,
            max_level=max_level,
            binarize=config.binarize,
            class_names=class_names,
            feature_names=raw.feature_names,
        )
        if scale == "standardize":
            axes = (0, 2, 3) if raw.kind == "image" else (0,)
            values = x.astype(np.float64)
            spec.loc = np.nanmean(values, axis=axes).tolist()
            spec.std = np.maximum(np.nanstd(values, axis=axes), 1e-8).tolist()
        scaled = spec.transform(x[: min(len(x), 20000)], name=config.source, allow_nan=True)
        if bool(torch.isfinite(scaled).all()):  # the common case; masking 80M values would take seconds
            spec.value_range = [float(scaled.min()), float(scaled.max())]
        else:
            finite = scaled[torch.isfinite(scaled)]
            spec.value_range = [float(finite.min()), float(finite.max())] if finite.numel() else [0.0, 0.0]
        integral = np.issubdtype(x.dtype, np.integer) or bool(np.all(np.mod(x[:2000], 1) == 0))
        if scale == "unit" and integral and float(max_level).is_integer() and not config.binarize:
            spec.n_levels = int(max_level) + 1
        if config.binarize:
            spec.n_levels = 2
        return spec

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, tree: dict[str, Any]) -> DataSpec:
        return cls(**tree)

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    # ---------------------------------------------------------------- using it
    @property
    def n_classes(self) -> int:
        return len(self.class_names) if self.class_names else 0

    def _stat(self, values: list[float], like: Tensor) -> Tensor:
        stat = torch.tensor(values, dtype=like.dtype, device=like.device)
        return stat.view(-1, 1, 1) if self.kind == "image" else stat

    def transform(self, x: np.ndarray | Tensor, name: str = "input", allow_nan: bool = False) -> Tensor:
        """Validate raw samples (N, *shape) and scale them to the model's float32 space."""
        if isinstance(x, np.ndarray):
            if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
                raise DataError(f"{name}: expected numeric values, got dtype {x.dtype}")
            x = torch.from_numpy(np.ascontiguousarray(x))
        if list(x.shape[1:]) != self.shape:
            raise DataError(
                f"{name}: samples have shape {tuple(x.shape[1:])}, the model expects {tuple(self.shape)}"
            )
        x = x.to(torch.float32)
        if not allow_nan and not bool(torch.isfinite(x).all()):
            raise DataError(f"{name}: contains NaN or infinite values")
        if self.scale == "unit":
            x = x / self.max_level
        elif self.scale == "standardize":
            x = (x - self._stat(self.loc, x)) / self._stat(self.std, x)
        if self.binarize:
            x = (x > 0.5).to(torch.float32)
        return x

    def inverse(self, x: Tensor) -> Tensor:
        """Map model-space values back to the data's own units (the inverse of the scaling)."""
        if self.scale == "unit":
            return x * self.max_level
        if self.scale == "standardize":
            return x * self._stat(self.std, x) + self._stat(self.loc, x)
        return x

    # ---------------------------------------------------------------- likelihood choice
    def default_likelihood(self) -> str:
        """Bernoulli for data in [0, 1] (images, binary); Gaussian for anything unbounded."""
        low, high = self.value_range
        return "bernoulli" if low >= 0.0 and high <= 1.0 else "gaussian"

    def check_likelihood(self, name: str, support: str) -> None:
        """Refuse a likelihood whose support does not cover the (scaled) data, naming the fix."""
        low, high = self.value_range
        if support == "unit" and (low < 0.0 or high > 1.0):
            raise ConfigError(
                f"likelihood {name!r} needs data in [0, 1] but the scaled data span "
                f"[{low:g}, {high:g}]; use --set data.scale=unit, or model.likelihood=gaussian"
            )
        if support == "levels" and self.n_levels is None:
            raise ConfigError(
                f"likelihood {name!r} needs data on a fixed grid of levels (8-bit images, digits); "
                "this data has none: use model.likelihood=gaussian or bernoulli"
            )
