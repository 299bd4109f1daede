"""A trained model: :class:`Run` (its data spec, config and folder) and :func:`load`, which reads one back.

:meth:`Run.save` writes the run folder (both front ends: :func:`vaekit.train` and ``vaekit train``),
and :meth:`Run.evaluate` is the one evaluation behind metrics.json (the end of training and
``vaekit evaluate``).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from vaekit import io
from vaekit.config import RunConfig
from vaekit.data.loaders import center_crop, prepare_data
from vaekit.data.sources import RawData
from vaekit.data.spec import DataSpec
from vaekit.distributions.posteriors import DiagonalGaussian
from vaekit.errors import ConfigError, DataError, RunFolderError
from vaekit.ldm_runs import is_diffusers_folder, open_diffusers
from vaekit.models import VAE

log = logging.getLogger(__name__)

MAX_CODE = 100.0  # standard deviations of N(0, I): beyond this a code is no input the decoder has seen


@dataclass
class Run:
    """A trained model with its data spec and config; inputs and outputs are in the data's units."""

    model: VAE
    spec: DataSpec
    config: RunConfig
    path: Path | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to_model_space(self, x: np.ndarray | Tensor, name: str = "input") -> Tensor:
        return self.spec.transform(x, name=name, check_range=True).to(self.device)

    def condition_for(self, n: int, condition: Tensor | int | None) -> Tensor | int | None:
        """For generation: a conditional model given no condition cycles through its classes."""
        if condition is None and self.model.condition_dim:
            return torch.arange(n, device=self.device) % self.model.condition_dim
        return condition

    def inputs(self, source: str | None = None, split: str = "test") -> RawData:
        """Raw samples to feed this run: its own held-out split by default, or ``source`` (a dataset
        name or path; for a named dataset with an official split, ``split`` picks "train", "test"
        or "all"). A table's columns are matched to the model's by name; an unconditional run's
        inputs may lack the label column."""
        from vaekit.data.sources import load_source
        from vaekit.data.sources.labels import NoLabelColumn

        if split not in ("train", "test", "all"):
            raise ConfigError(f"split {split!r}: expected train, test or all")
        if source is None and self.path is not None and is_diffusers_folder(self.path):
            h, w = self.spec.shape[1:]
            raise DataError(f"{str(self.path)!r} is a diffusers autoencoder: it has no data of its own; pass the "
                            f"images with --data (a folder or file of {h}x{w} images)")
        if source is None:
            data = prepare_data(self.config.data)
            chosen = {"train": data.train, "test": data.test or data.val or data.train}.get(split)
            if chosen is None:  # "all"
                parts = [p for p in (data.train, data.val, data.test) if p is not None]
                labelled = all(p.y is not None for p in parts)
                chosen = RawData(x=np.concatenate([p.x for p in parts]),
                                 y=np.concatenate([p.y for p in parts]) if labelled else None,
                                 kind=parts[0].kind, max_level=parts[0].max_level, class_names=parts[0].class_names,
                                 feature_names=parts[0].feature_names)
            return chosen
        config = self.config.data.model_copy(update={"source": source})
        try:
            splits = load_source(config)
        except NoLabelColumn:
            if self.model.condition_dim:  # a conditional run needs the labels
                raise
            splits = load_source(config.model_copy(update={"label_column": None}))  # an unconditional one does not
        if split == "train" or splits.test is None:
            chosen = splits.train
        elif split == "test":
            chosen = splits.test
        else:
            y = None
            if splits.train.y is not None and splits.test.y is not None:
                y = np.concatenate([splits.train.y, splits.test.y])
            chosen = RawData(x=np.concatenate([splits.train.x, splits.test.x]), y=y, kind=splits.train.kind,
                             max_level=splits.train.max_level, class_names=splits.train.class_names,
                             feature_names=splits.train.feature_names)
        if self.config.data.crop is not None:  # trained on crops: centred ones of the same size
            chosen = center_crop(chosen, tuple(self.config.data.crop), source)
        return self.spec.align(chosen, what=source, label_column=self.config.data.label_column)  # matched by name

    @torch.no_grad()
    def encode(self, x: np.ndarray | Tensor, name: str = "input", condition: Tensor | None = None) -> Distribution:
        """q(z|x) for raw samples (N, *shape); ``.mean`` is the embedding. A conditional model
        takes each sample's label (N,) or condition vector (N, C)."""
        return self.model.encode(self.to_model_space(x, name=name), condition)

    @torch.no_grad()
    def encode_all(self, x: np.ndarray | Tensor, name: str = "input", condition: Tensor | None = None,
                   batch_size: int = 1024) -> tuple[Tensor, Tensor | None]:
        """Posterior means (N, L) and log-variances (N, L), or None for a deterministic code, of a
        whole data set, ``batch_size`` inputs per forward pass; both on the CPU."""
        means, logvars = [], []
        for start in range(0, len(x), batch_size):
            part = None if condition is None else condition[start : start + batch_size]
            qz = self.encode(x[start : start + batch_size], name=name, condition=part)
            means.append(qz.mean.cpu())
            if isinstance(qz, DiagonalGaussian):
                logvars.append(qz.logvar.cpu())
        return torch.cat(means), torch.cat(logvars) if logvars else None

    def _codes(self, z: Any, what: str) -> Tensor:
        """Codes z as a float tensor (N, latent_dim) on the model's device, or one DataError line."""
        try:
            codes = torch.as_tensor(np.asarray(z, dtype=np.float32) if not isinstance(z, Tensor) else z,
                                    dtype=torch.float32, device=self.device)
        except (TypeError, ValueError):
            raise DataError(f"Run.{what}: expected codes of shape (N, {self.model.latent_dim}), got "
                            f"{type(z).__name__}") from None
        if codes.ndim != 2 or codes.shape[1] != self.model.latent_dim:
            raise DataError(f"Run.{what}: expected codes of shape (N, {self.model.latent_dim}), got "
                            f"{tuple(codes.shape)}")
        if not bool(torch.isfinite(codes).all()):
            raise DataError(f"Run.{what}: the codes contain NaN or infinite values")
        if codes.numel() and float(codes.abs().max()) > MAX_CODE:
            raise DataError(f"Run.{what}: codes up to {float(codes.abs().max()):.3g}, far outside the prior the "
                            f"decoder was trained on (codes within about +-{MAX_CODE:g})")
        return codes

    @torch.no_grad()
    def decode(self, z: Tensor, mode: str = "mean", condition: Tensor | None = None) -> Tensor:
        """The likelihood's mean (or a sample, with ``mode="sample"``) for z (N, L), in data units; a
        conditional model cycles through its classes when given no condition."""
        if mode not in ("mean", "sample"):
            raise ConfigError(f"Run.decode: mode {mode!r}: expected mean or sample")
        z = self._codes(z, "decode")
        px = self.model.decode(z, self.condition_for(len(z), condition))
        return self.spec.inverse(px.mean if mode == "mean" else px.sample())

    @torch.no_grad()
    def generate(self, z: Tensor, condition: Tensor | int | None = None, generator: torch.Generator | None = None,
                 temperature: float = 1.0) -> Tensor:
        """Data (the likelihood mean) for codes z (N, L) drawn from some prior-like sampler; unlike
        :meth:`decode`, a hierarchical model draws its lower layers from their priors."""
        z = self._codes(z, "generate")
        px = self.model.generate(z, self.condition_for(len(z), condition), generator, temperature)
        return self.spec.inverse(px.mean)

    @torch.no_grad()
    def reconstruct(self, x: np.ndarray | Tensor, name: str = "input", condition: Tensor | None = None) -> Tensor:
        """Decode the posterior mean of each input: the usual reconstruction, in data units."""
        return self.spec.inverse(self.model.reconstruct(self.to_model_space(x, name=name), condition).mean)

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0, condition: Tensor | int | None = None) -> Tensor:
        """``n`` new samples (the likelihood mean at z ~ p(z)), in data units; a conditional model
        takes a label (one for all, or (n,)) or condition vectors (n, C), and cycles through its
        classes when given none."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ConfigError(f"Run.sample: n must be a whole number of samples, at least 1 (got {n!r})")
        if not (math.isfinite(temperature) and temperature >= 0):
            raise ConfigError(f"Run.sample: temperature must be a finite number >= 0 (got {temperature!r})")
        if generator is None and seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(seed)
        condition = self.condition_for(n, condition)
        px = self.model.sample(n, generator=generator, temperature=temperature, condition=condition)
        return self.spec.inverse(px.mean)

    def save(self, folder: str | Path | None = None) -> Path:
        """Write the run folder (``folder``, or the run's own): config.json and data_spec.json (when
        absent), model.safetensors, history.csv (when absent) and figures/loss.png; its path."""
        if folder is None and self.path is None:
            raise RunFolderError("Run.save: this run has no folder; pass one")
        folder = Path(folder if folder is not None else self.path)
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / io.CONFIG).is_file() or not (folder / io.SPEC).is_file():
            io.write_header(folder, self.config, self.spec)
        io.save_weights(folder, self.model)
        if self.history:
            if not (folder / io.HISTORY).is_file():
                io.write_history(folder, self.history)
            io.write_loss_figure(self.history, folder / "figures" / "loss.png")
        return folder

    def labels(self, inputs: RawData, what: str, device: str | torch.device | None = None) -> Tensor | None:
        """The inputs' labels as a tensor (on ``device``, default the model's) when the run is
        conditional, which needs them; None for an unconditional run."""
        if not self.model.condition_dim:
            return None
        if inputs.y is None:
            raise DataError(f"{what}: this run is conditional and needs labelled inputs; these have no labels")
        return torch.as_tensor(inputs.y).to(self.device if device is None else device)

    def evaluate(self, inputs: RawData | None = None, *, k: int | None = None, batch_size: int | None = None,
                 max_samples: int | None = None, max_seconds: float | None = None, seed: int | None = None,
                 progress: bool = False, what: str = "test split", check_range: bool = False) -> dict[str, Any]:
        """Held-out -ELBO, NLL, KL per dimension, active units (and property R^2) of raw ``inputs``
        (default the run's test split): :func:`vaekit.evaluation.report.evaluate` on ``max_samples``
        of them chosen by ``data.split_seed``. ``k``, ``batch_size``, ``max_samples`` and ``seed``
        default to the config's ``eval.*`` and ``train.seed``; ``max_seconds`` is a time budget (none
        by default); ``check_range`` checks the inputs against the training range as for a user's file."""
        from vaekit.evaluation.report import evaluate

        config = self.config
        if inputs is None:
            inputs = self.inputs()
        max_samples = config.eval.max_samples if max_samples is None else max_samples
        inputs = seeded_part(inputs, max_samples, config.data.split_seed)
        x = self.spec.transform(inputs.x, name=what, check_range=check_range)  # on the CPU: moved per batch
        y = self.labels(inputs, what, "cpu")  # moved per batch
        t = self.spec.property_targets(inputs.x) if self.spec.properties else None
        return evaluate(self.model, x, k=config.eval.k if k is None else k,
                        batch_size=config.eval.batch_size if batch_size is None else batch_size,
                        seed=config.train.seed if seed is None else seed, y=y, t=t,
                        property_names=self.spec.properties,
                        feature_names=self.spec.data_kind.column_names(self.spec), what=what,
                        max_seconds=max_seconds, progress=progress, spec=self.spec)



def load(path: str | Path, device: str | torch.device = "cpu") -> Run:
    """Rebuild a run folder's model from JSON + safetensors (no pickle, no code executed); a diffusers
    AutoencoderKL folder opens as a kl-f run (ldm_runs.py)."""
    if not isinstance(path, str | os.PathLike):
        raise ConfigError(f"vaekit.load: expected the path of a run folder, got {type(path).__name__}")
    try:
        torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"vaekit.load: device {device!r}: expected cpu, cuda, cuda:N or mps") from None
    folder = Path(path)
    if not folder.is_dir():
        raise RunFolderError(f"run folder {str(folder)!r} does not exist")
    if is_diffusers_folder(folder):  # a diffusers AutoencoderKL: a kl-f run without data or history
        config, spec, model = open_diffusers(folder, device)
        return Run(model=model, spec=spec, config=config, path=folder, history=[])
    config, spec = io.read_config(folder), io.read_spec(folder)
    model = io.load_model(folder, config, spec, device)
    history_path = folder / io.HISTORY
    history = _read_history(history_path) if history_path.is_file() else []
    return Run(model=model, spec=spec, config=config, path=folder, history=history)


def _read_history(path: Path) -> list[dict[str, float]]:
    """The rows of history.csv; a damaged file costs the history, not the run (one warning)."""
    import csv

    try:
        with path.open(newline="") as handle:
            return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]
    except (ValueError, TypeError, csv.Error, UnicodeDecodeError):
        log.warning("%s is damaged (not the CSV training writes); the run loads without its history", path)
        return []


def seeded_part(raw: RawData, n: int | None, seed: int) -> RawData:
    """``n`` samples of ``raw`` chosen by ``seed``, in their order (all of them when ``n`` is None or more)."""
    if n is None or n >= len(raw):
        return raw
    return raw.subset(np.sort(np.random.default_rng(seed).permutation(len(raw))[:n]))
