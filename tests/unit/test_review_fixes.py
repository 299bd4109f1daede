"""Regressions found in review: IWAE with k = 1, infinite gradients with a finite loss, early
stopping across a resume, bits/dim only for discrete likelihoods, re-training a failed folder."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import vaekit
from vaekit.config import ModelConfig
from vaekit.data.loaders import TensorBatches
from vaekit.data.spec import DataSpec
from vaekit.evaluation.report import evaluate
from vaekit.models import build_model, build_objective
from vaekit.training.callbacks import EarlyStopping
from vaekit.training.trainer import Trainer, make_optimizer

SPEC = DataSpec(kind="table", shape=[6], scale="none", value_range=[0.0, 1.0])


def model_and_objective(**options):
    torch.manual_seed(0)
    config = ModelConfig(network="mlp", latent_dim=2, hidden=[16], likelihood="bernoulli", **options)
    return build_model(SPEC, config), build_objective(config)


def data(n: int = 32) -> Tensor:
    return torch.rand(n, 6, generator=torch.Generator().manual_seed(0))


def test_iwae_with_one_sample_is_per_input() -> None:
    model, objective = model_and_objective(objective="iwae", k=1)
    out = objective(model, {"x": data(8)})
    assert out.per_sample.shape == (8,) and torch.isfinite(out.loss)


class InfiniteGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad * float("inf")


def test_finite_loss_with_infinite_gradients_is_skipped() -> None:
    model, objective = model_and_objective()

    def loss_fn(module: nn.Module, batch: dict[str, Tensor]):
        out = objective(module, batch)
        out.loss = InfiniteGradient.apply(out.loss)
        return out

    before = [p.detach().clone() for p in model.parameters()]
    trainer = Trainer(model, loss_fn, make_optimizer(model.parameters(), "adam", 1e-2), max_bad_steps=100)
    trainer.fit(TensorBatches({"x": data()}, 8), None, 1)
    assert trainer.state.history[-1]["skipped_steps"] == 4
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_early_stopping_is_remembered_across_a_resume() -> None:
    stopper = EarlyStopping(patience=1)
    stopper.best = 1.0
    stopper.on_epoch_end(type("T", (), {"stop_training": False})(), {"epoch": 3, "val_loss": 2.0})
    restored = EarlyStopping(patience=1)
    restored.load_state_dict(stopper.state_dict())
    trainer = type("T", (), {"stop_training": False})()
    restored.on_fit_begin(trainer)
    assert trainer.stop_training


@pytest.mark.parametrize("likelihood, has_bpd", [("bernoulli", True), ("gaussian", False)])
def test_bits_per_dim_only_for_discrete_likelihoods(likelihood: str, has_bpd: bool) -> None:
    config = ModelConfig(network="mlp", latent_dim=2, hidden=[16], likelihood=likelihood)
    metrics = evaluate(build_model(SPEC, config), data(), k=4)
    assert ("bits_per_dim" in metrics) is has_bpd


def test_a_folder_whose_run_failed_early_can_be_trained_into(tmp_path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text("{}")  # written at the start, then the run died
    config = vaekit.resolve_config(overrides=["model.hidden=[8]", "model.latent_dim=2", "train.progress=false",
                                              "eval.enabled=false"], flags={"train.epochs": 1})
    run = vaekit.train(config, out=folder)
    assert (folder / "model.safetensors").is_file() and len(run.history) == 1


@pytest.mark.parametrize("options, has_elbo", [({}, True), ({"posterior": "deterministic", "objective": "ae"}, False)])
def test_the_elbo_is_logged_only_for_objectives_that_bound_the_likelihood(options: dict, has_elbo: bool) -> None:
    model, objective = model_and_objective(**options)
    metrics = objective(model, {"x": data(8)}).metrics()
    assert ("elbo" in metrics) is has_elbo
    if has_elbo:
        assert float(metrics["elbo"]) == pytest.approx(-float(metrics["loss"]))
