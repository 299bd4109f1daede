"""vaekit: Variational Autoencoders for your own data.

>>> import vaekit
>>> config = vaekit.resolve_config(preset="vae", flags={"train.epochs": 5})
>>> run = vaekit.train(config, out="runs/digits")          # doctest: +SKIP
>>> images = run.sample(16, seed=0)                         # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from vaekit.api import Run, load, resume, train  # noqa: E402
from vaekit.config import RunConfig, resolve_config  # noqa: E402
from vaekit.models import PRESETS, VAE, build_model  # noqa: E402
from vaekit.training.trainer import Trainer  # noqa: E402

__all__ = ["PRESETS", "VAE", "Run", "RunConfig", "Trainer", "build_model", "load", "resolve_config",
           "resume", "train", "__version__"]
