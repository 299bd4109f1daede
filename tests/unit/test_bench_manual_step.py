"""The throughput benchmark's hand-written backward pass must compute autograd's gradients, and its
minimal loop must train: otherwise BENCHMARKS.md would compare against a wrong step."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import train_throughput as tt  # noqa: E402


def test_manual_step_gradients_equal_autograd():
    torch.manual_seed(0)
    train = torch.rand(256, 784)
    step = tt.ManualStep(tt.ClassicVAE(), train, torch.Generator().manual_seed(1))
    assert step.check() < 1e-4


def test_manual_and_minimal_loops_lower_the_loss():
    torch.manual_seed(0)
    train = (torch.rand(1024, 784) < torch.linspace(0.05, 0.95, 784)).float()
    generator = torch.Generator().manual_seed(2)

    def loss(model):
        return tt.test_neg_elbo(model.encode, model.decode_logits, train[:256])

    manual_model, minimal_model = tt.ClassicVAE(), tt.ClassicVAE()
    minimal_model.load_state_dict(manual_model.state_dict())
    before = loss(manual_model)
    manual = tt.ManualStep(manual_model, train, generator)
    for _ in range(3):
        manual.epoch()
    optimizer = torch.optim.Adam(minimal_model.parameters(), lr=1e-3, fused=True)
    for _ in range(3):
        tt.minimal_epoch(minimal_model, optimizer, train, generator)
    after_manual, after_minimal = loss(manual_model), loss(minimal_model)
    assert after_manual < before - 50 and after_minimal < before - 50
    assert abs(after_manual - after_minimal) < 0.05 * after_minimal
