"""Images (N, C, H, W): scaled to [0, 1] by their format's full-scale level, or standardised per channel."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from vaekit.data.kinds.base import DataKind

if TYPE_CHECKING:
    from vaekit.data.spec import DataSpec


class ImageKind(DataKind):
    name = "image"
    stat_axes: ClassVar[tuple[int, ...]] = (0, 2, 3)  # per channel
    auto_scale: ClassVar[str] = "unit"

    def network(self, spec: DataSpec, requested: str) -> str:
        """Auto: conv for images of at least 16 px a side, else mlp."""
        if requested != "auto":
            return requested
        return "conv" if min(spec.shape[1:]) >= 16 else "mlp"
