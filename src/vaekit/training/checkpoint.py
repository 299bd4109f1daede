"""Checkpoints for ``--resume``: one safetensors file holding weights, optimizer and RNG state,
with the loop's position and callback states as JSON metadata. Written atomically each epoch and
when a SIGINT/SIGTERM stops training mid-epoch.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from vaekit.errors import RunFolderError
from vaekit.files import atomic_save_tensors
from vaekit.training.trainer import Callback, Trainer, TrainState

log = logging.getLogger(__name__)


def unwrap(model: nn.Module) -> nn.Module:
    """The module under a DDP or torch.compile wrapper."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def _optimizer_parts(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, Tensor], info: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for name, value in info["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": info["param_groups"]}


class Checkpointer(Callback):
    """Writes ``folder/last.safetensors`` (rank 0 only) and restores a trainer from it."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / "last.safetensors"

    def on_checkpoint(self, trainer: Trainer) -> None:
        if trainer.is_main:
            self.save(trainer)

    def save(self, trainer: Trainer) -> None:
        tensors: dict[str, Tensor] = {}
        optimizers: dict[str, Any] = {"optimizer": None, "aux_optimizer": None}  # none: no discriminator
        for player in trainer.players:  # model.* optim.*; a discriminator's aux.* aux_optim.*
            tensors.update({f"{player.key}.{k}": v for k, v in unwrap(player.module).state_dict().items()})
            optim_tensors, optimizers[player.optimizer_key] = _optimizer_parts(player.optimizer)
            tensors.update({player.optimizer_prefix + k[len("optim."):]: v for k, v in optim_tensors.items()})
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and trainer.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(trainer.device)
        accumulators, accumulator_info = trainer.epoch_sums.state()
        tensors.update({f"acc.{k}": v for k, v in accumulators.items()})
        callbacks = {}
        for callback in trainer.callbacks:
            callbacks[type(callback).__name__] = callback.state_dict()
            for key, value in callback.tensors().items():
                tensors[f"cb.{type(callback).__name__}.{key}"] = value
        state = {
            "train_state": vars(trainer.state),
            **optimizers,
            "accumulators": accumulator_info,
            "callbacks": callbacks,
        }
        atomic_save_tensors(self.path, tensors, metadata={"state": json.dumps(state)})

    def read(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        if not self.path.is_file():
            raise RunFolderError(f"no checkpoint at {str(self.path)!r} to resume from")
        try:
            with safe_open(str(self.path), framework="pt") as handle:
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (not iterable)
                state = json.loads((handle.metadata() or {})["state"])
        except (OSError, KeyError, ValueError, TypeError, SafetensorError) as error:  # a truncated or foreign file
            raise RunFolderError(f"checkpoint {str(self.path)!r} is unreadable ({error.__class__.__name__})") from None
        return tensors, state

    def restore(self, trainer: Trainer, weights_only: bool = False) -> None:
        """Load weights and optimizer; unless ``weights_only``, also RNG, loop position, callbacks."""
        tensors, state = self.read()
        for index, player in enumerate(trainer.players):
            if index > 0 and state.get(player.optimizer_key) is None:
                continue  # a checkpoint written without this player: it keeps its fresh weights
            prefix, optim_prefix = f"{player.key}.", player.optimizer_prefix
            weights = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            unwrap(player.module).load_state_dict(weights)
            optim = {"optim." + k[len(optim_prefix):]: v for k, v in tensors.items() if k.startswith(optim_prefix)}
            player.optimizer.load_state_dict(_optimizer_state(optim, state[player.optimizer_key]))
        if weights_only:
            return
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and trainer.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], trainer.device)
        trainer.state = TrainState(**state["train_state"])
        if trainer.state.step > 0:
            accumulators = {k[len("acc."):]: v for k, v in tensors.items() if k.startswith("acc.")}
            trainer.epoch_sums.restore(accumulators, state["accumulators"])
        for callback in trainer.callbacks:
            name = type(callback).__name__
            callback.load_state_dict(state["callbacks"].get(name, {}))
            prefix = f"cb.{name}."
            own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            if own:
                callback.load_tensors(own)

    def recover_from_divergence(self, trainer: Trainer) -> bool:
        """Too many NaN/Inf steps: reload the last good weights and cut the learning rate 10x."""
        if not self.path.is_file():
            return False
        optimizers = trainer.optimizers()
        rates = [[group["lr"] for group in o.param_groups] for o in optimizers]  # the restore resets them
        self.restore(trainer, weights_only=True)
        trainer.state.lr_scale *= 0.1
        for optimizer, lrs in zip(optimizers, rates, strict=True):
            for group, rate in zip(optimizer.param_groups, lrs, strict=True):
                group["lr"] = rate * 0.1
        log.warning("training diverged (NaN/Inf); restored the last checkpoint and lowered the "
                    "learning rate 10x to %.3g", trainer.optimizer.param_groups[0]["lr"])
        return True
