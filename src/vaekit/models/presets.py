"""Named variants as data: each preset picks options on the five axes; none is a class.

A preset is a set of dotted config values applied under the user's config file and overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vaekit.registry import Registry


@dataclass(frozen=True)
class Preset:
    description: str
    reference: str
    choices: dict[str, Any] = field(default_factory=dict)

    def items(self):
        return self.choices.items()


PRESETS: Registry[Preset] = Registry("preset")
PRESETS.add("vae", Preset("the VAE: Gaussian posterior, N(0, I) prior, ELBO", "Kingma & Welling 2014"))
PRESETS.add(
    "beta-vae",
    Preset("ELBO with the KL term weighted by beta = 4 (more disentangled, blurrier)",
           "Higgins et al. 2017", {"model.beta": 4.0}),
)
PRESETS.add(
    "ae",
    Preset("plain autoencoder: deterministic code, reconstruction loss only", "Hinton & Salakhutdinov 2006",
           {"model.posterior": "deterministic", "model.objective": "ae"}),
)
PRESETS.add(
    "iwae",
    Preset("importance-weighted autoencoder, k = 5 samples per input (tighter bound)",
           "Burda et al. 2016", {"model.objective": "iwae", "model.k": 5}),
)
