"""The latent-diffusion autoencoder's objective (Esser et al. 2021, "Taming Transformers", eq. 4-7;
Rombach et al. 2022, appendix G): reconstruction + beta * KL + an adaptively weighted hinge
patch discriminator, switched on after a warm-up.

The element-wise likelihood alone rewards the average of plausible images (blur); a discriminator
that judges overlapping patches (Isola et al. 2017, PatchGAN) asks each patch to look real, which
is how the field made autoencoder reconstructions sharp enough for latent diffusion. Its weight is
set each step from the ratio of the two terms' gradient norms at the decoder's last layer, so
neither term swamps the other whatever their scales.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from vaekit.errors import ConfigError
from vaekit.models.objectives.base import OBJECTIVES, Batch, Objective, ObjectiveOptions, frozen
from vaekit.models.outputs import LossOutput, VAEOutput

MAX_ADAPTIVE_WEIGHT = 1e4  # the clamp of Esser et al.'s code: a vanishing GAN gradient cannot blow the weight up


class PatchGANOptions(ObjectiveOptions):
    """The patch-gan objective's options (the kl-f presets)."""

    disc_weight: float = Field(0.5, ge=0.0)
    """patch-gan: scale of the adaptive adversarial weight (0.5 in the LDM autoencoders)."""
    disc_start: float = Field(1.0, ge=0.0)
    """patch-gan: epochs of reconstruction-only training before the discriminator and its term switch on."""
    patch_layers: int = Field(3, gt=0, le=6)
    """patch-gan: stride-2 layers of the patch discriminator (fewer on small images: each output sees a patch)."""
    patch_channels: int = Field(64, gt=0, le=1024)
    """patch-gan: channels of the discriminator's first layer (doubled per layer, at most 8x)."""
    perceptual: str = "none"
    """patch-gan: perceptual term on the features of a vaekit feature classifier: none, auto (the data set's
    own, trained once on its labels and cached, as FID's; off for unlabelled data) or a classifier folder."""
    perceptual_weight: float = Field(1.0, ge=0.0)
    """patch-gan: weight of the perceptual distance, added to every pixel's error as the LDM code does."""


class PatchDiscriminator(nn.Module):
    """Images (B, C, H, W) in [0, 1] -> a real-vs-reconstructed logit per overlapping patch (B, 1, h, w):
    pix2pix's PatchGAN (4x4 convolutions, LeakyReLU 0.2, batch norm), as the LDM autoencoders use it.
    Stride-2 layers (at most ``layers``) stop while the feature map's smaller side stays at least 8,
    so the logits score a grid of patches (6x6 or more) rather than a handful of near-whole images:
    32x32 images get two, 64x64 and larger pix2pix's three (a 70-pixel patch)."""

    def __init__(self, channels: int, height: int, width: int, layers: int = 3, base: int = 64) -> None:
        super().__init__()
        downs = max(1, min(layers, int(math.log2(max(min(height, width) // 8, 1)))))
        widths = [base * min(2**i, 8) for i in range(downs + 1)]
        blocks: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        for i in range(1, downs + 1):
            stride = 2 if i < downs else 1
            blocks += [nn.Conv2d(widths[i - 1], widths[i], 4, stride=stride, padding=1, bias=False),
                       nn.BatchNorm2d(widths[i]), nn.LeakyReLU(0.2)]
        blocks.append(nn.Conv2d(widths[-1], 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*blocks)
        for layer in self.modules():  # pix2pix's init: N(0, 0.02) convolutions, N(1, 0.02) norm scales
            if isinstance(layer, nn.Conv2d):
                nn.init.normal_(layer.weight, 0.0, 0.02)
            elif isinstance(layer, nn.BatchNorm2d):
                nn.init.normal_(layer.weight, 1.0, 0.02)
                nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(2.0 * x - 1.0)  # (B, 1, h, w)


Activations = Callable[[Tensor], list[Tensor]]  # images (B, C, H, W) in [0, 1] -> feature maps, shallow first


def perceptual_distance(activations: Activations, a: Tensor, b: Tensor) -> Tensor:
    """LPIPS's distance with unit layer weights (Zhang et al. 2018, eq. 1, their untrained-weights
    variant): per layer, each position's feature vector scaled to unit length, the squared
    difference summed over channels and averaged over positions; summed over layers. (B,)
    ``a`` is the target: its features take no gradient (one backward pass of the network, not two)."""
    total = b.new_zeros(len(b))
    with torch.no_grad():
        targets = activations(a)
    for target, found in zip(targets, activations(b), strict=True):
        unit_a = target / (target.norm(dim=1, keepdim=True) + 1e-10)
        unit_b = found / (found.norm(dim=1, keepdim=True) + 1e-10)
        total = total + (unit_a - unit_b).square().sum(1).mean((-2, -1))
    return total


def last_layer(model: nn.Module) -> nn.Parameter:
    """The weight of the decoder's output layer (the last registered weight matrix or kernel)."""
    return [p for p in model.decoder.parameters() if p.dim() > 1][-1]


def adaptive_weight(recon: Tensor, adversarial: Tensor, weight: nn.Parameter) -> Tensor:
    """||d recon / d W|| / (||d adversarial / d W|| + 1e-4) at the decoder's last layer W, clamped to
    [0, 1e4] and detached (Esser et al. 2021, eq. 7): the adversarial term pulls as hard as the
    reconstruction does, whatever their scales."""
    g_recon, = torch.autograd.grad(recon, weight, retain_graph=True)
    g_adv, = torch.autograd.grad(adversarial, weight, retain_graph=True)
    return (g_recon.norm() / (g_adv.norm() + 1e-4)).clamp(0.0, MAX_ADAPTIVE_WEIGHT).detach()


class PatchGAN(Objective):
    """Encoder and decoder minimise

        -log p(x|z) + w * D * P(x, x~) + beta * KL + on * disc_weight * lambda * (-mean D(x~)),

    with x~ the reconstruction (the likelihood's mean), P the perceptual distance (when a feature
    network is given; w = model.perceptual_weight, D the values per image), lambda the adaptive weight and ``on`` 0 for
    the first ``model.disc_start`` epochs, then 1. The discriminator minimises the hinge loss
    ``on * (mean relu(1 - D(x)) + mean relu(1 + D(x~))) / 2``. Before the start neither term is
    computed (the discriminator's passes cost as much as a small autoencoder's): ``playing`` is a host
    flag the trainer's schedule sets, never a device read, and :meth:`phase` tells a captured step to
    capture again when it flips; the discriminator's loss is then 0 times its parameters' sum, so every
    player still has a gradient (DDP expects one for each parameter). Only a training step with
    gradients plays the game: validation reports the bound alone. The per-sample
    bound is the plain -ELBO. Unlike VAE-GAN, the discriminator never sees prior samples (the
    autoencoder of latent diffusion is judged on its reconstructions).
    """

    def __init__(self, config: PatchGANOptions, discriminator: PatchDiscriminator,
                 perceptual: Activations | None = None) -> None:
        super().__init__(config)
        self.perceptual, self.perceptual_weight = perceptual, config.perceptual_weight
        if config.condition != "none":
            raise ConfigError("the patch-gan objective trains unconditional autoencoders; use model.condition=none")
        self.disc_weight, self.disc_start = config.disc_weight, config.disc_start
        self.aux_module = discriminator
        self.playing = config.disc_start == 0  # set by the trainer's schedule (scheduled) before each batch

    @classmethod
    def from_config(cls, config: PatchGANOptions, **context) -> PatchGAN:
        spec = context.get("spec")
        if spec is None or len(spec.shape) != 3:
            raise ConfigError("the patch-gan objective judges images (C, H, W); this data is not images")
        channels, height, width = spec.shape
        return cls(config, PatchDiscriminator(channels, height, width, config.patch_layers, config.patch_channels),
                   context.get("perceptual"))

    def scheduled(self) -> list[tuple[Tensor | Callable[[float], None], Callable[[float], float]]]:
        start = self.disc_start
        return [(self.play, lambda epochs: 1.0 if epochs >= start else 0.0)]

    def play(self, on: float) -> None:
        self.playing = on > 0.0

    def phase(self) -> bool:
        return self.playing

    def terms(self, model: nn.Module, batch: Batch, out: VAEOutput) -> LossOutput:
        x = batch["x"]
        recon, rate = -out.px.log_prob(x), out.kl()  # (B,) each
        x_rec = out.px.mean  # (B, C, H, W)
        extras: dict[str, Tensor] = {}
        error = recon
        if self.perceptual is not None:  # LDM adds it to each pixel's error: times the values per image
            extras["perceptual"] = perceptual_distance(self.perceptual, x, x_rec)  # (B,)
            error = recon + self.perceptual_weight * x[0].numel() * extras["perceptual"]
        loss = self.reduce(error) + self.beta * self.kl_weight * self.reduce(rate)
        aux_loss = None
        if torch.is_grad_enabled() and model.training and not self.playing:
            zero = loss.new_zeros(())
            aux_loss = 0.0 * torch.stack([p.sum() for p in self.aux_module.parameters()]).sum()
            extras.update(adv_weight=zero, gen_loss=zero, disc_loss=zero)
        elif torch.is_grad_enabled() and model.training:
            generator = -frozen(self.aux_module)(x_rec).mean()  # the decoder's view: D's weights detached
            weight = self.disc_weight * adaptive_weight(self.reduce(error), generator, last_layer(model))
            loss = loss + weight * generator
            # Two calls, as Esser et al.'s code: batch norm never mixes real and reconstructed patches.
            real, fake = self.aux_module(x), self.aux_module(x_rec.detach())  # (B, 1, h, w) each
            aux_loss = 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())
            extras.update(adv_weight=weight, gen_loss=generator.detach(), disc_loss=aux_loss.detach())
        return LossOutput(loss=loss, per_sample=recon + rate, recon=recon, kl=rate, extras=extras, aux_loss=aux_loss)


OBJECTIVES.add("patch-gan", PatchGAN)
