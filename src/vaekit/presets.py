"""Named variants as data: each preset picks options on the five axes; none is a class.

A preset is a partial run configuration (``{"model": {"beta": 4.0}}``), the first layer over the
defaults: the user's config file, ``--set`` overrides, Python values and flags are laid over it
(config.py: resolve_config). Adding a preset is one ``PRESETS.add`` line here; the conformance
suite (tests/conformance/test_presets.py) then trains it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from vaekit.registry import Registry


@dataclass(frozen=True)
class Preset:
    description: str
    reference: str
    choices: dict[str, dict[str, Any]] = field(default_factory=dict)  # section -> {option: value}

    def items(self) -> Iterator[tuple[str, Any]]:
        """The choices as dotted pairs (``("model.beta", 4.0)``), as ``--set`` writes them."""
        for section, options in self.choices.items():
            for key, value in options.items():
                yield f"{section}.{key}", value

    def partial(self) -> dict[str, dict[str, Any]]:
        """The choices as a nested partial config (a copy: the caller may merge into it)."""
        return copy.deepcopy(self.choices)


PRESETS: Registry[Preset] = Registry("preset")
PRESETS.add("vae", Preset("the VAE: Gaussian posterior, N(0, I) prior, ELBO", "Kingma & Welling 2014"))
PRESETS.add(
    "beta-vae",
    Preset("ELBO with the KL term weighted by beta = 4 (more disentangled, blurrier)",
           "Higgins et al. 2017", {"model": {"beta": 4.0}}),
)
PRESETS.add(
    "ae",
    Preset("plain autoencoder: deterministic code, reconstruction loss only", "Hinton & Salakhutdinov 2006",
           {"model": {"posterior": "deterministic", "objective": "ae"}}),
)
PRESETS.add(
    "iwae",
    Preset("importance-weighted autoencoder, k = 5 samples per input (tighter bound)",
           "Burda et al. 2016", {"model": {"objective": "iwae", "k": 5}}),
)
PRESETS.add(
    "beta-vae-capacity",
    Preset("beta-VAE with a growing capacity: gamma * |KL - C|, C raised to 25 nats over train.capacity_epochs",
           "Burgess et al. 2018", {"model": {"capacity_max": 25.0, "capacity_gamma": 1000.0}}),
)
PRESETS.add(
    "cvae",
    Preset("conditional VAE: class labels (one-hot) feed encoder and decoder, a learned Gaussian prior per class; "
           "sample a chosen class", "Sohn et al. 2015",
           {"model": {"condition": "label", "prior": "class_conditional"}}),
)
PRESETS.add(
    "wae",
    Preset("Wasserstein autoencoder: deterministic code, MMD (IMQ kernel) between q(z) and p(z)",
           "Tolstikhin et al. 2018",
           {"model": {"posterior": "deterministic", "objective": "mmd", "beta": 0.0, "mmd_weight": 100.0}}),
)
PRESETS.add(
    "infovae",
    Preset("InfoVAE (alpha = 0): the ELBO plus an MMD term between q(z) and p(z) (keeps latents informative)",
           "Zhao et al. 2019", {"model": {"objective": "mmd", "beta": 1.0, "mmd_weight": 100.0}}),
)
PRESETS.add(
    "beta-tcvae",
    Preset("beta-TCVAE: penalises the total correlation of q(z) (beta = 6), minibatch-weighted sampling",
           "Chen et al. 2018", {"model": {"objective": "beta-tc", "tc_weight": 6.0}}),
)
PRESETS.add(
    "factor-vae",
    Preset("FactorVAE: ELBO + gamma * total correlation estimated by a discriminator on permuted codes",
           "Kim & Mnih 2018", {"model": {"objective": "factor", "tc_weight": 35.0}}),
)
PRESETS.add(
    "vamp",
    Preset("VampPrior: the prior is a mixture of the posteriors of 500 learned pseudo-inputs",
           "Tomczak & Welling 2018", {"model": {"prior": "vamp"}}),
)
PRESETS.add(
    "mog-vae",
    Preset("VAE with a learned mixture-of-Gaussians prior (10 components; multimodal latent space)",
           "Dilokthanakul et al. 2016", {"model": {"prior": "mixture"}}),
)
PRESETS.add(
    "vae-gan",
    Preset("VAE-GAN: a discriminator's features as the reconstruction error, plus an adversarial term "
           "(sharper samples)", "Larsen et al. 2016", {"model": {"objective": "vae-gan"}}),
)
PRESETS.add(
    "hvae",
    Preset("hierarchical VAE: two stochastic layers, top-down inference with residual cells, KL warm-up over 10 "
           "epochs", "Sønderby et al. 2016; Vahdat & Kautz 2020",
           {"model": {"stochastic_layers": 2}, "train": {"kl_warmup": "linear", "kl_warmup_epochs": 10}}),
)
PRESETS.add(
    "dae",
    Preset("denoising autoencoder: deterministic code, masked input (30%), clean reconstruction",
           "Vincent et al. 2008",
           {"model": {"posterior": "deterministic", "objective": "ae", "corruption": "mask:0.3"}}),
)
PRESETS.add(
    "dvae",
    Preset("denoising VAE: the ELBO on Gaussian-corrupted inputs (sigma 0.2), clean reconstruction",
           "Im et al. 2017", {"model": {"corruption": "gaussian:0.2"}}),
)
PRESETS.add(
    "seq-vae",
    Preset("sentence or molecule VAE: bidirectional GRU encoder, a GRU decoder fed z at every step; word dropout "
           "0.25, KL annealed over 10 epochs and free bits (0.25 nats a dimension) against posterior collapse",
           "Bowman et al. 2016; Gómez-Bombarelli et al. 2018",
           {"model": {"latent_dim": 32, "word_dropout": 0.25, "free_bits": 0.25},
            "train": {"kl_warmup": "linear", "kl_warmup_epochs": 10}}),
)
PRESETS.add(
    "kl-f4",
    Preset("latent-diffusion autoencoder, f = 4, sized for a CPU (LDM's kl-f4 is model.conv_channels=[128,256,512] "
           "model.layers_per_block=2 model.norm_groups=32 model.patch_channels=64): ResNet encoder/decoder with mid "
           "attention, spatial latents (3, H/4, W/4), L1 reconstruction + a perceptual term (features of a classifier "
           "vaekit trains on the data's labels) + KL (weight 1e-6) + an adaptively weighted hinge patch "
           "discriminator after 1 epoch", "Esser et al. 2021; Rombach et al. 2022",
           {"model": {"network": "ldm", "conv_channels": [16, 32, 64], "norm_groups": 8, "latent_channels": 3,
                      "likelihood": "laplace", "beta": 1e-6, "objective": "patch-gan", "perceptual": "auto",
                      "patch_channels": 32}}),
)
PRESETS.add(
    "kl-f8",
    Preset("latent-diffusion autoencoder, f = 8 (Stable Diffusion's layout at a quarter of its widths; "
           "model.conv_channels=[128,256,512,512] model.layers_per_block=2 is SD's): spatial latents (4, H/8, W/8), "
           "L1 + perceptual + KL (1e-6) + adaptive hinge patch discriminator", "Esser et al. 2021; Rombach et al. 2022",
           {"model": {"network": "ldm", "conv_channels": [32, 64, 128, 128], "latent_channels": 4,
                      "likelihood": "laplace", "beta": 1e-6, "objective": "patch-gan", "perceptual": "auto"}}),
)
