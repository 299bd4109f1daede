"""Table networks: the layout of a table's columns, the encoder's input layer and the table encoder.

:class:`TableLayout` says where each column's values and the decoder's parameters lie, by the
column's kind; the table likelihood (:mod:`vaekit.distributions.tabular`) reads the decoder's output
by it, and :class:`TableInput` reads a row by it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from vaekit.networks.blocks import NETWORKS
from vaekit.networks.mlp import MLPDecoder, MLPEncoder

if TYPE_CHECKING:
    from vaekit.data.columns import Column
    from vaekit.data.spec import DataSpec
    from vaekit.networks.blocks import NetworkOptions


class TableLayout:
    """Where each column's values and decoder parameters live, by kind (index lists).

    Categorical columns are grouped by their number of categories K, rounded up to a power of two:
    a group's logits are gathered into one (*batch, C, K) tensor (the columns with fewer categories
    padded with impossible ones), so a table of 784 categorical pixels costs a handful of tensor
    operations rather than 784, and padding never more than doubles a group's size. A column
    constant in the training data (``Column.constant``) has no parameters and no likelihood term.
    """

    def __init__(self, columns: list[Column]) -> None:
        self.width = len(columns)
        self.continuous = [j for j, c in enumerate(columns) if c.kind == "continuous" and not c.constant]
        self.binary = [j for j, c in enumerate(columns) if c.kind == "binary"]
        self.count = [j for j, c in enumerate(columns) if c.kind == "count"]
        self.categorical = [(j, len(c.categories)) for j, c in enumerate(columns) if c.kind == "categorical"]
        self.category_groups = _group_categories(self.categorical)
        # Counts are modelled relative to their training mean (``Column.loc``; 0 in run folders from
        # before it was stored, which keeps their old behaviour): the decoder's log-mean is an offset
        # from log(mean), the encoder sees log(1 + k) - log(1 + mean). Without it a column of counts
        # near 1,000 needs its output bias to climb from 0 to 7 and was still decoded near 10 after
        # 100 epochs on wine.
        counts = [c for c in columns if c.kind == "count"]
        self.count_log_mean = [math.log(c.loc) if c.loc > 0 else 0.0 for c in counts]
        self.count_log1p_mean = [math.log1p(c.loc) if c.loc > 0 else 0.0 for c in counts]
        self.n_params = (2 * len(self.continuous) + len(self.binary) + 2 * len(self.count)
                         + sum(k for _, k in self.categorical))


@dataclass
class CategoryGroup:
    """Categorical columns that share one (*batch, C, K) tensor: their column indices (C,), where
    each one's logits lie in the decoder's categorical block (C, K; a padded slot points at 0), and
    which slots are padding (C, K)."""

    columns: list[int]
    slots: Tensor
    padding: Tensor
    _placed: dict = field(default_factory=dict, repr=False)

    def on(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """(slots, padding) on ``device``, copied there once: not a host-to-device copy every step."""
        if device not in self._placed:
            self._placed[device] = (self.slots.to(device), self.padding.to(device))
        return self._placed[device]


def _group_categories(categorical: list[tuple[int, int]]) -> list[CategoryGroup]:
    """Group (column, K) pairs by K rounded up to a power of two, in column order within a group."""
    starts = [0]
    for _, k in categorical:
        starts.append(starts[-1] + k)
    buckets: dict[int, list[int]] = {}
    for position, (_, k) in enumerate(categorical):
        buckets.setdefault(max(k - 1, 0).bit_length(), []).append(position)
    groups = []
    for positions in buckets.values():
        width = max(categorical[p][1] for p in positions)
        offsets = torch.arange(width)
        sizes = torch.tensor([categorical[p][1] for p in positions])
        padding = offsets >= sizes[:, None]  # (C, K)
        slots = torch.tensor([starts[p] for p in positions])[:, None] + offsets  # (C, K)
        groups.append(CategoryGroup([categorical[p][0] for p in positions], slots.masked_fill(padding, 0), padding))
    return groups


class TableInput(nn.Module):
    """The encoder's first layer for a table: continuous and binary values as they are, counts as
    log(1 + k) less log(1 + their training mean), categories one-hot; a missing value becomes 0 (the
    mean of a standardised column, the centre of a count, no category), the zero imputation of MIWAE
    (Mattei & Frellsen 2019). ``with_mask`` appends a 0/1 indicator per column; off by default: with
    it, an encoder trained on rows with holes never sees a complete row, and pseudo-Gibbs imputation,
    which feeds it completed rows, diverged (wine, 50% missing: RMSE 12.4 against 0.96 without)."""

    def __init__(self, columns: list[Column], with_mask: bool = False) -> None:
        super().__init__()
        self.layout = TableLayout(columns)
        self.with_mask = with_mask
        lay = self.layout
        self.register_buffer("plain", torch.tensor(lay.continuous + lay.binary, dtype=torch.long), persistent=False)
        self.register_buffer("counts", torch.tensor(lay.count, dtype=torch.long), persistent=False)
        self.register_buffer("count_center", torch.tensor(lay.count_log1p_mean), persistent=False)
        self.register_buffer("categorical", torch.tensor([j for j, _ in lay.categorical], dtype=torch.long),
                             persistent=False)
        sizes = torch.tensor([k for _, k in lay.categorical], dtype=torch.long)
        self.register_buffer("category_start", torch.cumsum(sizes, 0) - sizes, persistent=False)
        self.register_buffer("category_last", sizes - 1, persistent=False)
        self.n_categories = sum(k for _, k in lay.categorical)  # no .item(): the meta device has no values
        self.out_features = (len(lay.continuous) + len(lay.binary) + len(lay.count)
                             + self.n_categories + (lay.width if with_mask else 0))

    def forward(self, x: Tensor) -> Tensor:
        observed = ~torch.isnan(x)
        filled = torch.where(observed, x, x.new_zeros(()))
        counts = torch.log1p(filled[:, self.counts].clamp_min(0)) - self.count_center.to(x.dtype)
        parts = [filled[:, self.plain], torch.where(observed[:, self.counts], counts, counts.new_zeros(()))]
        if self.n_categories:  # every column's one-hot block side by side, set in one scatter
            codes = torch.minimum(filled[:, self.categorical].long().clamp_min(0), self.category_last)  # (B, C)
            one_hot = x.new_zeros(len(x), self.n_categories)
            parts.append(one_hot.scatter_(1, self.category_start + codes, observed[:, self.categorical].to(x.dtype)))
        if self.with_mask:
            parts.append(observed.to(x.dtype))
        return torch.cat(parts, -1)



class TableEncoder(nn.Module):
    """A table row -> features: :class:`TableInput` (codes expanded, holes masked) then the MLP. A
    class because the MLP's width depends on the expanded input."""

    def __init__(self, spec: DataSpec, hidden: list[int], act: str, norm: str) -> None:
        super().__init__()
        self.input = TableInput(spec.columns)
        self.mlp = MLPEncoder([self.input.out_features], hidden, act, norm)
        self.out_features = self.mlp.out_features

    def forward(self, x):
        return self.mlp(self.input(x))


@NETWORKS.register("table")
def table_networks(spec: DataSpec, config: NetworkOptions, n_params: int, decoder_input: int,
                   out_shape: list[int]) -> tuple[nn.Module, nn.Module]:
    """A table with typed columns: :class:`TableEncoder` and an MLP decoder, with PyTorch's init
    (see :func:`~vaekit.networks.blocks.he_init` for why)."""
    act, norm = config.activation, config.norm
    return TableEncoder(spec, config.hidden, act, norm), MLPDecoder(decoder_input, out_shape, config.hidden,
                                                                    n_params, act, norm)
