"""The objective interface and its registry."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator
from torch import Tensor, nn

from vaekit.models.heads import squared_error
from vaekit.models.outputs import LossOutput, VAEOutput
from vaekit.registry import Registry
from vaekit.sections import CoreOptions
from vaekit.training.players import Player, discriminator

Batch = dict[str, Tensor]


class Corruption(BaseModel):
    """Denoising training's corruption of the encoder's input: none, gaussian (``amount`` is the
    noise's sigma) or mask (``amount`` is the share of values set to 0)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    written: ClassVar[str] = "none|gaussian:SIGMA|mask:P"  # how a config file writes one

    kind: Literal["none", "gaussian", "mask"] = "none"
    amount: float = 0.0

    @model_validator(mode="after")
    def _in_range(self) -> Corruption:
        ok = {"none": self.amount == 0, "gaussian": self.amount > 0, "mask": 0 < self.amount < 1}
        if not ok[self.kind]:
            raise ValueError(f"expected 'none', 'gaussian:SIGMA' (SIGMA > 0) or 'mask:P' (0 < P < 1), "
                             f"not {str(self)!r}")
        return self

    def __str__(self) -> str:
        return "none" if self.kind == "none" else f"{self.kind}:{self.amount:g}"

    def __eq__(self, other: object) -> bool:  # equal to the string it is written as, too
        if isinstance(other, str):
            return str(self) == other
        return isinstance(other, Corruption) and (self.kind, self.amount) == (other.kind, other.amount)

    def __hash__(self) -> int:
        return hash(str(self))


def _read_corruption(value: Any) -> Any:
    """``"gaussian:0.2"`` (config files, ``--set``) as a :class:`Corruption`; other values as given."""
    if not isinstance(value, str):
        return value
    kind, _, amount = value.partition(":")
    try:
        return {"kind": kind, "amount": float(amount) if amount else 0.0}
    except ValueError:
        raise ValueError(f"expected 'none', 'gaussian:SIGMA' or 'mask:P', not {value!r}") from None


# Written back as the same short string it is read from, so a saved config.json reads as typed.
CorruptionOption = Annotated[Corruption, BeforeValidator(_read_corruption), PlainSerializer(str, return_type=str)]


class ObjectiveOptions(CoreOptions):
    """The options every objective reads."""

    objective: str = "elbo"
    """The training objective: elbo, iwae, mmd, beta-tc, factor, vae-gan or ae."""
    beta: float = Field(1.0, ge=0.0)
    """Weight of the KL term (beta-VAE, Higgins et al. 2017)."""
    reduction: Literal["mean", "sum"] = "mean"
    """How per-sample losses combine over a batch; mean keeps the learning rate independent of the batch
    size, sum is the classic PyTorch example."""
    corruption: CorruptionOption = Corruption()
    """Denoising, training only: corrupt the encoder's input and reconstruct the clean one; none,
    gaussian:SIGMA (added noise) or mask:P (a share P of values set to 0)."""
    disc_lr: float = Field(1e-4, gt=0.0)
    """Learning rate of an objective's discriminator."""


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

    def __init__(self, config: ObjectiveOptions) -> None:
        self.beta = config.beta
        self.reduction = config.reduction
        self.kl_weight = torch.ones(())
        self.conditional = config.condition != "none"
        self.corruption = config.corruption
        self.disc_lr = config.disc_lr

    @classmethod
    def from_config(cls, config: ObjectiveOptions, **context) -> Objective:
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

    def scheduled(self) -> list[tuple[Tensor | Callable[[float], None], Callable[[float], float]]]:
        """Values of this objective that follow a schedule, each with its value as a function of the
        epochs done (fractional): a 0-d tensor the trainer's callbacks set in place before each batch,
        or a setter they call with the value (host state: :meth:`phase` must then change with it)."""
        return []

    def phase(self) -> Hashable:
        """The host state the training step's operations depend on (a term switched on); a captured
        step is captured again when it changes. None: the same operations every step."""
        return None

    def reduce(self, per_sample: Tensor) -> Tensor:
        return per_sample.sum() if self.reduction == "sum" else per_sample.mean()

    def corrupt(self, x: Tensor) -> Tensor:
        """The encoder's input under denoising training (Vincent et al. 2008); x itself otherwise."""
        kind, amount = self.corruption.kind, self.corruption.amount
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
