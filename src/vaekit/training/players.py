"""Players: the networks a step trains, each by its own optimizer on its own loss.

A VAE has one player, the model. An adversarial objective (FactorVAE's discriminator on z, VAE-GAN's
on x) declares a second one (``Objective.players``), as Lightning's ``configure_optimizers`` and
scvi-tools' adversarial training plan do. The trainer knows players only through this record: it
backpropagates the sum of their losses once, checks each player's gradients, and steps each
optimizer in order. Keeping one player's loss off another's parameters is the objective's job
(``models/objectives/base.py: frozen``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import torch
from torch import Tensor, nn

from vaekit.registry import Registry

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")
OPTIMIZERS.add("adam", lambda params, lr, wd, momentum, fused: torch.optim.Adam(
    params, lr=lr, weight_decay=wd, fused=fused))
OPTIMIZERS.add("adamw", lambda params, lr, wd, momentum, fused: torch.optim.AdamW(
    params, lr=lr, weight_decay=wd, fused=fused))
OPTIMIZERS.add("sgd", lambda params, lr, wd, momentum, fused: torch.optim.SGD(
    params, lr=lr, momentum=momentum, weight_decay=wd, fused=fused))


def make_optimizer(params: Iterable[nn.Parameter], name: str, lr: float, weight_decay: float = 0.0,
                   momentum: float = 0.9) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD, fused (one kernel per tensor) wherever torch supports it."""
    params = list(params)
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
    return OPTIMIZERS.get(name)(params, lr, weight_decay, momentum, fused)


@dataclass
class Player:
    """One network, its optimizer and the part of the step's output that is its loss.

    ``lr`` is the base rate a learning-rate schedule scales (None: the schedule leaves this player's
    rate alone). ``key`` names its entries in a checkpoint: the model's are ``model.*`` and
    ``optim.*`` (metadata ``optimizer``); any other player's ``{key}.*`` and ``{key}_optim.*``
    (metadata ``{key}_optimizer``) — a discriminator's key is ``aux``, as in every saved run.
    """

    name: str
    module: nn.Module
    optimizer: torch.optim.Optimizer
    loss_of: Callable[[Any], Tensor | None]
    lr: float | None = None
    key: str = "model"
    params: list[nn.Parameter] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.params = [p for p in self.module.parameters() if p.requires_grad]

    @property
    def optimizer_prefix(self) -> str:
        return "optim." if self.key == "model" else f"{self.key}_optim."

    @property
    def optimizer_key(self) -> str:
        return "optimizer" if self.key == "model" else f"{self.key}_optimizer"


def model_player(model: nn.Module, optimizer: torch.optim.Optimizer, lr: float | None = None) -> Player:
    """The first player of every trainer: the model, trained on the step output's ``loss``."""
    return Player("model", model, optimizer, attrgetter("loss"), lr=lr)


def discriminator(module: nn.Module, lr: float, device: torch.device | str) -> Player:
    """A discriminator trained on the step output's ``aux_loss`` by Adam with the betas GANs use
    (0.5, 0.9), fused where torch has the kernel."""
    fused = torch.device(device).type in ("cpu", "cuda")
    optimizer = torch.optim.Adam(module.parameters(), lr=lr, betas=(0.5, 0.9), fused=fused)
    return Player("discriminator", module, optimizer, attrgetter("aux_loss"), lr=lr, key="aux")
