"""Molecule metrics (issue 8) against values worked out by hand or with RDKit directly."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("rdkit", reason="molecule metrics need RDKit (the chem extra)")

from rdkit import Chem, DataStructs  # noqa: E402
from rdkit.Chem import rdFingerprintGenerator  # noqa: E402

from vaekit.evaluation.molecules import canonical, evaluate_molecules, internal_diversity  # noqa: E402


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
