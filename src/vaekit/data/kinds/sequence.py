"""Token sequences (text, molecules): strings in, token ids (N, positions) in model space.

The vocabulary (:mod:`vaekit.data.tokens`) is fitted on the training split; molecules may carry
RDKit properties for a property head.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from vaekit.data.kinds.base import DataKind, refuse_conv, refuse_mismatch, refuse_table_likelihood
from vaekit.data.tokens import Vocabulary
from vaekit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from vaekit.config import DataConfig
    from vaekit.data.sources.base import RawData
    from vaekit.data.spec import DataSpec


class SequenceKind(DataKind):
    name = "sequence"

    def fit(self, raw: RawData, config: DataConfig, others: list[RawData], make: type[DataSpec]) -> DataSpec:
        """The vocabulary of the training split (``data.tokens``; by default SMILES tokens for
        ``.smi`` files and moses, characters otherwise), and the properties' moments."""
        source = str(config.source).lower()
        kind = config.tokens or ("smiles" if source.endswith(".smi") or source == "moses" else "char")
        vocabulary = Vocabulary.fit(raw.x.tolist(), kind, config.min_freq, config.max_len,
                                    what=f"data {config.source!r}")
        spec = make(kind="sequence", shape=[vocabulary.length], scale="none", class_names=raw.class_names,
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

    def transform(self, spec: DataSpec, x: np.ndarray | Tensor, name: str = "input", allow_nan: bool = False,
                  check_range: bool = False) -> Tensor:
        """Strings (N,) -> token ids (N, positions) as float32 (exact below 2**24, and the model space
        every part of vaekit passes around); ids already (N, positions) are checked and kept."""
        vocabulary = spec.vocabulary
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

    def to_text(self, spec: DataSpec, ids: Tensor | np.ndarray) -> list[str]:
        """Token ids (N, positions) -> strings (SELFIES decoded back to SMILES)."""
        values = ids.detach().cpu().numpy() if isinstance(ids, Tensor) else np.asarray(ids)
        return spec.vocabulary.decode(np.rint(values).astype(np.int64))

    def default_likelihood(self, spec: DataSpec) -> str:
        return "tokens"

    def check_likelihood(self, spec: DataSpec, name: str, support: str) -> None:
        """Only the token model reads token ids."""
        if support == "table":
            refuse_table_likelihood(spec, name)
        if support != "tokens":
            refuse_mismatch(spec, name)

    def network(self, spec: DataSpec, requested: str) -> str:
        """A GRU reads the tokens (model.network=auto or mlp alike)."""
        if requested == "conv":
            refuse_conv("this data is token sequences")
        return "sequence"
