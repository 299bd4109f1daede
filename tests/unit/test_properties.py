"""A property head on z and latent optimisation (issue 8; Gómez-Bombarelli et al. 2018): RDKit
properties as standardised targets, the head's squared error beside an untouched bound, and
gradient ascent in z from a seed molecule."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("rdkit", reason="molecular properties need RDKit (the chem extra)")

import vaekit  # noqa: E402
from vaekit.applications.optimize import SEED_STEP, Step, best, optimize_property  # noqa: E402
from vaekit.config import resolve_config  # noqa: E402
from vaekit.data import properties  # noqa: E402
from vaekit.errors import ConfigError, DataError  # noqa: E402
from vaekit.models import build_objective  # noqa: E402

# Four homologous series: molecular weight grows with the length of the string.
MOLECULES = ([f"{'C' * n}O" for n in range(1, 16)] + [f"c1ccccc1{'C' * n}" for n in range(15)]
             + [f"{'C' * n}N" for n in range(1, 16)] + [f"{'C' * n}C(=O)O" for n in range(15)])
SMALL = ["model.latent_dim=4", "model.embed_dim=16", "model.rnn_hidden=32", "eval.k=5", "train.progress=false",
         "train.batch_size=32", "train.lr=3e-3"]


@pytest.fixture(scope="module")
def weight_run(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("props")
    (folder / "mols.smi").write_text("".join(f"{m}\n" for m in MOLECULES * 4))
    torch.manual_seed(0)
    config = resolve_config(preset="seq-vae", overrides=[
        f"data.source={folder / 'mols.smi'}", "data.properties=[weight,qed]", "train.epochs=12", *SMALL])
    return vaekit.train(config, out=folder / "run"), folder / "run"


def test_properties_are_rdkit_values_and_nan_for_what_it_cannot_read() -> None:
    from rdkit import Chem
    from rdkit.Chem import QED, Descriptors

    values = properties.compute(["CCO", "C1CC", "c1ccccc1O"], ["weight", "qed"])
    assert values[0, 0] == pytest.approx(46.069, abs=1e-3)
    assert np.isnan(values[1]).all()
    assert values[2, 1] == pytest.approx(QED.qed(Chem.MolFromSmiles("c1ccccc1O")))
    assert values[2, 0] == pytest.approx(Descriptors.MolWt(Chem.MolFromSmiles("c1ccccc1O")))
    with pytest.raises(ConfigError, match="unknown property 'sa'"):
        properties.compute(["CCO"], ["sa"])
    with pytest.raises(ConfigError, match="twice"):
        properties.check_names(["qed", "qed"])


def test_properties_need_molecules(tmp_path: Path) -> None:
    (tmp_path / "text.txt").write_text("a cat sat\nthe dog ran\n" * 20)
    config = resolve_config(preset="seq-vae", overrides=[f"data.source={tmp_path / 'text.txt'}",
                                                         "data.properties=[qed]", "train.epochs=1", *SMALL])
    with pytest.raises(ConfigError, match="data.tokens=smiles or selfies"):
        vaekit.train(config)


def test_the_head_learns_and_the_bound_is_the_inner_objectives(weight_run) -> None:
    run, folder = weight_run
    history = run.history
    assert history[-1]["property_mse"] < 0.5 * history[0]["property_mse"], [r["property_mse"] for r in history]
    metrics = json.loads((folder / "metrics.json").read_text())["test"]
    assert metrics["property_r2"]["weight"] > 0.5, metrics["property_r2"]
    spec = json.loads((folder / "data_spec.json").read_text())
    assert spec["properties"] == ["weight", "qed"] and len(spec["property_loc"]) == 2
    # The same pass with the head's term and without (the objective's own terms): the same bound, the
    # loss plus the head's term.
    objective = build_objective(run.config.model, run.spec)
    batch = {"x": run.to_model_space(np.array(MOLECULES[:8], dtype=object)),
             "t": run.spec.property_targets(np.array(MOLECULES[:8], dtype=object))}
    torch.manual_seed(1)
    with_head = objective(run.model, batch)
    torch.manual_seed(1)
    plain = objective.terms(run.model, batch, objective.forward(run.model, batch))
    torch.testing.assert_close(with_head.per_sample, plain.per_sample)
    expected = plain.loss + run.config.model.property_weight * with_head.extras["property_mse"].mean()
    torch.testing.assert_close(with_head.loss, expected)


def test_a_reloaded_run_predicts_the_same(weight_run) -> None:
    run, folder = weight_run
    again = vaekit.load(folder)
    z = torch.randn(5, run.model.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(again.model.property_head(z), run.model.property_head(z.to(run.device)).cpu())


def test_gradient_ascent_raises_the_prediction_and_descent_lowers_it(weight_run) -> None:
    run, _ = weight_run
    seed = "CCCCCCO"
    up = optimize_property(run, seed, "weight", steps=60, lr=0.1, every=20)
    down = optimize_property(run, seed, "weight", steps=60, lr=0.1, every=20, minimize=True)
    assert [s.step for s in up] == [SEED_STEP, 0, 20, 40, 60]
    assert up[-1].predicted > up[0].predicted + 5 and down[-1].predicted < down[0].predicted - 5
    assert up[0].predicted == pytest.approx(down[0].predicted)  # both start at the seed's code
    for step in up + down:  # each decoded string measured with RDKit, NaN when it is not a molecule
        assert step.valid == (not math.isnan(step.measured))
        if step.valid:
            assert step.measured == pytest.approx(properties.compute([step.smiles], ["weight"])[0, 0])
    top = best(up)
    assert top is None or top.measured == max(s.measured for s in up if s.valid)


def test_optimisation_refuses_what_it_cannot_do(weight_run, tmp_path: Path) -> None:
    run, _ = weight_run
    with pytest.raises(ConfigError, match="this run's head predicts weight, qed"):
        optimize_property(run, "CCO", "logp")
    with pytest.raises(DataError, match="RDKit cannot read it"):
        optimize_property(run, "C1CC", "qed")
    (tmp_path / "mols.smi").write_text("".join(f"{m}\n" for m in MOLECULES))
    plain = vaekit.train(resolve_config(preset="seq-vae", overrides=[
        f"data.source={tmp_path / 'mols.smi'}", "train.epochs=1", *SMALL]))
    assert plain.model.property_head is None
    with pytest.raises(ConfigError, match="no property head"):
        optimize_property(plain, "CCO", "qed")


def test_a_seed_the_model_cannot_write_back_is_said_and_stays_the_answer(weight_run, caplog) -> None:
    """The real failure: an undertrained model decodes the seed's code to a long carbon chain, the
    path climbs from there, and the "best" molecule was worse than the seed without a word."""
    run, _ = weight_run
    with caplog.at_level(logging.WARNING, logger="vaekit"):
        path = optimize_property(run, "CCO", "weight", steps=40, lr=0.1, every=20, minimize=True)
    mean = run.encode_all(np.array(["CCO"], dtype=object))[0].to(run.device)  # the posterior mean, not a sample
    with torch.no_grad():
        at_mean = float(run.spec.property_units(run.model.property_head(mean))[0, 0])
    assert path[0] == Step(SEED_STEP, "CCO", True, pytest.approx(at_mean), pytest.approx(46.069, abs=1e-3))
    assert path[1].smiles != "CCO" and path[1].predicted == pytest.approx(at_mean)
    assert best(path, minimize=True) is path[0]  # nothing lighter was found: the seed is the answer
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all("\n" not in w for w in warnings), warnings
    assert warnings[0].startswith(f"the seed decodes to {path[1].smiles} (") and "not to itself" in warnings[0]
    assert warnings[1].startswith("no molecule along the path beat the seed (weight 46.069)")
    assert warnings[2].startswith("the head's weight prediction parts from RDKit's value"), warnings[2]
    again = optimize_property(run, "CCO", "weight", steps=40, lr=0.1, every=20, minimize=True)
    # The mean and a deterministic decoding: the same path every time.
    assert [(s.smiles, s.predicted) for s in again] == [(s.smiles, s.predicted) for s in path]


def test_the_decoding_is_greedy_or_beam(weight_run) -> None:
    run, _ = weight_run
    beam = optimize_property(run, "CCCCCCO", "weight", steps=2, every=1, decoding="beam")
    assert [s.step for s in beam] == [SEED_STEP, 0, 1, 2]
    with pytest.raises(ConfigError, match="--decode 'sample': expected greedy or beam"):
        optimize_property(run, "CCO", "weight", decoding="sample")
