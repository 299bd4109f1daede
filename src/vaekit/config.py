"""Typed run configuration: defaults < preset < config file < ``--set`` overrides < CLI flags.

Every section forbids unknown keys and validates types, so a typo in a YAML file or an override
fails at once with the name of the field (a :class:`~vaekit.errors.ConfigError`), never later.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vaekit.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    """Where the data comes from and how it is split and scaled."""

    source: str = "digits"  # a registered name (`vaekit datasets`) or a path to a file/folder
    root: str | None = None  # folder to look for (and download into) a named dataset's files
    download: bool = True  # fetch a missing named dataset (checksummed) instead of failing
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)  # of the training split, for validation
    test_fraction: float = Field(0.2, ge=0.0, lt=1.0)  # only for sources with no official test split
    split_seed: int = 0
    # "auto" divides images by their maximum level into [0, 1] and leaves other data alone;
    # "standardize" gives zero mean and unit variance per feature (tables, Gaussian likelihoods).
    scale: Literal["auto", "unit", "standardize", "none"] = "auto"
    binarize: bool = False  # threshold scaled values at 0.5 (a statically binarised dataset)
    image_size: tuple[int, int] | None = None  # (H, W) to resize a folder of images to
    grayscale: bool | None = None  # force 1 channel (True) or 3 (False) for a folder of images
    label_column: str | None = None  # the CSV column that holds labels (not a feature)
    # A table's column kinds by name, where inference (numbers: continuous; 0/1 or two text values:
    # binary; text: categorical; non-negative integers with variance >= mean: count) is not what you
    # mean: {"visits": "count", "zip": "categorical"}.
    column_types: dict[str, Literal["continuous", "binary", "categorical", "count"]] | None = None
    max_samples: int | None = Field(None, gt=0)  # keep only this many training samples
    # Text and molecules (a .txt/.smi file, a CSV's text_column, moses): the tokeniser (default:
    # smiles for .smi files and moses, char otherwise), the least count that keeps a word in the
    # vocabulary (rarer ones become <unk>), and the most tokens per sequence (default: the longest).
    tokens: Literal["char", "word", "smiles", "selfies"] | None = None
    min_freq: int = Field(1, ge=1)
    max_len: int | None = Field(None, gt=0)
    text_column: str | None = None  # the CSV column that holds the text (each row one sequence)
    # Molecules: properties computed with RDKit (qed, logp, weight, tpsa) as targets of a property
    # head on z, trained with the VAE (Gomez-Bombarelli et al. 2018); `vaekit optimize` climbs them.
    properties: list[str] | None = None
    # Train (and validate) on these classes only, by index or name: a one-class model for anomaly
    # detection. The test split keeps every class, so the others can be scored as anomalies.
    classes: list[int | str] | None = None
    # "auto": hold the whole split as one tensor on the device (fast path) when it fits.
    in_memory: Literal["auto", "yes", "no"] = "auto"
    num_workers: int = Field(0, ge=0)  # DataLoader workers on the streaming path


class ModelConfig(_Section):
    """The five axes (network, posterior, prior, likelihood, objective) and their sizes."""

    network: Literal["auto", "mlp", "conv"] = "auto"  # auto: conv for images of 16 px and up
    latent_dim: int = Field(16, gt=0)
    hidden: list[int] = Field(default_factory=lambda: [512, 256])  # MLP widths, encoder order
    conv_channels: list[int] = Field(default_factory=lambda: [32, 64, 128])
    activation: Literal["relu", "leaky_relu", "elu", "gelu", "silu", "tanh"] = "relu"
    norm: Literal["none", "batch", "layer"] = "none"
    posterior: str = "gaussian"
    prior: str = "standard_normal"
    prior_components: int | None = Field(None, gt=0)  # mixture: 10, vamp: 500 pseudo-inputs by default
    condition: Literal["none", "label"] = "none"  # "label": a conditional VAE on the data's class labels
    stochastic_layers: int = Field(1, ge=1, le=8)  # > 1: a hierarchical VAE (top-down inference)
    likelihood: str = "auto"  # auto: picked from the data's value range (see DataSpec)
    likelihood_scale: float = Field(1.0, gt=0.0)  # fixed scale: the Gaussian's sigma, the Laplace's b
    objective: str = "elbo"
    beta: float = Field(1.0, ge=0.0)  # weight of the KL term (beta-VAE, Higgins et al. 2017)
    k: int = Field(5, gt=0)  # importance samples of the IWAE bound (Burda et al. 2016)
    # Burgess et al. 2018: gamma * |KL - C| with the capacity C raised linearly to capacity_max
    # nats over train.capacity_epochs; 0 turns it off.
    capacity_max: float = Field(0.0, ge=0.0)
    capacity_gamma: float = Field(1000.0, gt=0.0)
    free_bits: float = Field(0.0, ge=0.0)  # nats per latent dimension (Kingma et al. 2016); 0: off
    # A hierarchical model's KL per layer weighted by its size while train.kl_warmup runs (NVAE).
    kl_balance: bool = False
    # Sequences (text, molecules): token embedding width, network width (the encoder's GRU per
    # direction, and the decoder, GRU or Transformer), and word dropout: the share of the decoder's
    # input tokens replaced by <unk> while training, so that it leans on z (Bowman et al. 2016).
    embed_dim: int = Field(128, gt=0)
    rnn_hidden: int = Field(256, gt=0)
    word_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # The sequence decoder: a GRU, or a causal Transformer of rnn_hidden width (seq_layers layers,
    # seq_heads heads), conditioned on z at every position.
    seq_decoder: Literal["gru", "transformer"] = "gru"
    seq_layers: int = Field(2, gt=0)
    seq_heads: int = Field(4, gt=0)
    property_weight: float = Field(1.0, ge=0.0)  # weight of the property head's squared error (data.properties)
    mmd_weight: float = Field(100.0, ge=0.0)  # lambda of the MMD term (wae, infovae)
    mmd_kernel: Literal["imq", "rbf"] = "imq"
    tc_weight: float = Field(6.0, ge=0.0)  # total-correlation weight (beta-tcvae's beta, factor-vae's gamma)
    adv_weight: float = Field(1.0, ge=0.0)  # vae-gan: weight of the generator's adversarial term
    disc_hidden: list[int] = Field(default_factory=lambda: [1000, 1000, 1000])  # factor-vae discriminator
    disc_lr: float = Field(1e-4, gt=0.0)  # learning rate of an objective's discriminator
    # Denoising: corrupt the encoder's input, reconstruct the clean one: "none", "gaussian:SIGMA"
    # (added noise) or "mask:P" (a fraction P of values set to 0). Training only.
    corruption: str = "none"
    # How per-sample losses combine over a batch. "sum" is the classic PyTorch example; "mean"
    # keeps the learning rate independent of the batch size.
    reduction: Literal["mean", "sum"] = "mean"


class TrainConfig(_Section):
    """The optimisation loop."""

    epochs: int = Field(20, ge=0)
    batch_size: int = Field(128, gt=0)
    lr: float = Field(1e-3, gt=0.0)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    weight_decay: float = Field(0.0, ge=0.0)
    momentum: float = Field(0.9, ge=0.0)  # SGD only
    schedule: Literal["none", "cosine", "step", "plateau"] = "none"
    warmup_epochs: int = Field(0, ge=0)  # linear learning-rate warm-up before the schedule
    step_size: int = Field(10, gt=0)  # "step": epochs between decays
    gamma: float = Field(0.5, gt=0.0)  # "step"/"plateau": decay factor
    grad_clip: float | None = Field(None, gt=0.0)  # max global gradient norm
    kl_warmup: Literal["none", "linear", "cyclical"] = "none"  # Bowman 2016 / Fu 2019
    kl_warmup_epochs: int = Field(10, gt=0)  # linear: epochs to reach full weight; cyclical: period
    capacity_epochs: int = Field(10, gt=0)  # epochs for the capacity C to reach model.capacity_max
    early_stopping: int | None = Field(None, gt=0)  # patience in epochs on the validation loss
    max_minutes: float | None = Field(None, gt=0)  # wall-clock budget: stop after the step that passes it
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA only
    compile: bool = False  # torch.compile the step; pays a compile once, helps larger models
    seed: int = 0
    threads: int | None = Field(None, gt=0)  # CPU threads (torch default when unset)
    progress: bool = True
    tensorboard: bool = False
    log_every: int = Field(50, gt=0)  # steps between progress updates (each one is a host sync)
    max_bad_steps: int = Field(10, gt=0)  # NaN/Inf steps in a row before restoring a checkpoint


class EvalConfig(_Section):
    """The evaluation written to metrics.json at the end of training."""

    enabled: bool = True
    k: int = Field(100, gt=0)  # importance samples for the NLL estimate
    batch_size: int = Field(256, gt=0)
    max_samples: int | None = Field(None, gt=0)  # evaluate on this many test samples (a seeded subset)


class RunConfig(_Section):
    preset: str = "vae"
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _one_line(error: ValidationError, origin: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"{origin}: unknown option {where!r}"
    return f"{origin}: {where}: {first['msg']} (got {first.get('input')!r})"


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``section.key=value``; the value is read as YAML (numbers, booleans, lists)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected key=value, e.g. train.lr=1e-3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _set_dotted(tree: dict[str, Any], key: str, value: Any, origin: str) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{origin}: {key!r} is not an option (no section {part!r})")
        node = child
    node[parts[-1]] = value


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a plain dict (no tags, no code)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML/JSON ({exc.__class__.__name__})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r}: expected a mapping of sections at the top")
    return data


def resolve_config(
    *,
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    flags: dict[str, Any] | None = None,
) -> RunConfig:
    """Build a validated :class:`RunConfig`.

    Layers, later ones winning: defaults, the preset's choices, the config file, ``--set``
    overrides, then explicit flags (``{"train.epochs": 3}``; ``None`` values are ignored).
    The preset is taken from the ``preset`` argument, else the file, else ``"vae"``.
    """
    from vaekit.models.presets import PRESETS  # presets are data; imported late to avoid a cycle

    file_tree = read_config_file(config_file) if config_file is not None else {}
    name = preset or file_tree.get("preset") or "vae"
    tree: dict[str, Any] = {}
    for key, value in PRESETS.get(name).items():
        _set_dotted(tree, key, value, f"preset {name!r}")
    tree = _deep_merge(tree, file_tree)
    tree["preset"] = name
    for text in overrides:
        key, value = parse_override(text)
        if key == "preset":
            raise ConfigError(f"--set {text}: choose the preset with --preset {value} (it sets other options)")
        _set_dotted(tree, key, value, f"--set {text}")
    for key, value in (flags or {}).items():
        if value is not None:
            _set_dotted(tree, key, value, f"--{key.split('.')[-1].replace('_', '-')}")
    origin = "configuration" if config_file is None else f"config {str(config_file)!r}"
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(_one_line(error, origin)) from None


def config_from_dict(tree: dict[str, Any], origin: str) -> RunConfig:
    """Validate a saved config (a run folder's config.json)."""
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(_one_line(error, origin)) from None


def dumps(config: RunConfig) -> str:
    return json.dumps(config.to_dict(), indent=2, sort_keys=True)
