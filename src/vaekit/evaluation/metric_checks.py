"""The input checks of the disentanglement metrics (:mod:`vaekit.evaluation.disentangle`), and their error."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vaekit.errors import DataError

if TYPE_CHECKING:
    from vaekit.evaluation.disentangle import GroundTruth


class MetricInputError(DataError, ValueError):
    """Codes, factors or a simulator that a disentanglement metric cannot use."""


def check_codes_factors(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Codes as float64 (N, D) and factors relabelled to ``0..size-1`` per column, with each column's size."""
    codes, factors = np.asarray(codes), np.asarray(factors)
    if codes.ndim != 2 or codes.shape[1] < 2:
        raise MetricInputError(f"codes must be a 2-D array (N, D) with D >= 2, got shape {codes.shape}")
    if factors.ndim != 2:
        raise MetricInputError(f"factors must be a 2-D array (N, K), got shape {factors.shape}")
    if len(codes) != len(factors):
        raise MetricInputError(f"codes and factors must have the same rows, got {len(codes)} and {len(factors)}")
    if not np.issubdtype(factors.dtype, np.integer):
        raise MetricInputError(f"factors must be integers (discrete values), got dtype {factors.dtype}")
    if not np.issubdtype(codes.dtype, np.number) or not np.isfinite(codes).all():
        raise MetricInputError("codes must be finite numbers")
    labels = np.empty(factors.shape, dtype=np.int64)
    sizes = []
    for k in range(factors.shape[1]):
        values, labels[:, k] = np.unique(factors[:, k], return_inverse=True)
        if len(values) < 2:
            raise MetricInputError(f"factor column {k} takes a single value; drop constant factors")
        sizes.append(len(values))
    return codes.astype(np.float64), labels, sizes


def check_dataset(dataset: GroundTruth) -> tuple[int, ...]:
    sizes = tuple(int(size) for size in dataset.factor_sizes)
    if len(sizes) < 2 or min(sizes) < 2:
        raise MetricInputError(f"the simulator needs >= 2 factors of >= 2 values each, got sizes {sizes}")
    return sizes


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise MetricInputError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def check_positive(**values: int) -> None:
    for name, value in values.items():
        if int(value) != value or value < 1:
            raise MetricInputError(f"{name} must be a positive integer, got {value!r}")
