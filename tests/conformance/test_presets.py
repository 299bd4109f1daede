"""One suite over every preset x network x likelihood: what a user relies on from any variant.

The cases come from the preset registry, so a new preset gets this suite without editing it.
Images are 16x16 digits (an ``.npz`` written once per session) so the conv network is eligible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import vaekit
import vaekit.io
from vaekit.config import RunConfig, resolve_config
from vaekit.data.loaders import prepare_data, to_tensors
from vaekit.distributions.posteriors import PointMass
from vaekit.evaluation.likelihood import bounds
from vaekit.models import build_model, build_objective
from vaekit.networks.image import ConvEncoder
from vaekit.networks.mlp import MLPEncoder
from vaekit.presets import PRESETS

NETWORKS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
CASES = [(preset, network, likelihood) for preset in PRESETS for network in NETWORKS for likelihood in LIKELIHOODS]
IDS = ["-".join(case) for case in CASES]

TINY = [
    "model.latent_dim=3",
    "model.hidden=[32]",
    "model.conv_channels=[8, 16]",
    "train.batch_size=32",
    "train.epochs=1",
    "train.lr=3e-3",
    "train.progress=false",
    "train.device=cpu",
    "eval.enabled=false",
    "model.disc_start=0",  # patch-gan's discriminator plays from the first step
]


def make_config(case: tuple[str, str, str], source: Path, *extra: str) -> RunConfig:
    preset, network, likelihood = case
    return resolve_config(
        preset=preset,
        overrides=[*TINY, f"data.source={source}", f"model.network={network}",
                   f"model.likelihood={likelihood}", *extra],
    )


def training_batch(config: RunConfig, n: int) -> dict[str, torch.Tensor]:
    data = prepare_data(config.data)
    tensors = to_tensors(data.train, data.spec)
    return {"x": tensors["x"][:n], "y": tensors["y"][:n]}  # x (n, 1, 16, 16) in model space


def condition(model, labels: torch.Tensor) -> torch.Tensor | None:
    """The labels for a conditional model, None for the others."""
    return labels if model.condition_dim else None


@pytest.fixture(params=CASES, ids=IDS)
def case(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    return request.param


def test_every_preset_is_covered() -> None:
    assert {preset for preset, _, _ in CASES} == set(PRESETS)
    assert {"vae", "beta-vae", "ae", "iwae"} <= set(PRESETS)


def test_loss_is_finite_and_every_parameter_gets_a_gradient(case, digits16_npz: Path) -> None:
    config = make_config(case, digits16_npz)
    data = prepare_data(config.data)
    torch.manual_seed(0)
    model = build_model(data.spec, config.model)
    objective = build_objective(config.model, data.spec, len(data.train))
    expected_encoder = ConvEncoder if case[1] == "conv" else MLPEncoder
    assert isinstance(model.encoder, expected_encoder)

    tensors = to_tensors(data.train, data.spec)
    out = objective(model, {"x": tensors["x"][:16], "y": tensors["y"][:16]})  # x (16, 1, 16, 16)
    assert out.loss.ndim == 0
    assert torch.isfinite(out.loss)
    assert out.per_sample.shape == (16,)
    assert torch.isfinite(out.per_sample).all()

    networks = [model] if out.aux_loss is None else [model, objective.aux_module]
    losses = [out.loss] if out.aux_loss is None else [out.loss, out.aux_loss]
    for network, loss in zip(networks, losses, strict=True):  # each loss trains its own network
        params = [(name, p) for name, p in network.named_parameters() if p.requires_grad]
        assert params
        loss.backward(inputs=[p for _, p in params], retain_graph=True)
        for name, param in params:
            assert param.grad is not None, f"{name} got no gradient"
            assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
            # patch-gan's hinge: its output bias's gradients cancel while every logit lies in (-1, 1)
            hinge_bias = network is not model and config.model.objective == "patch-gan" and name == params[-1][0]
            assert hinge_bias or param.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


@dataclass
class Saved:
    run: vaekit.Run
    folder: Path
    figures: list  # (history, path) of each loss figure asked for


@pytest.fixture(scope="module")
def seed0_run(digits16_npz: Path, tmp_path_factory: pytest.TempPathFactory):
    """The seed-0 run of a case, trained once into a run folder: the save/load test loads the folder, the
    determinism test takes it as its first run (a run folder must not change what is trained). Read it;
    never train it further. The loss figure is asked for, not drawn: matplotlib took 0.7 s of each
    case's 0.9 s; what it draws (epoch, loss, val_loss) is the same for every preset, and
    test_run_folder_parity draws it."""
    trained: dict[tuple[str, str, str], Saved] = {}

    def get(case: tuple[str, str, str]) -> Saved:
        if case not in trained:
            folder, figures = tmp_path_factory.mktemp("-".join(case)) / "run", []
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(vaekit.io, "write_loss_figure", lambda history, path: figures.append((history, path)))
                run = vaekit.train(make_config(case, digits16_npz, "train.seed=0"), out=folder)
            trained[case] = Saved(run, folder, figures)
        return trained[case]

    return get


def test_saved_run_loads_with_identical_outputs(case, digits16_npz: Path, seed0_run) -> None:
    saved = seed0_run(case)
    run = saved.run
    assert saved.figures == [(run.history, saved.folder / "figures" / "loss.png")]
    loaded = vaekit.load(saved.folder)

    assert loaded.config == run.config
    assert loaded.spec == run.spec
    raw = np.load(digits16_npz)["x"][:8, None]  # (8, 1, 16, 16), the data's own units
    c = condition(run.model, torch.as_tensor(np.load(digits16_npz)["y"][:8]))
    with torch.no_grad():
        x = run.to_model_space(raw)
        mean_before = run.model.encode(x, c).mean
        mean_after = loaded.model.encode(loaded.to_model_space(raw), c).mean
        assert torch.equal(mean_before, mean_after)
        assert torch.equal(run.model.decode(mean_before, c).mean, loaded.model.decode(mean_after, c).mean)
    assert torch.equal(run.reconstruct(raw, condition=c), loaded.reconstruct(raw, condition=c))
    label = condition(run.model, torch.tensor(3))
    assert torch.equal(run.sample(4, seed=3, condition=label), loaded.sample(4, seed=3, condition=label))


def _state(run: vaekit.Run) -> dict[str, torch.Tensor]:
    return run.model.state_dict()


def test_same_seed_same_training_and_different_seed_differs(case, digits16_npz: Path, seed0_run) -> None:
    first = seed0_run(case).run
    again = vaekit.train(make_config(case, digits16_npz, "train.seed=0"))
    other = vaekit.train(make_config(case, digits16_npz, "train.seed=1"))

    assert first.history[-1]["loss"] == again.history[-1]["loss"]
    assert first.history[-1]["val_loss"] == again.history[-1]["val_loss"]
    for name, value in _state(first).items():
        assert torch.equal(value, _state(again)[name]), name

    assert first.history[-1]["loss"] != other.history[-1]["loss"]
    assert any(not torch.equal(value, _state(other)[name]) for name, value in _state(first).items())


def test_importance_weighted_bound_is_at_least_the_elbo(case, digits16_npz: Path) -> None:
    config = make_config(case, digits16_npz, "train.epochs=3", "train.seed=0")
    run = vaekit.train(config)
    model = run.model
    batch = training_batch(config, 64)
    x, c = batch["x"], condition(model, batch["y"])
    if isinstance(model.encode(x[:1], None if c is None else c[:1]), PointMass):
        pytest.skip(f"preset {case[0]!r} has a deterministic posterior: no bound to compare")

    plain = {"objective": "elbo", "beta": 1.0, "capacity_max": 0.0, "free_bits": 0.0, "corruption": "none"}
    iwae = build_objective(config.model.model_copy(update={**plain, "objective": "iwae", "k": 50}))
    elbo = build_objective(config.model.model_copy(update=plain))
    torch.manual_seed(0)
    with torch.no_grad():
        neg_elbo = torch.stack([elbo(model, batch).per_sample for _ in range(20)]).mean()  # many draws
        neg_iwae_per_sample = iwae(model, batch).per_sample  # (64,)
        nll = bounds(model, x[:16], k=200, generator=torch.Generator().manual_seed(1),
                     condition=None if c is None else c[:16])["nll"].mean()
    neg_iwae = neg_iwae_per_sample.mean()
    assert torch.isfinite(neg_iwae) and torch.isfinite(neg_elbo)
    # per_sample is the negative bound: log p(x) >= IWAE_50 >= ELBO  <=>  -IWAE_50 <= -ELBO.
    assert neg_iwae < neg_elbo
    # ... and IWAE_50 cannot beat the evaluator's k=200 estimate of log p(x) beyond Monte Carlo noise
    # (a bound missing its -log k, for one, would undercut it by log 50 = 3.9 nats).
    assert neg_iwae_per_sample[:16].mean() > nll - 1.0
