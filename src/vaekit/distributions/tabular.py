"""The table likelihood: one distribution per column, by the column's kind, with missing values skipped.

A table row's p(x|z) is a product over its columns (Nazabal et al. 2020, HI-VAE; Ma et al. 2020,
EDDI): a Gaussian with a learned variance for a continuous column (standardised), a Bernoulli for a
binary one, a categorical over K values for a categorical one, and a negative binomial (mean and
dispersion, Gamma-Poisson) for a count. A missing value (NaN in model space) contributes nothing,
so the ELBO of a row with holes is the ELBO of what was observed (the masked ELBO; with the iwae
objective, the MIWAE bound of Mattei & Frellsen 2019).

The decoder emits one flat vector per row, laid out by kind: continuous means, continuous
log-scales, binary logits, count log-means, count log-dispersions, then each categorical column's
K logits. The encoder's matching input layer is :class:`TableInput`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaekit.distributions.likelihoods import LIKELIHOODS, EventDistribution, LikelihoodFamily
from vaekit.distributions.posteriors import randn

if TYPE_CHECKING:
    from vaekit.config import ModelConfig
    from vaekit.data.columns import Column
    from vaekit.data.spec import DataSpec

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
LOG_SCALE_MIN = -7.0  # the smallest standard deviation a continuous column may get: e^-7 ~ 0.001 std


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


class MixedTable(EventDistribution):
    """p(x|z) for table rows (*batch, D); NaN values of x are missing and skipped by ``log_prob``."""

    def __init__(self, raw: Tensor, layout: TableLayout) -> None:
        self.layout = layout
        lead = raw.shape[:-1]
        n_c, n_b, n_n = len(layout.continuous), len(layout.binary), len(layout.count)
        sizes = [n_c, n_c, n_b, n_n, n_n, raw.shape[-1] - 2 * n_c - n_b - 2 * n_n]
        self.loc, log_scale, self.logits, log_mean, log_dispersion, cat = raw.split(sizes, -1)
        self.log_scale = LOG_SCALE_MIN + F.softplus(log_scale - LOG_SCALE_MIN)  # bounded below, smooth
        offset = torch.tensor(layout.count_log_mean, dtype=log_mean.dtype, device=log_mean.device)
        self.log_mean = (log_mean + offset).clamp(-20.0, 20.0)
        self.dispersion = F.softplus(log_dispersion) + 1e-4  # the negative binomial's r (total count)
        self.cat_logits = []  # each (*batch, C, K), padding at -inf
        for group in layout.category_groups:
            slots, padding = group.on(cat.device)
            self.cat_logits.append(cat.index_select(-1, slots.flatten()).unflatten(-1, slots.shape)
                                   .masked_fill(padding, -torch.inf))
        super().__init__(raw.new_empty(*lead, layout.width), 1)

    def _place(self, parts: list[tuple[list[int], Tensor]], like: Tensor) -> Tensor:
        """Scatter per-kind values (*batch, n_kind) into one (*batch, D) tensor in column order."""
        out = like.new_zeros(*like.shape[:-1], self.layout.width)
        for index, values in parts:
            if index:
                out[..., index] = values
        return out

    def log_prob_elements(self, x: Tensor) -> Tensor:
        lay = self.layout
        x = x.expand(*self.batch_shape, lay.width)
        parts = []
        if lay.continuous:
            z = (x[..., lay.continuous] - self.loc) * torch.exp(-self.log_scale)
            parts.append((lay.continuous, -0.5 * z.square() - self.log_scale - HALF_LOG_2PI))
        if lay.binary:
            parts.append((lay.binary, -F.binary_cross_entropy_with_logits(
                self.logits, x[..., lay.binary], reduction="none")))
        if lay.count:
            # In float64: for large counts lgamma(k + r) - lgamma(k + 1) and k * log(mu / (r + mu))
            # are differences of nearly equal numbers, off by tens of nats in float32 at k ~ 1e8.
            k, r, log_mu = x[..., lay.count].double(), self.dispersion.double(), self.log_mean.double()
            log_r_mu = torch.logaddexp(torch.log(r), log_mu)  # log(r + mu)
            log_pmf = (torch.lgamma(k + r) - torch.lgamma(r) - torch.lgamma(k + 1)
                       + r * (torch.log(r) - log_r_mu) + k * (log_mu - log_r_mu))
            parts.append((lay.count, log_pmf.to(self.log_mean.dtype)))
        for group, logits in zip(lay.category_groups, self.cat_logits, strict=True):
            index = x[..., group.columns].long().clamp_min(0).unsqueeze(-1)  # (*batch, C, 1)
            parts.append((group.columns, torch.log_softmax(logits, -1).gather(-1, index).squeeze(-1)))
        return self._place(parts, x)

    def log_prob(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """log p of the observed values per row: NaN entries of x (and, with ``mask``, the entries
        where it is False) are skipped."""
        observed = ~torch.isnan(x)
        return super().log_prob(x, observed if mask is None else observed & mask)

    @property
    def mean(self) -> Tensor:
        """The expected value per column; for a categorical column its most likely category's code."""
        lay = self.layout
        parts = [(lay.continuous, self.loc), (lay.binary, torch.sigmoid(self.logits)),
                 (lay.count, torch.exp(self.log_mean))]
        parts += [(group.columns, logits.argmax(-1).to(self.loc.dtype))
                  for group, logits in zip(lay.category_groups, self.cat_logits, strict=True)]
        return self._place(parts, self.loc)

    def category_probs(self) -> list[tuple[list[int], Tensor]]:
        """(column indices (C,), probabilities (*batch, C, K)) for each group of categorical columns;
        a column with fewer than K categories has probability 0 on the rest."""
        return [(group.columns, torch.softmax(logits, -1))
                for group, logits in zip(self.layout.category_groups, self.cat_logits, strict=True)]

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> Tensor:
        lay = self.layout
        shape = torch.Size(sample_shape)

        def expand(t: Tensor) -> Tensor:
            return t.expand(*shape, *t.shape)

        parts = []
        if lay.continuous:
            loc = expand(self.loc)
            parts.append((lay.continuous, loc + torch.exp(expand(self.log_scale)) * randn(loc.shape, loc, generator)))
        if lay.binary:
            parts.append((lay.binary, torch.bernoulli(torch.sigmoid(expand(self.logits)), generator=generator)))
        if lay.count:
            r, mu = expand(self.dispersion), torch.exp(expand(self.log_mean))
            if generator is None:
                gamma = torch._standard_gamma(r)
            else:  # torch's gamma sampler takes no generator: seed it from one, leaving the global RNG as it was
                with torch.random.fork_rng(devices=[r.device.index or 0] if r.device.type == "cuda" else []):
                    torch.manual_seed(int(torch.randint(2**62, (), generator=generator, device=generator.device)))
                    gamma = torch._standard_gamma(r)
            rate = gamma * mu / r  # Gamma(r, r / mu): a rate with mean mu
            parts.append((lay.count, torch.poisson(rate, generator=generator)))
        for group, logits in zip(lay.category_groups, self.cat_logits, strict=True):
            probs = torch.softmax(expand(logits), -1)  # (*shape, *batch, C, K)
            flat = probs.reshape(-1, probs.shape[-1])
            drawn = torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])
            parts.append((group.columns, drawn.to(self.loc.dtype)))
        return self._place(parts, expand(self.loc))


class TableFamily(LikelihoodFamily):
    """The per-column table likelihood (``model.likelihood=table``, the default for tables)."""

    support = "table"

    def __init__(self, columns: list[Column]) -> None:
        super().__init__(1)
        self.layout = TableLayout(columns)

    @classmethod
    def from_spec(cls, spec: DataSpec, config: ModelConfig) -> TableFamily:
        return cls(spec.columns or [])

    def output_shape(self, shape: list[int]) -> list[int]:
        return [self.layout.n_params]

    def __call__(self, raw: Tensor) -> MixedTable:
        return MixedTable(raw.squeeze(-2), self.layout)  # (*batch, 1, P) -> (*batch, P)


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


LIKELIHOODS.add("table", TableFamily)
