"""Molecular properties computed with RDKit: the targets of a property head on z.

Gómez-Bombarelli et al. (2018) train a small network that predicts a molecule's properties from
its code together with the VAE, so that the latent space is ordered by them and a property can be
climbed by gradient ascent in z (`vaekit optimize`). ``data.properties`` names them; the values are
computed from the SMILES strings (a string RDKit cannot read gets NaN and no property loss).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from vaekit.errors import ConfigError

PROPERTY_NAMES = ("qed", "logp", "weight", "tpsa")
DESCRIPTIONS = {"qed": "drug-likeness (QED, 0-1)", "logp": "Crippen logP", "weight": "molecular weight (Da)",
                "tpsa": "topological polar surface area"}


def check_names(names: Sequence[str], what: str = "data.properties") -> list[str]:
    """The names, or one clear error naming the unknown one."""
    names = list(names)
    if not names:
        raise ConfigError(f"{what}: expected one or more of {', '.join(PROPERTY_NAMES)}")
    for name in names:
        if name not in PROPERTY_NAMES:
            raise ConfigError(f"{what}: unknown property {name!r}; expected one of {', '.join(PROPERTY_NAMES)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{what}: {names} names a property twice")
    return names


def _calculators() -> dict[str, Callable]:
    try:
        from rdkit import RDLogger
        from rdkit.Chem import QED, Crippen, Descriptors
    except ImportError:
        raise ConfigError("molecular properties need RDKit: pip install 'vaekit[chem]'") from None
    RDLogger.DisableLog("rdApp.*")
    return {"qed": QED.qed, "logp": Crippen.MolLogP, "weight": Descriptors.MolWt, "tpsa": Descriptors.TPSA}


def compute(smiles: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """(N, P) float64 properties of SMILES strings, in ``names`` order; NaN where RDKit cannot read one."""
    from rdkit import Chem

    calculators = _calculators()
    chosen = [calculators[name] for name in check_names(names)]
    out = np.full((len(smiles), len(chosen)), np.nan)
    for row, text in enumerate(smiles):
        molecule = Chem.MolFromSmiles(text) if isinstance(text, str) and text else None
        if molecule is not None:
            out[row] = [fn(molecule) for fn in chosen]
    return out
