"""DataSpec: what input a model accepts and how raw values are scaled, fitted on the training split.

The spec is saved beside the weights (``data_spec.json``), so a loaded model validates and scales new
input exactly as it did in training, and maps its outputs back to the data's own units.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from vaekit.config import DataConfig
from vaekit.data.columns import Column, decode, encode, infer_columns
from vaekit.data.sources.base import RawData
from vaekit.data.tokens import Vocabulary
from vaekit.errors import ConfigError, DataError

log = logging.getLogger("vaekit")

Scale = Literal["unit", "standardize", "none"]


@dataclass
class DataSpec:
    kind: Literal["image", "table", "sequence"]
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
        """Choose the scaling from ``config.scale`` and the training data, and record ranges."""
        x = raw.x
        if len(x) == 0:
            raise DataError(f"data {config.source!r}: the training split is empty")
        if raw.kind == "table":
            return cls._fit_table(raw, config, [o for o in others or [] if o is not None and len(o)])
        if raw.kind == "sequence":
            return cls._fit_sequence(raw, config)
        if not np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_:
            raise DataError(f"data {config.source!r}: expected numeric values, got dtype {x.dtype}")
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
        with np.errstate(invalid="ignore"):  # inf % 1 is NaN, said by the finiteness check, not by numpy
            integral = np.issubdtype(x.dtype, np.integer) or bool(np.all(np.mod(x[:2000], 1) == 0))
        if scale == "unit" and integral and float(max_level).is_integer() and not config.binarize:
            spec.n_levels = int(max_level) + 1
        if config.binarize:
            spec.n_levels = 2
        return spec

    @classmethod
    def _fit_table(cls, raw: RawData, config: DataConfig, others: list[RawData]) -> DataSpec:
        """A table: a :class:`~vaekit.data.columns.Column` per column; continuous columns are
        standardised (``data.scale`` auto or standardize), min-max scaled (unit) or left (none)."""
        x = raw.x if raw.x.dtype == object or np.issubdtype(raw.x.dtype, np.number) else raw.x.astype(object)
        scale = "standardize" if config.scale == "auto" else config.scale
        columns = infer_columns(x, raw.feature_names, config.column_types, f"data {config.source!r}",
                                [o.x for o in others], scale)
        class_names = raw.class_names
        if class_names is None and raw.y is not None and len(raw.y):
            class_names = [str(i) for i in range(int(np.max(raw.y)) + 1)]
        spec = cls(kind="table", shape=[x.shape[1]], scale="none", class_names=class_names,
                   feature_names=[c.name for c in columns], columns=columns)
        scaled = spec.transform(x, name=config.source)
        missing = torch.isnan(scaled)
        spec.has_missing = bool(missing.any())
        finite = scaled[~missing]
        spec.value_range = [float(finite.min()), float(finite.max())] if finite.numel() else [0.0, 0.0]
        return spec

    @classmethod
    def _fit_sequence(cls, raw: RawData, config: DataConfig) -> DataSpec:
        """Text or molecules: the vocabulary of the training split (``data.tokens``; by default
        SMILES tokens for ``.smi`` files and moses, characters otherwise)."""
        source = str(config.source).lower()
        kind = config.tokens or ("smiles" if source.endswith(".smi") or source == "moses" else "char")
        vocabulary = Vocabulary.fit(raw.x.tolist(), kind, config.min_freq, config.max_len,
                                    what=f"data {config.source!r}")
        spec = cls(kind="sequence", shape=[vocabulary.length], scale="none", class_names=raw.class_names,
                   value_range=[0.0, float(len(vocabulary) - 1)], n_levels=len(vocabulary), vocabulary=vocabulary)
        if config.properties:
            from vaekit.data import properties

            if kind not in ("smiles", "selfies"):
                raise ConfigError(f"data.properties are properties of molecules; they need data.tokens=smiles or "
                                  f"selfies (got {kind})")
            names = properties.check_names(config.properties)
            values = properties.compute(raw.x[: min(len(raw), 20000)].tolist(), names)  # enough for two moments
            if np.isnan(values).all(axis=0).any():
                raise DataError(f"data {config.source!r}: RDKit could read none of the training molecules, so "
                                f"there is no {', '.join(names)} to learn")
            spec.properties = names
            spec.property_loc = np.nanmean(values, axis=0).tolist()
            spec.property_std = np.maximum(np.nanstd(values, axis=0), 1e-8).tolist()
        return spec

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

    # ---------------------------------------------------------------- using it
    @property
    def n_classes(self) -> int:
        return len(self.class_names) if self.class_names else 0

    def _stat(self, values: list[float], like: Tensor) -> Tensor:
        stat = torch.tensor(values, dtype=like.dtype, device=like.device)
        return stat.view(-1, 1, 1) if self.kind == "image" else stat

    def transform(self, x: np.ndarray | Tensor, name: str = "input", allow_nan: bool = False,
                  check_range: bool = False) -> Tensor:
        """Validate raw samples (N, *shape) and scale them to the model's float32 space. A table
        with columns codes each column (NaN where a value is missing: the model masks it).
        ``check_range``: a user's inputs far outside the training range are refused or warned
        about (:meth:`check_range`)."""
        if self.columns is not None:
            array = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
            if array.ndim != 2:
                raise DataError(f"{name}: samples have shape {tuple(array.shape[1:])}, the model expects "
                                f"({len(self.columns)},): one value per column")
            return encode(self.columns, array, name)
        if self.vocabulary is not None:
            return self._token_ids(x, name)
        if not isinstance(x, Tensor):
            x = np.asarray(x)  # a list is taken as an array; None or text fail the dtype check below
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
        if check_range:
            self.check_range(x, name)
        if self.binarize:
            x = (x > 0.5).to(torch.float32)
        return x

    # Inputs may stray this share of the training range's width beyond it before they are called far
    # outside: test data rightly exceed the training data a little (unit-scaled levels: 0.1).
    RANGE_SLACK = 0.5

    def check_range(self, x: Tensor, name: str = "input") -> None:
        """Scaled inputs against the range the run was trained on. Unit-scaled data (images, divided
        by their maximum level) far outside [0, 1] are an error: 0..16000 given to a run trained on
        0..16 would be read as nonsense without a word; a little outside is a warning. Other data
        far outside the training range are a warning: a user may mean it."""
        finite = x[torch.isfinite(x)]
        if not finite.numel():
            return
        unit = self.scale == "unit"
        low, high = (min(self.value_range[0], 0.0), 1.0) if unit else self.value_range
        span = max(high - low, 1e-8)
        least, most = float(finite.min()), float(finite.max())
        if unit and self.max_level >= 2 and most <= 1.0 / self.max_level and bool((finite * self.max_level % 1).any()):
            log.warning("%s: values span %.4g..%.4g, the run was trained on 0..%.4g: were they scaled to [0, 1] "
                        "already? give them in the training data's units", name, least * self.max_level,
                        most * self.max_level, self.max_level)
            return
        if least >= low - 1e-3 * span and most <= high + 1e-3 * span:
            return
        slack = 0.1 if unit else self.RANGE_SLACK  # a level is a level: 10% beyond the top is already odd
        far = least < low - slack * span or most > high + slack * span
        as_raw = self.inverse(torch.tensor([least, most, low, high], dtype=torch.float32).view(
            4, *[1] * len(self.shape)).expand(4, *self.shape)).reshape(4, -1)[:, 0] if self.scale == "unit" else None
        shown = [least, most, low, high] if as_raw is None else as_raw.tolist()
        scaled = " (after scaling)" if as_raw is None and self.scale != "none" else ""
        message = (f"{name}: values span {shown[0]:.4g}..{shown[1]:.4g}, the run was trained on "
                   f"{shown[2]:.4g}..{shown[3]:.4g}{scaled}")
        if far and self.scale == "unit":
            raise DataError(f"{message}: rescale the inputs to the training range")
        log.warning("%s; %s", message, "results for inputs far outside it mean little" if far else
                    "outside it the model extrapolates")

    def align(self, raw: RawData, what: str = "input", label_column: str | None = None) -> RawData:
        """New table rows with a header -> their columns in the order the model was trained on,
        matched by name: a missing column is an error naming it, extra columns are left out with a
        warning (``label_column``, read as a column when its labels were not needed, without one).
        Rows without names (images, headerless files) are left as they are."""
        names, given = self.feature_names, raw.feature_names
        if self.kind != "table" or not names or not given or list(given) == list(names):
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

    def _token_ids(self, x: np.ndarray | Tensor, name: str) -> Tensor:
        """Strings (N,) -> token ids (N, positions) as float32 (exact below 2**24, and the model space
        every part of vaekit passes around); ids already (N, positions) are checked and kept."""
        vocabulary = self.vocabulary
        if isinstance(x, Tensor) or (isinstance(x, np.ndarray) and x.dtype.kind not in "OUS"):
            ids = torch.as_tensor(x)
            if ids.ndim != 2 or ids.shape[1] != vocabulary.length:
                raise DataError(f"{name}: token ids have shape {tuple(ids.shape)}, the model expects "
                                f"(N, {vocabulary.length})")
            if not bool(torch.isfinite(ids).all()) or bool(((ids < 0) | (ids >= len(vocabulary))).any()) \
                    or bool((ids != ids.round()).any()):
                raise DataError(f"{name}: token ids must be whole numbers in 0..{len(vocabulary) - 1}")
            return ids.to(torch.float32)
        texts = np.asarray(x, dtype=object).reshape(-1).tolist()
        ids, _ = vocabulary.encode(texts, what=name)
        return torch.from_numpy(ids).to(torch.float32)

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
        if self.vocabulary is None:
            raise DataError(f"this model's data are {self.kind} data, not text")
        values = ids.detach().cpu().numpy() if isinstance(ids, Tensor) else np.asarray(ids)
        return self.vocabulary.decode(np.rint(values).astype(np.int64))

    def inverse(self, x: Tensor) -> Tensor:
        """Map model-space values back to the data's own units (the inverse of the scaling); a
        table's categories stay codes (:meth:`to_table` names them)."""
        if self.columns is not None:
            loc = torch.tensor([c.loc if c.kind == "continuous" else 0.0 for c in self.columns], device=x.device)
            std = torch.tensor([c.std if c.kind == "continuous" else 1.0 for c in self.columns], device=x.device)
            return x * std.to(x.dtype) + loc.to(x.dtype)
        if self.scale == "unit":
            return x * self.max_level
        if self.scale == "standardize":
            return x * self._stat(self.std, x) + self._stat(self.loc, x)
        return x

    def to_table(self, x: Tensor, model_space: bool = True) -> np.ndarray:
        """Table rows, in model space (or already in data units: ``model_space=False``) -> raw
        values, categories by name (an object array if any are text)."""
        if self.columns is None:
            return (self.inverse(x) if model_space else x).detach().cpu().numpy()
        return decode(self.columns, x, model_space)

    # ---------------------------------------------------------------- likelihood choice
    def default_likelihood(self) -> str:
        """The per-column likelihood for a table with columns; Bernoulli for data in [0, 1]
        (images, binary); Gaussian for anything unbounded."""
        if self.columns is not None:
            return "table"
        if self.vocabulary is not None:
            return "tokens"
        low, high = self.value_range
        return "bernoulli" if low >= 0.0 and high <= 1.0 else "gaussian"

    def check_likelihood(self, name: str, support: str) -> None:
        """Refuse a likelihood whose support does not cover the (scaled) data, naming the fix."""
        if support == "table" and self.columns is None:
            raise ConfigError(f"likelihood {name!r} is for tables with typed columns; this data is {self.kind} data")
        if (support == "tokens") != (self.vocabulary is not None):
            raise ConfigError(f"likelihood {name!r} does not fit {self.kind} data; use model.likelihood=auto "
                              f"({self.default_likelihood()} here)")
        if self.columns is not None and support != "table":
            text = [c.name for c in self.columns if c.kind == "categorical"]
            if text or self.has_missing:
                why = f"categorical columns ({', '.join(text[:5])})" if text else "missing values"
                raise ConfigError(f"likelihood {name!r}: this table has {why}; only the per-column table "
                                  "likelihood handles them: use model.likelihood=auto")
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
