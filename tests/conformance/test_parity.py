"""The `vae` preset with configs/classic.yaml equals the classic PyTorch example, weight for weight.

The reference below is written independently of vaekit, after pytorch/examples vae/main.py: the same
784-400-20 MLP, sigmoid output, binary cross-entropy summed over the batch plus the analytic KL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaekit.config import resolve_config
from vaekit.data.spec import DataSpec
from vaekit.models import build_model, build_objective

CLASSIC = Path(__file__).resolve().parents[2] / "configs" / "classic.yaml"


class ClassicVAE(nn.Module):
    """pytorch/examples vae/main.py, verbatim in structure."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu: Tensor, logvar: Tensor) -> Tensor:
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z: Tensor) -> Tensor:
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def classic_loss(recon_x: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


@pytest.fixture
def models():
    config = resolve_config(config_file=CLASSIC)
    spec = DataSpec(kind="image", shape=[1, 28, 28], scale="unit", max_level=255.0)
    torch.manual_seed(0)
    ours = build_model(spec, config.model)
    objective = build_objective(config.model)
    torch.manual_seed(1)
    classic = ClassicVAE()
    with torch.no_grad():  # classic -> ours; the posterior head is one Linear 400 -> 40: [mean | logvar]
        ours.encoder.net[0].weight.copy_(classic.fc1.weight)
        ours.encoder.net[0].bias.copy_(classic.fc1.bias)
        ours.posterior.proj.weight.copy_(torch.cat([classic.fc21.weight, classic.fc22.weight]))
        ours.posterior.proj.bias.copy_(torch.cat([classic.fc21.bias, classic.fc22.bias]))
        ours.decoder.net[0].weight.copy_(classic.fc3.weight)
        ours.decoder.net[0].bias.copy_(classic.fc3.bias)
        ours.decoder.out.weight.copy_(classic.fc4.weight)
        ours.decoder.out.bias.copy_(classic.fc4.bias)
    return config, ours, objective, classic


def test_classic_config_is_the_classic_architecture(models) -> None:
    config, ours, _, _ = models
    assert config.preset == "vae"
    assert (config.model.network, config.model.hidden, config.model.latent_dim) == ("mlp", [400], 20)
    assert (config.model.likelihood, config.model.reduction, config.model.activation) == ("bernoulli", "sum", "relu")
    assert (config.train.optimizer, config.train.lr, config.train.batch_size) == ("adam", 1e-3, 128)
    shapes = {name: tuple(p.shape) for name, p in ours.named_parameters()}
    assert shapes == {
        "encoder.net.0.weight": (400, 784), "encoder.net.0.bias": (400,),
        "posterior.proj.weight": (40, 400), "posterior.proj.bias": (40,),
        "decoder.net.0.weight": (400, 20), "decoder.net.0.bias": (400,),
        "decoder.out.weight": (784, 400), "decoder.out.bias": (784,),
    }


def test_loss_and_gradients_match_the_classic_example(models) -> None:
    _, ours, objective, classic = models
    x = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(2))  # (B, 1, 28, 28) in [0, 1]

    torch.manual_seed(123)  # the same eps: both draw one randn (B, 20) per forward
    loss = objective(ours, {"x": x}).loss
    torch.manual_seed(123)
    recon, mu, logvar = classic(x)
    reference = classic_loss(recon, x, mu, logvar)

    torch.testing.assert_close(loss, reference, rtol=1e-4, atol=0.0)
    loss.backward()
    reference.backward()
    grads = dict(ours.named_parameters())
    head_w, head_b = grads["posterior.proj.weight"].grad, grads["posterior.proj.bias"].grad
    expected = {
        "encoder.net.0.weight": classic.fc1.weight.grad, "encoder.net.0.bias": classic.fc1.bias.grad,
        "decoder.net.0.weight": classic.fc3.weight.grad, "decoder.net.0.bias": classic.fc3.bias.grad,
        "decoder.out.weight": classic.fc4.weight.grad, "decoder.out.bias": classic.fc4.bias.grad,
    }
    for name, reference_grad in expected.items():
        torch.testing.assert_close(grads[name].grad, reference_grad, rtol=1e-4, atol=1e-5, msg=name)
    torch.testing.assert_close(head_w, torch.cat([classic.fc21.weight.grad, classic.fc22.weight.grad]),
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(head_b, torch.cat([classic.fc21.bias.grad, classic.fc22.bias.grad]),
                               rtol=1e-4, atol=1e-5)


def test_same_noise_is_required_for_parity(models) -> None:
    """Guards the test above: with different eps the losses differ, so the match is not vacuous."""
    _, ours, objective, classic = models
    x = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(123)
    loss = objective(ours, {"x": x}).loss
    torch.manual_seed(456)
    recon, mu, logvar = classic(x)
    assert not torch.allclose(loss, classic_loss(recon, x, mu, logvar), rtol=1e-6, atol=0.0)
