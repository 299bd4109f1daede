"""A VAE from vaekit's parts, without a config file or the CLI: the five axes by hand.

    python examples/minimal_vae.py            # 40 epochs on scikit-learn's 8x8 digits, about 20 seconds

Encoder and decoder (networks/), the Gaussian posterior head, the Bernoulli likelihood, the N(0, I)
prior, the ELBO objective and the generic Trainer. ``vaekit train`` and ``vaekit.train`` assemble
the same parts from a config (models/__init__.py: build_model, build_objective).
"""

from __future__ import annotations

import os

import torch
from sklearn.datasets import load_digits

from vaekit.config import ModelConfig
from vaekit.data.loaders import TensorBatches
from vaekit.distributions.likelihoods import BernoulliFamily
from vaekit.distributions.posteriors import GaussianHead
from vaekit.distributions.priors import StandardNormalPrior
from vaekit.models.objectives.elbo import ELBO
from vaekit.models.vae import VAE
from vaekit.networks.mlp import MLPDecoder, MLPEncoder
from vaekit.training.trainer import Trainer, make_optimizer

EPOCHS = int(os.environ.get("EPOCHS", "40"))
LATENT = 8

torch.manual_seed(0)
x = torch.as_tensor(load_digits().data / 16.0, dtype=torch.float32)  # (1797, 64) grey levels in [0, 1]
shape, hidden = [64], [256, 128]

encoder = MLPEncoder(shape, hidden)                       # x -> features h
posterior = GaussianHead(encoder.out_features, LATENT)    # h -> q(z|x) = N(mu, diag sigma^2)
likelihood = BernoulliFamily(event_ndim=1)               # decoder output (logits) -> p(x|z), x (B, 64)
decoder = MLPDecoder(LATENT, shape, hidden, likelihood.n_params)
prior = StandardNormalPrior(LATENT)                       # p(z) = N(0, I)
model = VAE(encoder, posterior, decoder, likelihood, prior, LATENT)
objective = ELBO(ModelConfig(latent_dim=LATENT, beta=1.0))  # -log p(x|z) + beta * KL

trainer = Trainer(model, objective, make_optimizer(model.parameters(), "adam", 3e-3), cpu_tuning=False)
history = trainer.fit(TensorBatches({"x": x}, batch_size=128, seed=0), None, EPOCHS).history
print(f"epoch {len(history)}: -ELBO {history[-1]['loss']:.2f} nats "
      f"(reconstruction {history[-1]['recon']:.2f}, KL {history[-1]['kl']:.2f})")

model.eval()
samples = model.sample(16, generator=torch.Generator().manual_seed(0)).mean  # (16, 64) pixel probabilities
print("16 samples drawn:", tuple(samples.shape))
