"""The unfinished epoch's running metrics, kept on the device.

Allocated once and then written in place, so that a captured step (training/capture.py) can hold
them; read back to the host every ``log_every`` steps and once per epoch; saved in a mid-epoch
checkpoint (``acc.*``) so a resumed run finishes the epoch with the same means.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class EpochSums:
    """Per-metric sums weighted by each step's samples, the samples of finite steps, the run of
    consecutive non-finite steps, the epoch's non-finite steps, and the seconds spent training."""

    def __init__(self, device: torch.device) -> None:
        self.names: list[str] = []  # the loss output's metrics, fixed at the first step
        self.sums: Tensor | None = None
        self.count, self.bad_run, self.epoch_bad = (torch.zeros((), device=device) for _ in range(3))
        self.seconds = 0.0

    def add(self, values: Tensor, finite: Tensor, n: int) -> None:
        """A step's metrics (weighted by its ``n`` samples), in place; a skipped step adds nothing."""
        contribution = torch.where(finite, values * n, torch.zeros_like(values))  # NaN * 0 would still be NaN
        self.sums = contribution.clone() if self.sums is None else self.sums.add_(contribution)
        self.count.add_(finite.to(values.dtype) * n)
        bad = (~finite).to(torch.float32)
        self.bad_run.add_(bad).mul_(bad)  # consecutive non-finite steps; resets on a good one
        self.epoch_bad.add_(bad)

    def reset(self) -> None:
        for tensor in (self.sums, self.count, self.bad_run, self.epoch_bad):
            if tensor is not None:
                tensor.zero_()
        self.seconds = 0.0

    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The tensors and the JSON part, for a mid-epoch checkpoint."""
        tensors = {"count": self.count, "bad_run": self.bad_run, "epoch_bad": self.epoch_bad}
        if self.sums is not None:
            tensors["sums"] = self.sums
        return tensors, {"train_seconds": self.seconds, "metric_names": self.names}

    def restore(self, tensors: dict[str, Tensor], info: dict[str, Any]) -> None:
        self.reset()
        self.count.copy_(tensors["count"])
        self.bad_run.copy_(tensors["bad_run"])
        self.epoch_bad.copy_(tensors["epoch_bad"])
        if "sums" in tensors:
            same = self.sums is not None and self.sums.shape == tensors["sums"].shape
            self.sums = self.sums.copy_(tensors["sums"]) if same else tensors["sums"].to(self.count.device)
            self.names = list(info["metric_names"])
        self.seconds = float(info["train_seconds"])

    def means(self) -> dict[str, float]:
        """The epoch's means so far (one host read)."""
        if self.sums is None:
            return {}
        count = max(float(self.count), 1.0)
        return {name: float(v) / count for name, v in zip(self.names, self.sums.tolist(), strict=True)}
