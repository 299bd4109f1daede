"""Generated molecules measured as MOSES does (Polykovskiy et al. 2020), with RDKit (the chem extra).

- validity: the share of strings RDKit parses into a molecule (an empty string is not one);
- uniqueness@k: the share of distinct canonical SMILES among the first k valid ones;
- novelty: the share of distinct valid molecules not in the training set (canonical SMILES);
- IntDiv (p = 1): one minus the mean Tanimoto similarity of the Morgan fingerprints (radius 2,
  1,024 bits) over all pairs of valid molecules, a molecule with itself included, as the MOSES code
  computes it;
- property distributions: QED, logP (Crippen), molecular weight of the valid molecules, compared with
  a reference set by the Wasserstein-1 distance;
- FCD, the Fréchet ChemNet Distance (Preuer et al. 2018) of the valid molecules to a reference set:
  the Fréchet distance of Gaussians fitted to ChemNet's penultimate activations, with the ChemNet
  that ``fcd_torch`` ships (MOSES's own). Measured only where ``fcd_torch`` is installed (the chem
  extra); None where it is not.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vaekit.errors import ConfigError

PROPERTIES = ("qed", "logp", "weight")
CHEMNET_FILE = "ChemNet_v0.13_pretrained.pt"  # shipped inside the fcd_torch package


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
    """QED, Crippen logP and molecular weight of SMILES (NaN where RDKit cannot read one)."""
    from vaekit.data.properties import compute

    values = compute(smiles, PROPERTIES)
    return {name: values[:, j] for j, name in enumerate(PROPERTIES)}


def _fcd_torch():
    """fcd_torch's ``utils`` module, or None where fcd_torch is not installed."""
    try:
        from fcd_torch import utils
    except ImportError:
        return None
    return utils


def fcd_available() -> bool:
    """Whether the FCD can be measured here (fcd_torch installed)."""
    return _fcd_torch() is not None


@functools.lru_cache(maxsize=1)
def _chemnet():
    """ChemNet in evaluation mode, on the CPU (loaded once per process)."""
    import torch

    utils = _fcd_torch()
    if utils is None:
        raise ConfigError("the FCD needs fcd_torch: pip install 'vaekit[chem]'")
    # fcd_torch's FCD() reads its weights with a bare torch.load, which unpickles anything on torch < 2.6.
    # The file holds only [(layer type, (state_dict, constructor kwargs, flags))]: tensors, dicts, tuples,
    # strings and numbers, so we read it with weights_only=True and build the network with fcd_torch's
    # own load_imported_model (fcd_torch itself is not patched).
    layers = torch.load(Path(utils.__file__).with_name(CHEMNET_FILE), map_location="cpu", weights_only=True)
    model = utils.load_imported_model(layers).eval()
    model.requires_grad_(False)
    return model


def chemnet_activations(smiles: Sequence[str], device=None, batch_size: int = 128) -> np.ndarray:
    """ChemNet's penultimate activations (N, 512), float64, of SMILES taken as given (FCD canonicalises
    them first: pass canonical SMILES), computed on ``device`` (default: the CPU) in batches, in order."""
    import torch

    utils = _fcd_torch()
    device = device or "cpu"
    model = _chemnet().to(device)
    encoded = utils.SmilesDataset(list(smiles), canonize=False)  # one-hot, 350 tokens, as fcd_torch feeds ChemNet
    out = []
    try:
        with torch.inference_mode():
            for start in range(0, len(encoded), batch_size):
                batch = np.stack([encoded[i] for i in range(start, min(start + batch_size, len(encoded)))])
                x = torch.from_numpy(batch).float().transpose(1, 2).to(device)
                out.append(model(x).cpu().numpy().astype(np.float64))
    finally:
        model.to("cpu")  # the cached network stays on the CPU between calls
    return np.concatenate(out) if out else np.zeros((0, 512))


def frechet_chemnet_distance(generated: Sequence[str], reference: Sequence[str], device=None,
                             batch_size: int = 128) -> float:
    """FCD between two lists of valid SMILES (canonicalised here, duplicates kept; MOSES's FCD/Test is
    this of the valid samples against the test set). NaN where either list has fewer than 2 molecules."""
    return _fcd_of_canonical([s for s in canonical(generated) if s is not None],
                             [s for s in canonical(reference) if s is not None], device, batch_size)


def _fcd_of_canonical(generated: list[str], reference: list[str], device=None, batch_size: int = 128) -> float:
    if len(generated) < 2 or len(reference) < 2:
        return float("nan")
    from vaekit.evaluation.quality import frechet_distance  # FID's, on ChemNet's features instead

    return frechet_distance(chemnet_activations(reference, device=device, batch_size=batch_size),
                            chemnet_activations(generated, device=device, batch_size=batch_size))


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
    fcd: float | None = None  # Fréchet ChemNet Distance to the reference set; None: not measured (no
    # fcd_torch, or no reference), never estimated

    def to_dict(self) -> dict:
        return asdict(self)  # "fcd": None where it was not measured


def _unique_at(valid: list[str], k: int) -> float:
    first = valid[:k]
    return len(set(first)) / len(first) if first else float("nan")


def evaluate_molecules(samples: Sequence[str], train: Sequence[str] | set[str] | None = None,
                       reference: Sequence[str] | None = None, seed: int = 0, device=None) -> MoleculeReport:
    """Validity, uniqueness@1k and @10k, novelty against ``train`` (SMILES, or a set of canonical
    SMILES to skip canonicalising a large training set again), IntDiv, and property distances and the
    FCD (where fcd_torch is installed; ChemNet runs on ``device``, default the CPU) to ``reference``
    (e.g. the test set) of generated SMILES ``samples``."""
    from scipy.stats import wasserstein_distance

    valid = [s for s in canonical(samples) if s is not None]
    distinct = sorted(set(valid))
    novelty = float("nan")
    if train is not None and distinct:
        known = train if isinstance(train, set) else {s for s in canonical(train) if s is not None}
        novelty = sum(s not in known for s in distinct) / len(distinct)
    distances, fcd = {}, None
    if reference is not None:
        references = [s for s in canonical(reference) if s is not None]
        if valid:
            ours, theirs = properties(valid), properties(references)
            distances = {name: float(wasserstein_distance(ours[name], theirs[name])) for name in PROPERTIES}
        if fcd_available():
            fcd = _fcd_of_canonical(valid, references, device=device)
    return MoleculeReport(n=len(samples), validity=len(valid) / len(samples) if len(samples) else float("nan"),
                          unique_at_1k=_unique_at(valid, 1000), unique_at_10k=_unique_at(valid, 10_000),
                          novelty=novelty, int_div=internal_diversity(valid, seed=seed),
                          property_distance=distances, fcd=fcd)
