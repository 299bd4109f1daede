"""The table likelihood: one distribution per column, by the column's kind, with missing values skipped.

A table row's p(x|z) is a product over its columns (Nazabal et al. 2020, HI-VAE; Ma et al. 2020,
EDDI): a Gaussian with a learned variance for a continuous column (standardised), a Bernoulli for a
binary one, a categorical over K values for a categorical one, and a negative binomial (mean and
dispersion, Gamma-Poisson) for a count. A missing value (NaN in model space) contributes nothing,
so the ELBO of a row with holes is the ELBO of what was observed (the masked ELBO; with the iwae
objective, the MIWAE bound of Mattei & Frellsen 2019).

The decoder emits one flat vector per row, laid out by kind: continuous means, continuous
log-scales, binary logits, count log-means, count log-dispersions, then each categorical column's
K logits, where :class:`~vaekit.networks.table.TableLayout` says. The encoder's matching input layer is
:class:`~vaekit.networks.table.TableInput`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from vaekit.distributions.likelihoods import LIKELIHOODS, EventDistribution, LikelihoodFamily, LikelihoodOptions
from vaekit.distributions.posteriors import randn
from vaekit.networks.table import TableLayout

if TYPE_CHECKING:
    from vaekit.data.columns import Column
    from vaekit.data.spec import DataSpec

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
LOG_SCALE_MIN = -7.0  # the smallest standard deviation a continuous column may get: e^-7 ~ 0.001 std


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
    def from_spec(cls, spec: DataSpec, config: LikelihoodOptions) -> TableFamily:
        return cls(spec.columns or [])

    def output_shape(self, shape: list[int]) -> list[int]:
        return [self.layout.n_params]

    def __call__(self, raw: Tensor) -> MixedTable:
        return MixedTable(raw.squeeze(-2), self.layout)  # (*batch, 1, P) -> (*batch, P)


LIKELIHOODS.add("table", TableFamily)
