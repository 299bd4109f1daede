"""Model assembly: one :func:`build_model` from a DataSpec and a ModelConfig."""

from __future__ import annotations

from vaekit.config import ModelConfig
from vaekit.data.spec import DataSpec
from vaekit.distributions.likelihoods import LIKELIHOODS, LikelihoodFamily
from vaekit.distributions.posteriors import POSTERIORS
from vaekit.distributions.priors import PRIORS
from vaekit.errors import ConfigError
from vaekit.models.objectives import OBJECTIVES, Objective
from vaekit.models.outputs import LossOutput, VAEOutput
from vaekit.models.presets import PRESETS
from vaekit.models.vae import VAE
from vaekit.networks.factory import build_networks

__all__ = ["VAE", "LossOutput", "VAEOutput", "PRESETS", "build_model", "build_objective", "likelihood_name"]


def likelihood_name(spec: DataSpec, config: ModelConfig) -> str:
    return spec.default_likelihood() if config.likelihood == "auto" else config.likelihood


def build_likelihood(spec: DataSpec, config: ModelConfig) -> LikelihoodFamily:
    """The likelihood family for this data, refusing one whose support does not fit it."""
    name = likelihood_name(spec, config)
    family = LIKELIHOODS.get(name)
    spec.check_likelihood(name, family.support)
    return family.from_spec(spec, config)


def build_objective(config: ModelConfig) -> Objective:
    objective = OBJECTIVES.get(config.objective).from_config(config)
    if objective.needs_density and config.posterior == "deterministic":
        raise ConfigError(
            f"objective {config.objective!r} needs a posterior with a density; "
            "a deterministic posterior trains with model.objective=ae"
        )
    return objective


def build_model(spec: DataSpec, config: ModelConfig) -> VAE:
    """Assemble the VAE for this data: networks from the shape, parts from the registries."""
    likelihood = build_likelihood(spec, config)
    encoder, decoder = build_networks(spec, config, likelihood.n_params)
    posterior = POSTERIORS.get(config.posterior)(encoder.out_features, config.latent_dim)
    prior = PRIORS.get(config.prior)(config.latent_dim)
    return VAE(encoder, posterior, decoder, likelihood, prior, config.latent_dim)
