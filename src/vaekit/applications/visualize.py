"""Figures: training curves, written as PNG; which items of a data file a figure shows, and how to
name them. Image grids, PNG and GIF files are the image kind's (:mod:`vaekit.data.kinds.pictures`,
re-exported here), .npy and .csv files :func:`vaekit.files.save_array`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vaekit.data.kinds.pictures import (  # noqa: F401  (re-exported)
    display_scale,
    image_grid,
    save_gif,
    save_images,
    to_unit,
)
from vaekit.files import save_array  # noqa: F401  (re-exported)
from vaekit.io import write_loss_figure as save_history_plot  # noqa: F401  (re-exported)


def pick_items(count: int, n: int, seed: int) -> np.ndarray:
    """Which of ``count`` items to show when there is room for ``n``: all of them, in file order, when
    they fit, else a seeded random ``n`` (sorted). Files are often sorted by label, so the first ``n``
    items would all be one class."""
    if n >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, n, replace=False))


def label_names(indices: Sequence[int], labels: np.ndarray | None,
                class_names: Sequence[str] | None) -> list[str] | None:
    """The labels of the items at ``indices`` by class name where there is one, else None when the
    data have no labels."""
    if labels is None:
        return None
    names = list(class_names or [])
    return [names[y] if 0 <= y < len(names) else str(y) for y in (int(labels[i]) for i in indices)]


def describe_items(indices: Sequence[int], count: int, labels: np.ndarray | None = None,
                   class_names: Sequence[str] | None = None, limit: int = 32) -> str:
    """"items 812, 3, 1290 (labels 3, 0, 7)": which of ``count`` items a figure shows, the first
    ``limit`` of them listed."""
    indices = [int(i) for i in indices]
    if len(indices) == count > limit and indices == list(range(count)):
        return f"all {count} items, in file order"
    more = f", ... ({len(indices)} in all)" if len(indices) > limit else ""
    text = f"item{'s' if len(indices) != 1 else ''} {', '.join(map(str, indices[:limit]))}{more}"
    names = label_names(indices[:limit], labels, class_names)
    if names is not None:
        text += f" (label{'s' if len(names) != 1 else ''} {', '.join(names)}{more and ', ...'})"
    return text


def item_captions(indices: Sequence[int], labels: np.ndarray | None = None,
                  class_names: Sequence[str] | None = None) -> list[str]:
    """One caption per item for the side of a figure's row: "#812: 3", or "#812" without labels."""
    names = label_names(indices, labels, class_names)
    return [f"#{int(i)}" + ("" if names is None else f": {name}") for i, name in
            zip(indices, names or [None] * len(indices), strict=True)]
