"""Images (N, C, H, W): scaled to [0, 1] by their format's full-scale level, or standardised per channel."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from torch import Tensor

from vaekit.data.kinds.base import DataKind

if TYPE_CHECKING:
    from vaekit.data.spec import DataSpec


class ImageKind(DataKind):
    name = "image"
    supports: ClassVar[frozenset[str]] = frozenset(
        {"figures", "png", "extremes", "fid", "reconstruction", "upload", "onnx"})
    stat_axes: ClassVar[tuple[int, ...]] = (0, 2, 3)  # per channel
    auto_scale: ClassVar[str] = "unit"

    def network(self, spec: DataSpec, requested: str) -> str:
        """Auto: conv for images of at least 16 px a side, else mlp."""
        if requested != "auto":
            return requested
        return "conv" if min(spec.shape[1:]) >= 16 else "mlp"

    def items(self, spec: DataSpec, values: Tensor) -> list[dict[str, Any]]:
        """``{"png": "data:image/png;base64,..."}``, each image at its own size."""
        from vaekit.data.kinds.pictures import png_bytes

        return [{"png": "data:image/png;base64," + base64.b64encode(data).decode()}
                for data in png_bytes(spec, values)]

    def input_items(self, spec: DataSpec, raw: np.ndarray) -> list[dict[str, Any]]:
        """As the spec reads them (scaled and back, so a binarised run shows its binary inputs)."""
        return self.items(spec, spec.inverse(spec.transform(raw, check_range=True)))

    def score_caveat(self, spec: DataSpec, likelihood: str, score: str) -> str | None:
        """A Bernoulli on grey levels charges each grey pixel its entropy, so -ELBO and NLL rank
        images by brightness more than by fit (one-class Fashion-MNIST: AUROC near 0.5)."""
        binary = spec.binarize or spec.n_levels == 2
        if score == "recon" or likelihood not in ("bernoulli", "continuous_bernoulli") or binary:
            return None
        return (f"the {score} score under this run's {likelihood} likelihood on grey-level data favours dark, plain "
                "inputs; prefer --score recon, or train with model.likelihood=gaussian for likelihood scores")
