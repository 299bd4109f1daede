"""Token sequences (text, molecules): strings in, token ids (N, positions) in model space.

The vocabulary (:mod:`vaekit.data.tokens`) is fitted on the training split; molecules may carry
RDKit properties for a property head.
"""

from __future__ import annotations

import base64
from collections import Counter
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from vaekit.data.kinds.base import (
    IMAGE_NETWORKS,
    DataKind,
    either,
    refuse_conv,
    refuse_mismatch,
    refuse_table_likelihood,
)
from vaekit.data.tokens import BOS, EOS, PAD, UNK, Vocabulary
from vaekit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from vaekit.config import DataConfig, RunConfig
    from vaekit.data.sources.base import RawData
    from vaekit.data.spec import DataSpec

SUFFIXES = (".txt", ".smi", ".npy")  # lines of text, or token ids
MOLECULES = ("smiles", "selfies")  # the tokenisers of molecules
ONNX = ("is a sequence model (text or molecules), whose autoregressive decoder has no ONNX export; use the run "
        "folder with vaekit itself")
DECODED_ITEMS = 200  # held-out sequences decoded greedily (step by step, so kept few)
LOW_ACCURACY = 0.3  # share of tokens a sequence model's reconstructions get right, below which it warns
MOSTLY = 0.5  # share of <unk> tokens, or of one repeated string, that counts as "mostly"


class SequenceKind(DataKind):
    name = "sequence"
    supports: ClassVar[frozenset[str]] = frozenset({"decoding"})

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

            if kind not in MOLECULES:
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
        if requested in IMAGE_NETWORKS:
            refuse_conv("this data is token sequences", requested)
        return "sequence"

    def unsupported(self, spec: DataSpec, what: str) -> str | None:
        if what == "onnx":
            return ONNX
        if what == "molecules" and spec.vocabulary.kind in MOLECULES:
            return None
        return super().unsupported(spec, what)

    # ---------------------------------------------------------------- files and pages
    def prints(self, spec: DataSpec) -> bool:
        return True  # one string a line, printed without --out

    def output_suffixes(self, spec: DataSpec, allowed: tuple[str, ...]) -> tuple[str, ...]:
        return SUFFIXES

    def items(self, spec: DataSpec, values: Tensor) -> list[dict[str, Any]]:
        return self._texts(spec, spec.to_text(values))

    def input_items(self, spec: DataSpec, raw: np.ndarray) -> list[dict[str, Any]]:
        return self._texts(spec, [str(text) for text in raw])

    def _texts(self, spec: DataSpec, texts: list[str]) -> list[dict[str, Any]]:
        """Sentences as text; molecules (SMILES or SELFIES tokens) also drawn as SVG when RDKit is
        installed and the string is a valid molecule."""
        if spec.vocabulary.kind not in MOLECULES:
            return [{"text": text} for text in texts]
        items = []
        for text in texts:
            svg = molecule_svg(text)
            items.append({"text": text} if svg is None else
                         {"text": text, "svg": "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()})
        return items

    def as_batch(self, spec: DataSpec, items: list[Any]) -> np.ndarray | Tensor:
        """Strings, as an object array."""
        return np.array([str(np.asarray(item).reshape(-1)[0]) for item in items], dtype=object)

    # ---------------------------------------------------------------- evaluation
    def held_out_warnings(self, spec: DataSpec, model: Any, x: Tensor, condition: Tensor | None,
                          config: RunConfig) -> list[str]:
        """:func:`sequence_warning` on greedy reconstructions of ``DECODED_ITEMS`` held-out items."""
        x, condition = x[:DECODED_ITEMS], None if condition is None else condition[:DECODED_ITEMS]
        decoded = model.reconstruct(x, condition).mean.long()  # (N, T) greedy
        warning = sequence_warning(x.long(), decoded, spec.to_text(decoded), config)
        return [] if warning is None else [warning]

    def anomaly_score(self, spec: DataSpec) -> tuple[str, int]:
        """Token ids are not quantities, so no reconstruction error: the -ELBO, 8 draws."""
        return "elbo", 8


def sequence_warning(inputs: Tensor, decoded: Tensor, texts: list[str], config: RunConfig) -> str | None:
    """A line when greedy reconstructions ``decoded`` (N, T) of token ids ``inputs`` (N, T), shown
    as ``texts``, get less than ``LOW_ACCURACY`` of the tokens right, are mostly ``<unk>`` or
    mostly one string: what was seen, and the remedy."""
    targets = inputs[:, 1:]  # (N, T-1) <bos> is given, never predicted
    known = targets != PAD
    accuracy = float((decoded[:, 1:] == targets)[known].double().mean())
    words = decoded[:, 1:][(decoded[:, 1:] != PAD) & (decoded[:, 1:] != EOS) & (decoded[:, 1:] != BOS)]
    unknown = float((words == UNK).double().mean()) if words.numel() else 0.0
    common, count = Counter(texts).most_common(1)[0]
    repeated = count / len(texts)
    if accuracy >= LOW_ACCURACY and unknown < MOSTLY and repeated < MOSTLY:
        return None
    seen = [f"{accuracy:.0%} of tokens right"]
    if unknown >= MOSTLY:
        seen.append(f"{unknown:.0%} of the decoded tokens <unk>")
    if repeated >= MOSTLY:
        seen.append(f"{repeated:.0%} of them the same string {common[:40]!r}")
    remedies = [f"more train.epochs (now {config.train.epochs})"]
    if unknown >= MOSTLY:
        remedies.append(f"a smaller data.min_freq (now {config.data.min_freq}) so fewer words become <unk>")
    if repeated >= MOSTLY:  # the decoder ignores z
        remedies += ["train.kl_warmup=linear"] * (config.train.kl_warmup == "none")
        remedies += ["model.word_dropout=0.3"] * (config.model.word_dropout == 0)
    return (f"the sequence model looks undertrained: greedy reconstructions of {len(texts)} held-out items get "
            f"{', '.join(seen)}; try {either(remedies)}")


def molecule_svg(smiles: str, size: int = 180) -> str | None:
    """A molecule drawn as SVG text by RDKit (the chem extra), or None when RDKit is not installed
    or the string is not a valid molecule."""
    try:
        from rdkit import Chem, RDLogger
        from rdkit.Chem.Draw import rdMolDraw2D
    except ImportError:
        return None
    RDLogger.DisableLog("rdApp.*")  # an invalid sample is expected, not worth a log line
    molecule = Chem.MolFromSmiles(smiles) if smiles else None
    if molecule is None:
        return None
    drawer = rdMolDraw2D.MolDraw2DSVG(size, size)
    drawer.DrawMolecule(molecule)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()
