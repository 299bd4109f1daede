"""Generated molecules measured as MOSES does (Polykovskiy et al. 2020), with RDKit (the chem extra).

- validity: the share of strings RDKit parses into a molecule (an empty string is not one);
- uniqueness@k: the share of distinct canonical SMILES among the first k valid ones;
- novelty: the share of distinct valid molecules not in the training set (canonical SMILES);
- IntDiv (p = 1): one minus the mean Tanimoto similarity of the Morgan fingerprints (radius 2,
  1,024 bits) over all pairs of valid molecules, a molecule with itself included, as the MOSES code
  computes it;
- property distributions: QED, logP (Crippen), molecular weight of the valid molecules, compared with
  a reference set by the Wasserstein-1 distance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from vaekit.errors import ConfigError

PROPERTIES = ("qed", "logp", "weight")


def _rdkit():
    try:
        from rdkit import Chem, RDLogger
    except ImportError:
        raise ConfigError("molecule metrics need RDKit: pip install 'vaekit[chem]'") from None
    RDLogger.DisableLog("rdApp.*")  # invalid samples are expected; their parse errors are not news
    return Chem


def canonical(smiles: Sequence[str]) -> list[str | None]:
    """Canonical SMILES of each string, None where it is not a molecule."""
    chem = _rdkit()
    out = []
    for text in smiles:
        molecule = chem.MolFromSmiles(text) if text else None
        out.append(None if molecule is None or molecule.GetNumAtoms() == 0 else chem.MolToSmiles(molecule))
    return out


def fingerprints(smiles: Sequence[str], radius: int = 2, bits: int = 1024) -> np.ndarray:
    """Morgan fingerprints (N, bits) as booleans, of valid SMILES."""
    chem = _rdkit()
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    return np.stack([generator.GetFingerprintAsNumPy(chem.MolFromSmiles(s)).astype(bool) for s in smiles])


def internal_diversity(smiles: Sequence[str], max_molecules: int = 5000, seed: int = 0) -> float:
    """IntDiv_1: 1 - mean pairwise Tanimoto similarity (self-pairs included, as in MOSES), on at most
    ``max_molecules`` (a seeded random subset; all pairs of 5,000 take about a second)."""
    if len(smiles) == 0:
        return float("nan")
    if len(smiles) > max_molecules:
        chosen = np.random.default_rng(seed).choice(len(smiles), max_molecules, replace=False)
        smiles = [smiles[i] for i in chosen]
    bits = fingerprints(smiles).astype(np.float32)  # (N, B)
    common = bits @ bits.T  # (N, N): |a & b|
    counts = bits.sum(1)
    union = counts[:, None] + counts[None, :] - common
    similarity = np.divide(common, union, out=np.ones_like(common), where=union > 0)
    return float(1.0 - similarity.mean())


def properties(smiles: Sequence[str]) -> dict[str, np.ndarray]:
    """QED, Crippen logP and molecular weight of valid SMILES."""
    chem = _rdkit()
    from rdkit.Chem import QED, Crippen, Descriptors

    molecules = [chem.MolFromSmiles(s) for s in smiles]
    return {"qed": np.array([QED.qed(m) for m in molecules]),
            "logp": np.array([Crippen.MolLogP(m) for m in molecules]),
            "weight": np.array([Descriptors.MolWt(m) for m in molecules])}


@dataclass
class MoleculeReport:
    """What :func:`evaluate_molecules` measured; NaN where a metric had nothing to measure."""

    n: int
    validity: float
    unique_at_1k: float
    unique_at_10k: float
    novelty: float
    int_div: float
    property_distance: dict[str, float]  # Wasserstein-1 to the reference set, per property

    def to_dict(self) -> dict:
        return asdict(self)


def _unique_at(valid: list[str], k: int) -> float:
    first = valid[:k]
    return len(set(first)) / len(first) if first else float("nan")


def evaluate_molecules(samples: Sequence[str], train: Sequence[str] | set[str] | None = None,
                       reference: Sequence[str] | None = None, seed: int = 0) -> MoleculeReport:
    """Validity, uniqueness@1k and @10k, novelty against ``train`` (SMILES, or a set of canonical
    SMILES to skip canonicalising a large training set again), IntDiv, and property distances to
    ``reference`` (e.g. the test set) of generated SMILES ``samples``."""
    from scipy.stats import wasserstein_distance

    valid = [s for s in canonical(samples) if s is not None]
    distinct = sorted(set(valid))
    novelty = float("nan")
    if train is not None and distinct:
        known = train if isinstance(train, set) else {s for s in canonical(train) if s is not None}
        novelty = sum(s not in known for s in distinct) / len(distinct)
    distances = {}
    if reference is not None and valid:
        ours = properties(valid)
        theirs = properties([s for s in canonical(reference) if s is not None])
        distances = {name: float(wasserstein_distance(ours[name], theirs[name])) for name in PROPERTIES}
    return MoleculeReport(n=len(samples), validity=len(valid) / len(samples) if len(samples) else float("nan"),
                          unique_at_1k=_unique_at(valid, 1000), unique_at_10k=_unique_at(valid, 10_000),
                          novelty=novelty, int_div=internal_diversity(valid, seed=seed),
                          property_distance=distances)
