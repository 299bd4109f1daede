"""The DataKind protocol: what vaekit does differently for each kind of data, asked of the kind.

Its defaults treat samples as numeric arrays (N, *shape) scaled as a whole: divided by a maximum
level ("unit"), standardised per feature or channel ("standardize"), or left ("none"). Images use
them with channel statistics; a table from before typed columns existed falls back to them.
"""

from __future__ import annotations

import logging
from abc import ABC
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from vaekit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from vaekit.config import DataConfig, RunConfig
    from vaekit.data.sources.base import RawData
    from vaekit.data.spec import DataSpec

log = logging.getLogger("vaekit")

# What a kind cannot do (DataKind.unsupported), as the line that says so; the caller adds what it was
# asked for (an option, a file). "{kind}" is the spec's kind.
REFUSALS = {
    "figures": "this model's data are tables, not images; write .npy or .csv",  # an image grid or GIF
    "png": "this model's data are tables, not images; write .csv or .npy",  # --out FILE.png
    "extremes": "these data are tables, not images; no figure of extremes",
    "fid": "sample quality (FID/KID) is defined for images; this model's data are tables",
    "reconstruction": "reconstruction quality (PSNR, SSIM, rFID) is defined for images; this run's data are "
                      "{kind}s",
    "upload": "this run's data are {kind}s; uploads are images",
    "decoding": "this run's data are {kind} data, not text or molecules",  # decoding strategies
    "molecules": "this run was not trained on molecules (SMILES or SELFIES tokens)",
    "synthesis": "synthetic rows come from a run trained on a table (CSV, Parquet or a DataFrame); this run's "
                 "data are {kind}s: use vaekit sample",
}


class DataKind(ABC):
    """A kind of data (``DataSpec.kind``): how its spec is fitted and applied, which likelihoods
    and network fit it, and how its values are written, shown and judged.

    A new kind is one file in ``vaekit/data/kinds/`` holding a subclass, and one ``KINDS.add`` line in
    ``vaekit/data/kinds/__init__.py``. It must set :attr:`name`; every method has a default for
    numeric arrays (N, *shape): override those the kind does differently (:meth:`network` names the
    ``vaekit.networks.NETWORKS`` entry that reads it; a new network is one module there).
    A kind names networks and likelihoods (registry keys) and never imports them: it lives at the
    data layer, below both. It imports ``DataSpec`` only for type checking: :meth:`fit` builds
    the record with the class it is given (``make``).
    """

    name: ClassVar[str]
    supports: ClassVar[frozenset[str]] = frozenset({"onnx"})  # what of REFUSALS (and "onnx") it can do
    stat_axes: ClassVar[tuple[int, ...]] = (0,)  # the axes "standardize" averages over (images: all but C)
    auto_scale: ClassVar[str] = "none"  # data.scale=auto

    # ---------------------------------------------------------------- the spec
    def fit(self, raw: RawData, config: DataConfig, others: list[RawData], make: type[DataSpec]) -> DataSpec:
        """The record of the training split ``raw`` (``others``: the other splits, non-empty)."""
        x = raw.x
        if not np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_:
            raise DataError(f"data {config.source!r}: expected numeric values, got dtype {x.dtype}")
        scale = config.scale if config.scale != "auto" else self.auto_scale
        max_level = None
        if scale == "unit":
            max_level = raw.max_level or float(np.nanmax(x))
            if max_level <= 0:
                raise DataError(f"data {config.source!r}: cannot scale to [0, 1], the maximum is {max_level}")
        spec = make(
            kind=raw.kind,
            shape=list(x.shape[1:]),
            scale=scale,
            max_level=max_level,
            binarize=config.binarize,
            class_names=class_names_of(raw),
            feature_names=raw.feature_names,
        )
        if scale == "standardize":
            values = x.astype(np.float64)
            spec.loc = np.nanmean(values, axis=self.stat_axes).tolist()
            spec.std = np.maximum(np.nanstd(values, axis=self.stat_axes), 1e-8).tolist()
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

    def _stat(self, values: list[float], like: Tensor) -> Tensor:
        stat = torch.tensor(values, dtype=like.dtype, device=like.device)
        return stat.view(-1, *[1] * (len(self.stat_axes) - 1)) if len(self.stat_axes) > 1 else stat

    def transform(self, spec: DataSpec, x: np.ndarray | Tensor, name: str = "input", allow_nan: bool = False,
                  check_range: bool = False) -> Tensor:
        """Raw samples (N, *shape) -> the model's float32 space (see :meth:`DataSpec.transform`)."""
        if not isinstance(x, Tensor):
            x = np.asarray(x)  # a list is taken as an array; None or text fail the dtype check below
        if isinstance(x, np.ndarray):
            if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
                raise DataError(f"{name}: expected numeric values, got dtype {x.dtype}")
            x = torch.from_numpy(np.ascontiguousarray(x))
        if list(x.shape[1:]) != spec.shape:
            raise DataError(
                f"{name}: samples have shape {tuple(x.shape[1:])}, the model expects {tuple(spec.shape)}"
            )
        x = x.to(torch.float32)
        if not allow_nan and not bool(torch.isfinite(x).all()):
            raise DataError(f"{name}: contains NaN or infinite values")
        if spec.scale == "unit":
            x = x / spec.max_level
        elif spec.scale == "standardize":
            x = (x - self._stat(spec.loc, x)) / self._stat(spec.std, x)
        if check_range:
            self.check_range(spec, x, name)
        if spec.binarize:
            x = (x > 0.5).to(torch.float32)
        return x

    def check_range(self, spec: DataSpec, x: Tensor, name: str = "input") -> None:
        """Scaled inputs against the training range (see :meth:`DataSpec.check_range`)."""
        finite = x[torch.isfinite(x)]
        if not finite.numel():
            return
        unit = spec.scale == "unit"
        low, high = (min(spec.value_range[0], 0.0), 1.0) if unit else spec.value_range
        span = max(high - low, 1e-8)
        least, most = float(finite.min()), float(finite.max())
        if unit and spec.max_level >= 2 and most <= 1.0 / spec.max_level and bool((finite * spec.max_level % 1).any()):
            log.warning("%s: values span %.4g..%.4g, the run was trained on 0..%.4g: were they scaled to [0, 1] "
                        "already? give them in the training data's units", name, least * spec.max_level,
                        most * spec.max_level, spec.max_level)
            return
        if least >= low - 1e-3 * span and most <= high + 1e-3 * span:
            return
        slack = 0.1 if unit else spec.RANGE_SLACK  # a level is a level: 10% beyond the top is already odd
        far = least < low - slack * span or most > high + slack * span
        as_raw = spec.inverse(torch.tensor([least, most, low, high], dtype=torch.float32).view(
            4, *[1] * len(spec.shape)).expand(4, *spec.shape)).reshape(4, -1)[:, 0] if spec.scale == "unit" else None
        shown = [least, most, low, high] if as_raw is None else as_raw.tolist()
        scaled = " (after scaling)" if as_raw is None and spec.scale != "none" else ""
        message = (f"{name}: values span {shown[0]:.4g}..{shown[1]:.4g}, the run was trained on "
                   f"{shown[2]:.4g}..{shown[3]:.4g}{scaled}")
        if far and spec.scale == "unit":
            raise DataError(f"{message}: rescale the inputs to the training range")
        log.warning("%s; %s", message, "results for inputs far outside it mean little" if far else
                    "outside it the model extrapolates")

    def inverse(self, spec: DataSpec, x: Tensor) -> Tensor:
        """Model-space values -> the data's own units."""
        if spec.scale == "unit":
            return x * spec.max_level
        if spec.scale == "standardize":
            return x * self._stat(spec.std, x) + self._stat(spec.loc, x)
        return x

    def to_values(self, spec: DataSpec, x: Tensor, model_space: bool = True) -> np.ndarray:
        """Values in model space (or already in data units: ``model_space=False``) -> a numpy array
        in the data's units (a table's categories by name)."""
        return (spec.inverse(x) if model_space else x).detach().cpu().numpy()

    def to_text(self, spec: DataSpec, ids: Tensor | np.ndarray) -> list[str]:
        """Token ids -> strings; only sequences have them."""
        raise DataError(f"this model's data are {spec.kind} data, not text")

    def align(self, spec: DataSpec, raw: RawData, what: str = "input", label_column: str | None = None) -> RawData:
        """New samples in the order the model was trained on (tables match columns by name)."""
        return raw

    # ---------------------------------------------------------------- likelihoods (names, never classes)
    def default_likelihood(self, spec: DataSpec) -> str:
        """Bernoulli for data in [0, 1] (images, binary); Gaussian for anything unbounded."""
        low, high = spec.value_range
        return "bernoulli" if low >= 0.0 and high <= 1.0 else "gaussian"

    def check_likelihood(self, spec: DataSpec, name: str, support: str) -> None:
        """Refuse a likelihood whose support does not cover the (scaled) data, naming the fix."""
        if support == "table":
            refuse_table_likelihood(spec, name)
        if support == "tokens":
            refuse_mismatch(spec, name)
        check_support(spec, name, support)

    # ---------------------------------------------------------------- networks (NETWORKS names)
    def network(self, spec: DataSpec, requested: str) -> str:
        """The ``vaekit.networks.NETWORKS`` entry for ``model.network=requested`` (auto, mlp, conv or
        ldm): an MLP over the flattened sample; conv and ldm are for images."""
        if requested in IMAGE_NETWORKS:
            refuse_conv(f"this data has shape {spec.shape}", requested)
        return requested if requested != "auto" else "mlp"

    def encoder_masks_holes(self, spec: DataSpec) -> bool:
        """Whether the encoder reads missing values (NaN) as holes; if not, imputation fills them
        with a first guess before encoding."""
        return False

    def column_names(self, spec: DataSpec) -> list[str] | None:
        """The names an error message may point at a feature by (a table's columns), or None."""
        return None

    # ---------------------------------------------------------------- what this data cannot do
    def unsupported(self, spec: DataSpec, what: str) -> str | None:
        """Why this data cannot do ``what`` (a key of ``REFUSALS``, or "onnx"), as the line that
        says so; None when it can."""
        if what in self.supports:
            return None
        return REFUSALS[what].format(kind=spec.kind)

    # ---------------------------------------------------------------- files and pages
    def prints(self, spec: DataSpec) -> bool:
        """Whether the command line prints values as lines of text (without --out) rather than
        writing a figure or an array."""
        return False

    def output_suffixes(self, spec: DataSpec, allowed: tuple[str, ...]) -> tuple[str, ...]:
        """The files a command that writes ``allowed`` files for arrays may write for this data."""
        return allowed

    def write(self, spec: DataSpec, values: Tensor, out: Path, nrow: int | None = None,
              row_captions: list[str] | None = None) -> Path:
        """Data-unit values to ``out`` by its suffix: .png (an image grid, ``nrow`` per row, each row
        captioned by ``row_captions`` when given), .gif (one frame per item), .npy or .csv."""
        from vaekit.data.kinds.pictures import save_gif, save_images
        from vaekit.files import save_array

        suffix = out.suffix.lower()
        if suffix == ".png":
            return save_images(spec, values, out, nrow=nrow, row_captions=row_captions)  # images only
        if suffix == ".gif":
            return save_gif(spec, values, out)
        return save_array(values, out)

    def items(self, spec: DataSpec, values: Tensor) -> list[dict[str, Any]]:
        """Data-unit values (N, *shape) as the explorer's items: ``{"row": {column: value}}``."""
        names = spec.feature_names or [f"v{j}" for j in range(values.shape[-1])]
        return rows(names, spec.to_table(values.detach().cpu(), model_space=False))

    def input_items(self, spec: DataSpec, raw: np.ndarray) -> list[dict[str, Any]]:
        """Raw samples (a source's x) as the explorer's items, as given."""
        names = spec.feature_names or [f"v{j}" for j in range(raw.shape[1])]
        return rows(names, raw)

    def as_batch(self, spec: DataSpec, items: list[Any]) -> np.ndarray | Tensor:
        """Single raw samples (each (*shape) or (1, *shape)) as one batch of raw samples."""
        return torch.stack([torch.as_tensor(np.asarray(item)).reshape(spec.shape) for item in items])

    # ---------------------------------------------------------------- evaluation
    def held_out_warnings(self, spec: DataSpec, model: Any, x: Tensor, condition: Tensor | None,
                          config: RunConfig) -> list[str]:
        """Lines on a trained ``model`` that only this kind of data can show, from held-out
        model-space inputs ``x``."""
        return []

    def anomaly_score(self, spec: DataSpec) -> tuple[str, int]:
        """The anomaly score (and its importance samples) for a threshold fitted on the fly."""
        return "recon", 1

    def score_caveat(self, spec: DataSpec, likelihood: str, score: str) -> str | None:
        """A warning when ``score`` under the ``likelihood`` misjudges this data, or None."""
        return None


def class_names_of(raw: RawData) -> list[str] | None:
    """The split's class names, or "0".."K-1" for unnamed labels."""
    class_names = raw.class_names
    if class_names is None and raw.y is not None and len(raw.y):  # unnamed labels 0..K-1
        class_names = [str(i) for i in range(int(np.max(raw.y)) + 1)]
    return class_names


def rows(names: list[str], table: np.ndarray) -> list[dict[str, Any]]:
    return [{"row": {name: plain(value) for name, value in zip(names, row, strict=True)}} for row in table]


def plain(value: Any) -> Any:
    """A table cell as JSON: numbers as floats (NaN as null), text as text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    number = float(value)
    return None if number != number else float(f"{number:.7g}")  # float32 noise left out


def either(options: list[str]) -> str:
    """"a", "a or b", "a, b or c": remedies offered in a message."""
    return options[0] if len(options) == 1 else f"{', '.join(options[:-1])} or {options[-1]}"


IMAGE_NETWORKS = ("conv", "ldm")


def refuse_conv(what: str, requested: str = "conv") -> None:
    raise ConfigError(f"model.network={requested!r} needs images (C, H, W); {what}")


def refuse_table_likelihood(spec: DataSpec, name: str) -> None:
    raise ConfigError(f"likelihood {name!r} is for tables with typed columns; this data is {spec.kind} data")


def refuse_mismatch(spec: DataSpec, name: str) -> None:
    raise ConfigError(f"likelihood {name!r} does not fit {spec.kind} data; use model.likelihood=auto "
                      f"({spec.default_likelihood()} here)")


def check_support(spec: DataSpec, name: str, support: str) -> None:
    """A [0, 1] likelihood on data outside [0, 1], or a likelihood over levels on data without them."""
    low, high = spec.value_range
    if support == "unit" and (low < 0.0 or high > 1.0):
        raise ConfigError(
            f"likelihood {name!r} needs data in [0, 1] but the scaled data span "
            f"[{low:g}, {high:g}]; use --set data.scale=unit, or model.likelihood=gaussian"
        )
    if support == "levels" and spec.n_levels is None:
        raise ConfigError(
            f"likelihood {name!r} needs data on a fixed grid of levels (8-bit images, digits); "
            "this data has none: use model.likelihood=gaussian or bernoulli"
        )
