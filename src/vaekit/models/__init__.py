"""Model assembly: one :func:`build_model` from a DataSpec and a ModelConfig."""

from __future__ import annotations

import torch

from vaekit.data.spec import DataSpec
from vaekit.distributions import sequence, tabular  # noqa: F401  (register the token and table likelihoods)
from vaekit.distributions.likelihoods import LIKELIHOODS, LikelihoodFamily
from vaekit.distributions.posteriors import POSTERIORS, MomentsHead
from vaekit.distributions.priors import PRIORS
from vaekit.errors import ConfigError
from vaekit.models.heads import heads_for, mlp_head
from vaekit.models.hierarchical import HierarchicalVAE
from vaekit.models.objectives import OBJECTIVES, Objective
from vaekit.models.options import ModelConfig
from vaekit.models.outputs import LossOutput, VAEOutput
from vaekit.models.vae import VAE
from vaekit.networks.factory import build_networks, fixed_latent_dim
from vaekit.networks.ldm_vae import MomentEncoder
from vaekit.presets import PRESETS

__all__ = ["VAE", "HierarchicalVAE", "LossOutput", "VAEOutput", "PRESETS", "build_model", "build_objective",
           "check_model_fits", "likelihood_name", "settled"]


def likelihood_name(spec: DataSpec, config: ModelConfig) -> str:
    return spec.default_likelihood() if config.likelihood == "auto" else config.likelihood


def build_likelihood(spec: DataSpec, config: ModelConfig) -> LikelihoodFamily:
    """The likelihood family for this data, refusing one whose support does not fit it."""
    name = likelihood_name(spec, config)
    family = LIKELIHOODS.get(name)
    spec.check_likelihood(name, family.support)
    return family.from_spec(spec, config)


def build_objective(config: ModelConfig, spec: DataSpec | None = None, dataset_size: int | None = None,
                    **context) -> Objective:
    """The objective of ``config``; some need the data spec (a discriminator on x), the training
    set's size (beta-TCVAE's minibatch-weighted sampling) or more ``context`` (patch-gan's
    ``perceptual`` feature maps, built from the data in build.py)."""
    if (config.capacity_max or config.free_bits) and config.objective != "elbo":
        raise ConfigError(f"model.capacity_max and model.free_bits shape the ELBO's KL term; objective "
                          f"{config.objective!r} does not use them (use model.objective=elbo)")
    objective = OBJECTIVES.get(config.objective).from_config(config, spec=spec, dataset_size=dataset_size, **context)
    if not objective.needs_density and config.stochastic_layers > 1:
        raise ConfigError(f"objective {config.objective!r} (beta = {config.beta}) has no KL term, and only the KL "
                          "term trains the lower layers of a hierarchical model; use model.stochastic_layers=1")
    if not objective.needs_density and config.prior != "standard_normal":
        raise ConfigError(f"model.prior={config.prior!r} is learned through the KL term, which objective "
                          f"{config.objective!r} (beta = {config.beta}) does not have; use the standard_normal prior")
    if objective.needs_density and config.posterior == "deterministic":
        raise ConfigError(
            f"objective {config.objective!r} needs a posterior with a density; "
            "a deterministic posterior trains with model.objective=ae"
        )
    return objective


def condition_dim(spec: DataSpec, config: ModelConfig) -> int:
    """Width of the condition vector: the number of classes for a label-conditional model."""
    if config.condition == "none":
        return 0
    if spec.n_classes < 2:
        raise ConfigError("model.condition='label' needs labelled data (class labels); this data has none")
    return spec.n_classes


def settled(spec: DataSpec, config: ModelConfig) -> ModelConfig:
    """``config`` with what the data fixes filled in: model.latent_dim of a network whose latent grid
    follows from the image size (ldm)."""
    latent = fixed_latent_dim(spec, config)
    return config if latent in (None, config.latent_dim) else config.model_copy(update={"latent_dim": latent})


def build_model(spec: DataSpec, config: ModelConfig) -> VAE:
    """Assemble the VAE for this data: networks from the shape, parts from the registries."""
    config = settled(spec, config)
    likelihood = build_likelihood(spec, config)
    n_cond = condition_dim(spec, config)
    prior = PRIORS.get(config.prior).from_spec(spec, config)
    if config.stochastic_layers > 1:
        if config.posterior != "gaussian":
            raise ConfigError("a hierarchical model (model.stochastic_layers > 1) needs model.posterior=gaussian")
        width = config.hidden[-1] if config.hidden else 256
        encoder, decoder = build_networks(spec, config, likelihood.n_params, decoder_input=width + n_cond,
                                          out_shape=likelihood.output_shape(spec.shape))
        model = HierarchicalVAE(encoder, decoder, likelihood, prior, config.latent_dim, config.stochastic_layers,
                                width, n_cond)
    else:
        encoder, decoder = build_networks(spec, config, likelihood.n_params,
                                          decoder_input=config.latent_dim + n_cond,
                                          out_shape=likelihood.output_shape(spec.shape))
        if isinstance(encoder, MomentEncoder):  # its features are the moments of q(z|x) over a latent grid
            POSTERIORS.get(config.posterior)  # a known name, or the registry's one-line error
            posterior = MomentsHead(deterministic=config.posterior == "deterministic")
        else:
            posterior = POSTERIORS.get(config.posterior)(encoder.out_features + n_cond, config.latent_dim)
        model = VAE(encoder, posterior, decoder, likelihood, prior, config.latent_dim, n_cond)
        if isinstance(encoder, MomentEncoder):
            model.latent_shape = encoder.latent_shape
    for head in heads_for(spec, config):  # last: a model's other parameters keep their order
        model.add_head(head, mlp_head(config.latent_dim, head.outputs, head.hidden))
    return model


# Bytes a float32 parameter costs in training: the weight, its gradient and Adam's two moments.
BYTES_PER_PARAMETER = 16
FIT_SHARE = 0.8  # of the device's memory the model's training state may take: the rest is for activations


def parameter_count(spec: DataSpec, config: ModelConfig, dataset_size: int | None = None) -> int:
    """Parameters the model (and its objective's discriminator, if any) would have, counted by
    building them on the meta device: shapes only, nothing allocated, no random numbers drawn."""
    with torch.device("meta"):
        model = build_model(spec, config)
        objective = build_objective(config, spec, dataset_size)
    modules = [model, *objective.networks().values()]
    return sum(p.numel() for module in modules for p in module.parameters())


def check_model_fits(spec: DataSpec, config: ModelConfig, device: torch.device, dataset_size: int | None = None,
                     memory: int | None = None) -> int:
    """Refuse, before anything is allocated, a model whose training state cannot fit in ``memory``
    bytes (default: the device's); returns its parameter count."""
    from vaekit.data.sources.base import machine_memory

    count = parameter_count(spec, config, dataset_size)
    if memory is None:
        memory = (torch.cuda.get_device_properties(device).total_memory if device.type == "cuda"
                  else machine_memory())
    need = count * BYTES_PER_PARAMETER
    if need > memory * FIT_SHARE:
        raise ConfigError(
            f"model.hidden={list(config.hidden)}, model.latent_dim={config.latent_dim}: the model would have "
            f"{count:,} parameters and need about {need / 2**30:,.1f} GiB to train (weights, gradients, optimizer "
            f"state); {device.type} has {memory / 2**30:,.1f} GiB: choose smaller widths")
    return count
