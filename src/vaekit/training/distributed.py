"""torchrun / DistributedDataParallel: process-group set-up, metric reduction, rank-0 writing.

Under ``torchrun`` the environment carries RANK, WORLD_SIZE and LOCAL_RANK; the same ``vaekit
train`` command then wraps the model in DDP (gloo on CPU, nccl on CUDA), shards the data per rank,
reduces metrics, and only rank 0 writes files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as torch_dist
from torch import Tensor, nn

from vaekit.errors import ConfigError

if torch_dist.is_available():
    # DDP imports torch.distributed.nn.functional on first use, and its functions take
    # ``group=group.WORLD`` as a default argument, evaluated at import. Imported after
    # init_process_group, ten such defaults hold the live process group for good: destroy_process_group
    # then cannot free it, gloo's worker and socket threads are still running when the interpreter
    # exits, and a rank can die in std::terminate (SIGABRT, "terminate called without an active
    # exception"). Imported here, before any group exists, the defaults are None.
    import torch.distributed.nn.functional  # noqa: F401


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce(self, tensor: Tensor) -> Tensor:
        """Sum over ranks (identity in a single process)."""
        if self.enabled:
            torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.SUM)
        return tensor

    def barrier(self) -> None:
        if self.enabled:
            torch_dist.barrier()

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        if not self.enabled:
            return model
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)


class StepModule(nn.Module):
    """Every player's network under one module whose forward is the step's loss on the raw model:
    what DDP wraps. The objective inside then reaches the model's methods (``generate``, heads) and
    its discriminator's weights directly; DDP syncs all their gradients in one reducer."""

    def __init__(self, networks: dict[str, nn.Module], loss: Callable[[nn.Module, Any], Any]) -> None:
        super().__init__()
        self.networks = nn.ModuleDict(networks)
        self.loss = loss

    def forward(self, batch: dict[str, Tensor]) -> Any:
        return self.loss(self.networks["model"], batch)


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def context_from_env() -> DistContext:
    """Rank and world size as torchrun set them; a single-process context otherwise."""
    if not launched_by_torchrun():
        return DistContext()
    return DistContext(
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def init_process_group(context: DistContext, device: torch.device) -> None:
    """Join torchrun's process group: nccl for CUDA, gloo for CPU."""
    if context.enabled and not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def shutdown_distributed() -> None:
    """Leave the process group; with nothing else holding it, gloo joins its threads here, while the
    interpreter is whole (see the import of torch.distributed.nn.functional above)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def select_device(preference: str, context: DistContext | None = None) -> torch.device:
    """cuda, then mps, then cpu for "auto"; under torchrun each rank takes its local GPU."""
    local = context.local_rank if context is not None else 0
    if preference == "auto":
        if torch.cuda.is_available():
            preference = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            preference = "mps"
        else:
            preference = "cpu"
    mps = getattr(torch.backends, "mps", None)
    if preference == "mps" and not (mps is not None and mps.is_available()):
        raise ConfigError("device 'mps' was asked for but no Apple GPU is available; use --device cpu or auto")
    if preference == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device 'cuda' was asked for but no CUDA device is available; use --device cpu or auto")
        torch.cuda.set_device(local % torch.cuda.device_count())
        return torch.device("cuda", local % torch.cuda.device_count())
    return torch.device(preference)
