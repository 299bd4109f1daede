"""Images (N, C, H, W): scaled to [0, 1] by their format's full-scale level, or standardised per channel."""

from __future__ import annotations

from typing import ClassVar

from vaekit.data.kinds.base import DataKind


class ImageKind(DataKind):
    name = "image"
    stat_axes: ClassVar[tuple[int, ...]] = (0, 2, 3)  # per channel
    auto_scale: ClassVar[str] = "unit"
