"""Small building blocks shared by the MLP and convolutional networks."""

from __future__ import annotations

from torch import nn

from vaekit.registry import Registry

ACTIVATIONS: Registry[type[nn.Module]] = Registry("activation")
ACTIVATIONS.add("relu", nn.ReLU)
ACTIVATIONS.add("leaky_relu", nn.LeakyReLU)
ACTIVATIONS.add("elu", nn.ELU)
ACTIVATIONS.add("gelu", nn.GELU)
ACTIVATIONS.add("silu", nn.SiLU)
ACTIVATIONS.add("tanh", nn.Tanh)


def activation(name: str) -> nn.Module:
    return ACTIVATIONS.get(name)()


def norm_1d(kind: str, features: int) -> nn.Module:
    """Normalisation for (B, F) features: none, batch or layer norm."""
    return {"none": nn.Identity, "batch": nn.BatchNorm1d, "layer": nn.LayerNorm}[kind](features)


def norm_2d(kind: str, channels: int) -> nn.Module:
    """Normalisation for (B, C, H, W) maps; 'layer' is GroupNorm with one group."""
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return {"none": nn.Identity, "batch": nn.BatchNorm2d}[kind](channels)
