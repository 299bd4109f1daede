"""The objective interface and its registry."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vaekit.config import ModelConfig
from vaekit.errors import ConfigError
from vaekit.models.heads import squared_error
from vaekit.models.outputs import LossOutput, VAEOutput
from vaekit.registry import Registry
from vaekit.training.players import Player, discriminator

Batch = dict[str, Tensor]


def parse_corruption(text: str) -> tuple[str, float]:
    """``"none"``, ``"gaussian:SIGMA"`` or ``"mask:P"`` -> (kind, amount)."""
    kind, _, amount = text.partition(":")
    if kind == "none" and not amount:
        return "none", 0.0
    try:
        value = float(amount)
    except ValueError:
        value = -1.0
    if kind == "gaussian" and 0 < value < math.inf or kind == "mask" and 0 < value < 1:
        return kind, value
    raise ConfigError(f"model.corruption={text!r}: expected 'none', 'gaussian:SIGMA' (SIGMA > 0) "
                      "or 'mask:P' (0 < P < 1)")


class Objective:
    """A training loss over the five-part model.

    ``kl_weight`` is a 0-d tensor that schedules (KL warm-up) change in place, so a compiled step
    never recompiles when it moves. ``needs_density`` says the posterior must have a density.
    ``aux_module`` is an objective's own network (a discriminator), declared to the trainer by
    :meth:`players` as a second player trained by its own optimizer on ``LossOutput.aux_loss``. The
    two losses must not reach each other's parameters (see :func:`frozen`): the trainer
    backpropagates their sum once.
    """

    needs_density = True
    aux_module: nn.Module | None = None
    n_samples = 1  # draws of z per input in the step's pass (IWAE: k)

    def __init__(self, config: ModelConfig) -> None:
        self.beta = config.beta
        self.reduction = config.reduction
        self.kl_weight = torch.ones(())
        self.conditional = config.condition != "none"
        self.corruption = parse_corruption(config.corruption)
        self.disc_lr = config.disc_lr

    @classmethod
    def from_config(cls, config: ModelConfig, **context) -> Objective:
        return cls(config)

    def to(self, device: torch.device | str) -> Objective:
        for name, value in vars(self).items():
            if isinstance(value, Tensor):
                setattr(self, name, value.to(device))
        if self.aux_module is not None:
            self.aux_module.to(device)
        return self

    def networks(self) -> dict[str, nn.Module]:
        """The networks this objective trains beside the model (their weights count as the run's)."""
        return {} if self.aux_module is None else {"discriminator": self.aux_module}

    def players(self, device: torch.device | str) -> list[Player]:
        """What the trainer steps beside the model: the discriminator, by Adam at ``model.disc_lr``."""
        return [discriminator(module, self.disc_lr, device) for module in self.networks().values()]

    def reduce(self, per_sample: Tensor) -> Tensor:
        return per_sample.sum() if self.reduction == "sum" else per_sample.mean()

    def corrupt(self, x: Tensor) -> Tensor:
        """The encoder's input under denoising training (Vincent et al. 2008); x itself otherwise."""
        kind, amount = self.corruption
        if kind == "gaussian":
            return x + amount * torch.randn_like(x)
        if kind == "mask":
            return x * (torch.rand_like(x) >= amount).to(x.dtype)
        return x

    def forward(self, model: nn.Module, batch: Batch, n_samples: int = 1) -> VAEOutput:
        """The model's pass over a batch: labels as the condition of a conditional model, and the
        corrupted input while training a denoising one (the likelihood still scores the clean x)."""
        x = batch["x"]
        inputs = self.corrupt(x) if model.training else x
        condition = batch.get("y") if self.conditional else None
        return model(inputs, n_samples=n_samples, condition=condition)

    def __call__(self, model: nn.Module, batch: Batch) -> LossOutput:
        """The step's loss: the model's pass, this objective's terms, then each supervised head's
        weighted squared error on the posterior mean (models/heads.py); the bound is left as the
        terms computed it."""
        out = self.forward(model, batch, self.n_samples)
        result = self.terms(model, batch, out)
        for head in model.heads:
            error = squared_error(model.head(head.name)(out.qz.mean.float()), batch[head.target])  # (B,)
            result.loss = result.loss + head.weight * self.reduce(error)
            result.extras = {**result.extras, head.metric: error}
        return result

    def terms(self, model: nn.Module, batch: Batch, out: VAEOutput) -> LossOutput:
        """The objective itself, on the model's pass ``out`` over ``batch``."""
        raise NotImplementedError


def frozen(module: nn.Module):
    """``module`` as a function of its input only: its parameters enter detached, so a loss computed
    through it trains what feeds it, never the module itself (the generator's view of a
    discriminator). Lets one backward pass serve both losses of an adversarial objective."""
    state = {name: p.detach() for name, p in module.named_parameters()}
    state.update(dict(module.named_buffers()))
    return lambda *args: torch.func.functional_call(module, state, args)


OBJECTIVES: Registry[type[Objective]] = Registry("objective")
