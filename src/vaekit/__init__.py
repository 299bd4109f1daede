"""vaekit: Variational Autoencoders for your own data.

>>> import vaekit
>>> config = vaekit.resolve_config(preset="vae", flags={"train.epochs": 5})
>>> run = vaekit.train(config, out="runs/digits")          # doctest: +SKIP
>>> images = run.sample(16, seed=0)                         # doctest: +SKIP
"""

from __future__ import annotations

from vaekit.api import Run, load, resume, train
from vaekit.config import RunConfig, resolve_config
from vaekit.models import PRESETS, VAE, build_model
from vaekit.training.trainer import Trainer
from vaekit.version import __version__

__all__ = ["PRESETS", "VAE", "Run", "RunConfig", "Trainer", "build_model", "load", "resolve_config",
           "resume", "train", "__version__"]
