"""Molecule metrics (issue 8) against values worked out by hand or with RDKit directly; the FCD against
fcd_torch's own and against what it must do on sets chosen to be alike or unlike."""

from __future__ import annotations

import functools
import math
import warnings
from itertools import combinations_with_replacement

import numpy as np
import pytest

pytest.importorskip("rdkit", reason="molecule metrics need RDKit (the chem extra)")

from rdkit import Chem, DataStructs  # noqa: E402
from rdkit.Chem import rdFingerprintGenerator  # noqa: E402

from vaekit.evaluation import molecules as molecule_metrics  # noqa: E402
from vaekit.evaluation.molecules import (  # noqa: E402
    canonical,
    evaluate_molecules,
    frechet_chemnet_distance,
    internal_diversity,
)

SUBSTITUENTS = ["C", "O", "N", "F", "Cl", "OC", "C(=O)O", "C(=O)N", "NC(C)=O", "S(N)(=O)=O"]
# 55 para-disubstituted benzenes and five drug-like aromatics; 60 aliphatic chains, alcohols, amines
AROMATICS = [f"c1cc({a})ccc1{b}" for a, b in combinations_with_replacement(SUBSTITUENTS, 2)] + [
    "CC(=O)Nc1ccc(O)cc1", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "c1ccc2ccccc2c1", "Cc1ccncc1", "O=C(O)c1ccccc1O"]
ALIPHATICS = ["C" * n + end for n in range(2, 14) for end in ("", "O", "N", "C(C)C", "Cl")]


@pytest.fixture
def fcd_torch():
    return pytest.importorskip("fcd_torch", reason="the FCD needs fcd_torch (the chem extra)")


def test_canonical_smiles_and_validity() -> None:
    assert canonical(["OCC", "CCO", "C1CC", "", "xyz"]) == ["CCO", "CCO", None, None, None]
    report = evaluate_molecules(["OCC", "CCO", "C1CC", "", "c1ccccc1"])
    assert report.validity == pytest.approx(3 / 5)
    assert report.unique_at_1k == pytest.approx(2 / 3)  # ethanol twice, benzene once
    assert math.isnan(report.novelty) and report.property_distance == {}


def test_novelty_counts_distinct_molecules_not_in_training() -> None:
    report = evaluate_molecules(["CCO", "OCC", "CCN", "c1ccccc1"], train=["CCO", "C1=CC=CC=C1"])
    assert report.novelty == pytest.approx(1 / 3)  # of ethanol, ethylamine, benzene only ethylamine is new


def test_internal_diversity_matches_rdkit_tanimoto() -> None:
    assert internal_diversity(["CCO", "CCO", "OCC"]) == pytest.approx(0.0)
    a, b = "CC(=O)Nc1ccc(O)cc1", "CC(C)Cc1ccc(cc1)C(C)C(=O)O"
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    fa, fb = (generator.GetFingerprint(Chem.MolFromSmiles(s)) for s in (a, b))
    s = DataStructs.TanimotoSimilarity(fa, fb)
    assert internal_diversity([a, b]) == pytest.approx(1 - (2 + 2 * s) / 4)


def test_property_distances_vanish_against_the_same_molecules() -> None:
    molecules = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "OCC(O)CO"]
    report = evaluate_molecules(molecules, reference=list(reversed(molecules)))
    assert set(report.property_distance) == {"qed", "logp", "weight"}
    assert all(np.isclose(v, 0.0) for v in report.property_distance.values())
    heavier = evaluate_molecules(["CCCCCCCCCCCCCCCC"], reference=["CCO"])
    assert heavier.property_distance["weight"] > 100


def test_fcd_of_a_set_against_itself_vanishes(fcd_torch) -> None:
    assert frechet_chemnet_distance(AROMATICS[::2], AROMATICS[-2::-2]) == pytest.approx(0.0, abs=1e-8)


def test_fcd_is_larger_between_unlike_sets_than_between_halves_of_one(fcd_torch) -> None:
    halves = frechet_chemnet_distance(AROMATICS[::2], AROMATICS[1::2])
    unlike = frechet_chemnet_distance(AROMATICS[::2], ALIPHATICS[1::2])
    assert halves > 0 and unlike > 3 * halves  # about 5.8 and 34


def test_fcd_is_deterministic_and_independent_of_the_batch_size(fcd_torch) -> None:
    generated, reference = AROMATICS[:20], ALIPHATICS[:20]
    first = frechet_chemnet_distance(generated, reference)
    assert frechet_chemnet_distance(generated, reference) == first
    assert frechet_chemnet_distance(generated, reference, batch_size=7) == pytest.approx(first, rel=1e-6)


def test_fcd_matches_fcd_torch(fcd_torch, monkeypatch) -> None:
    import torch

    # fcd_torch's FCD() calls a bare torch.load; here only ever on its shipped file, and safely
    monkeypatch.setattr(torch, "load", functools.partial(torch.load, weights_only=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its np.row_stack and sqrtm(disp=)
        theirs = fcd_torch.FCD(device="cpu", n_jobs=1)(ref=ALIPHATICS[::2], gen=AROMATICS[::2])
    assert frechet_chemnet_distance(AROMATICS[::2], ALIPHATICS[::2]) == pytest.approx(theirs, rel=1e-5)


def test_chemnet_weights_load_with_weights_only(fcd_torch, monkeypatch) -> None:
    import torch

    calls = []
    real_load = torch.load

    def load(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", load)
    molecule_metrics._chemnet.cache_clear()
    try:
        model = molecule_metrics._chemnet()
    finally:
        molecule_metrics._chemnet.cache_clear()
    assert calls == [{"map_location": "cpu", "weights_only": True}]
    assert not model.training and all(not p.requires_grad for p in model.parameters())


def test_evaluate_molecules_reports_the_fcd_of_the_valid_samples(fcd_torch) -> None:
    samples = AROMATICS[:30] + ["C1CC", ""]  # two invalid strings, left out of the FCD
    report = evaluate_molecules(samples, reference=ALIPHATICS[::2])
    assert report.fcd == pytest.approx(frechet_chemnet_distance(AROMATICS[:30], ALIPHATICS[::2]), rel=1e-9)
    assert report.to_dict()["fcd"] == report.fcd > 10
    assert evaluate_molecules(samples).fcd is None  # no reference, no FCD
    assert math.isnan(evaluate_molecules(["CCO", "C1CC"], reference=ALIPHATICS).fcd)  # one valid molecule


def test_evaluate_molecules_leaves_the_fcd_out_without_fcd_torch(monkeypatch) -> None:
    monkeypatch.setattr(molecule_metrics, "_fcd_torch", lambda: None)
    report = evaluate_molecules(["CCO", "c1ccccc1O", "CCN"], reference=["CCO", "CCCO"])
    assert report.fcd is None and report.to_dict()["fcd"] is None
    assert set(report.property_distance) == {"qed", "logp", "weight"}  # the rest is still measured
