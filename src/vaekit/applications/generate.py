"""Generation beyond N(0, I): a Gaussian mixture fitted to the aggregate posterior.

A VAE's decoder is trained on codes drawn from q(z|x) for the training data, whose average (the
aggregate posterior) rarely fills N(0, I): prior draws land in holes the decoder never saw, and
their images are blurred or mixed. Fitting a density to the codes themselves after training and
sampling from it ("ex-post density estimation", Ghosh et al. 2020, "From Variational to
Deterministic Autoencoders", sec. 4) lands in regions the decoder knows. Here that density is a
Gaussian mixture (scikit-learn's EM), sampled with torch so a ``torch.Generator`` fixes the draws.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from vaekit.api import Run
from vaekit.data.sources import RawData
from vaekit.distributions.priors import prior_draws
from vaekit.errors import ConfigError, DataError
from vaekit.evaluation.quality import QualityReport

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from vaekit.evaluation.features import FeatureNetwork


@dataclass
class LatentMixture:
    """A fitted Gaussian mixture over latent codes: K components with full covariances."""

    weights: Tensor  # (K,)
    means: Tensor  # (K, L)
    scale_tril: Tensor  # (K, L, L) Cholesky factors of the covariances

    @classmethod
    def fit(cls, codes: Tensor | np.ndarray, n_components: int = 10, seed: int = 0,
            max_codes: int = 20_000) -> LatentMixture:
        """EM on at most ``max_codes`` codes (N, L), a seeded subset when there are more."""
        from sklearn.mixture import GaussianMixture

        values = np.asarray(torch.as_tensor(codes).detach().cpu(), dtype=np.float64)
        if values.ndim != 2 or len(values) == 0 or not np.isfinite(values).all():
            raise DataError(f"latent codes: expected a finite, non-empty (N, L) array, got shape {values.shape}")
        if (isinstance(n_components, bool) or not isinstance(n_components, Integral)
                or not 1 <= n_components <= len(values)):
            raise ConfigError(f"n_components={n_components}: expected 1..{len(values)} (the number of codes)")
        if len(values) > max_codes:
            values = values[np.random.default_rng(seed).choice(len(values), max_codes, replace=False)]
        # A small ridge keeps every covariance positive definite when some dimensions are inactive.
        gmm = GaussianMixture(n_components, covariance_type="full", reg_covar=1e-5, random_state=seed).fit(values)
        # The Cholesky factor in float64, where sklearn's ridge still counts, then cast.
        scale_tril = torch.linalg.cholesky(torch.as_tensor(gmm.covariances_))  # (K, L, L)
        return cls(weights=torch.as_tensor(gmm.weights_, dtype=torch.float32),
                   means=torch.as_tensor(gmm.means_, dtype=torch.float32), scale_tril=scale_tril.float())

    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> Tensor:
        """``n`` codes (n, L): a component by its weight, then its mean plus ``temperature`` times
        correlated noise (temperature 0 gives the component means)."""
        component = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # (n,)
        noise = torch.randn(n, self.means.shape[1], generator=generator)  # (n, L)
        correlated = (self.scale_tril[component] @ noise.unsqueeze(-1)).squeeze(-1)  # (n, L)
        return self.means[component] + temperature * correlated

    def log_prob(self, z: Tensor) -> Tensor:
        """log density of codes (N, L) under the mixture, (N,)."""
        components = torch.distributions.MultivariateNormal(self.means, scale_tril=self.scale_tril)
        joint = components.log_prob(z.unsqueeze(1)) + torch.log(self.weights)  # (N, K)
        return torch.logsumexp(joint, dim=1)


def fit_aggregate_posterior(run: Run, x: np.ndarray | Tensor, labels: Tensor | None = None, n_components: int = 10,
                            seed: int = 0) -> LatentMixture:
    """A :class:`LatentMixture` fitted to the posterior means of ``x`` (the training data, in data units)."""
    means, _ = run.encode_all(x, condition=labels)  # (N, L)
    return LatentMixture.fit(means, n_components, seed)


def sample_mixture(run: Run, mixture: LatentMixture, n: int, seed: int = 0, temperature: float = 1.0,
                   condition: Tensor | int | None = None) -> Tensor:
    """``n`` samples in data units from codes drawn from ``mixture`` instead of the prior."""
    generator = torch.Generator().manual_seed(seed)
    z = mixture.sample(n, generator, temperature)  # (n, L)
    lower = torch.Generator(device=run.device).manual_seed(seed + 1)  # a hierarchical model's lower layers
    return run.generate(z, condition, lower, temperature)


def quality_features(run: Run, features: str | Path | FeatureNetwork | None = None) -> FeatureNetwork:
    """The feature network of sample quality (FID) and rFID: ``features`` (a vaekit classifier
    folder, .pt or .onnx; or a network already loaded) or the data set's cached default classifier
    (:mod:`vaekit.evaluation.features`); a DataError for data that are not images."""
    from vaekit.evaluation.features import FeatureNetwork, default_feature_network, load_feature_network

    refused = run.spec.data_kind.unsupported(run.spec, "fid")
    if refused:
        raise DataError(refused)
    if isinstance(features, FeatureNetwork):
        return features
    return load_feature_network(features) if features else default_feature_network(run.config.data, unit_of(run))


def unit_of(run: Run) -> Callable[[np.ndarray | Tensor], Tensor]:
    """Raw images -> [0, 1], as figures and the feature networks see them."""
    from vaekit.applications.visualize import to_unit

    def unit(x: np.ndarray | Tensor) -> Tensor:
        return to_unit(run.spec, torch.as_tensor(np.asarray(x)))

    return unit


def held_out_part(test: RawData, n: int, seed: int) -> RawData:
    """The ``n`` test images (a seeded choice) that FID and rFID compare with."""
    return test.subset(np.random.default_rng(seed).permutation(len(test))[:n])


def generated_quality(run: Run, train: RawData, test: RawData, n: int = 10_000, seed: int = 0,
                      features: str | Path | FeatureNetwork | None = None, sampler: str = "prior",
                      components: int = 10, temperature: float = 1.0) -> QualityReport:
    """FID, KID and precision/recall of ``n`` generated images against the test images, in the
    features of :func:`quality_features`."""
    from vaekit.evaluation.quality import sample_quality

    if sampler not in ("prior", "gmm"):
        raise ConfigError(f"sampler {sampler!r}: expected prior or gmm")
    network, unit = quality_features(run, features), unit_of(run)
    real = held_out_part(test, n, seed).x
    if sampler == "gmm":
        conditions = None if not run.model.condition_dim else torch.as_tensor(train.y)
        mixture = fit_aggregate_posterior(run, train.x, conditions, components, seed)

        def draw(count: int, part_seed: int) -> Tensor:
            return sample_mixture(run, mixture, count, part_seed, temperature)
    else:

        def draw(count: int, part_seed: int) -> Tensor:
            return run.sample(count, seed=part_seed, temperature=temperature)

    fake = torch.cat([draw(len(part), seed + i).cpu() for i, part in enumerate(torch.arange(n).split(1000))])
    return sample_quality(network(unit(real)), network(unit(fake)), network.description, seed=seed)


@torch.no_grad()
def reconstruction_fid(run: Run, test: RawData, n: int = 10_000, seed: int = 0,
                       features: str | Path | FeatureNetwork | None = None, batch_size: int = 500) -> float:
    """rFID: the Fréchet distance between the features (:func:`quality_features`, FID's) of ``n``
    test images (those FID compares with at this ``seed``, which also gives their features) and of
    their reconstructions, the likelihood's mean at the posterior mean (:meth:`Run.reconstruct`),
    mapped to [0, 1] as the test images are (:func:`~vaekit.evaluation.reconstruction.unit_scale`)
    and clipped to the data's range."""
    from vaekit.evaluation.quality import feature_warnings, frechet_distance
    from vaekit.evaluation.reconstruction import unit_scale

    network = quality_features(run, features)
    real = held_out_part(test, n, seed)
    images = torch.as_tensor(np.asarray(real.x))
    scale = unit_scale(run.spec, images, model_space=False)
    labels = run.labels(real, "rFID")
    parts = [run.reconstruct(images[start : start + batch_size],
                             condition=None if labels is None else labels[start : start + batch_size]).cpu()
             for start in range(0, len(images), batch_size)]
    rebuilt = scale(torch.cat(parts)).clamp(0.0, 1.0)
    features = network(unit_of(run)(real.x))
    for line in feature_warnings(features, "rFID"):
        log.warning("%s", line)
    return frechet_distance(features, network(rebuilt))


@torch.no_grad()
def sample_sequences(run: Run, n: int, seed: int = 0, temperature: float = 1.0, decoding: str = "greedy",
                     token_temperature: float = 1.0, top_k: int = 0, beam: int = 4,
                     condition: Tensor | int | None = None, z: Tensor | None = None) -> list[str]:
    """``n`` sentences or molecules from a sequence run: codes z ~ p(z) at ``temperature`` (or the
    codes ``z`` given), each decoded by ``decoding`` (greedy, sample, top-k or beam; see
    :meth:`vaekit.distributions.sequence.TokenSequence.generate`), as strings."""
    refused = run.spec.data_kind.unsupported(run.spec, "decoding")
    if refused:
        raise ConfigError(f"decoding text: {refused}")
    generator = torch.Generator(device=run.device).manual_seed(seed)
    condition = run.condition_for(n if z is None else len(z), condition)
    if z is None:
        z = prior_draws(run.model.prior_distribution(condition, n), n, generator, temperature)
    z = torch.as_tensor(z, dtype=torch.float32, device=run.device)
    px = run.model.generate(z, condition, generator, temperature)
    ids = px.generate(decoding, temperature=token_temperature, top_k=top_k, beam=beam, generator=generator)
    return run.spec.to_text(ids)
