"""The parts every configuration is made of, below everything that reads one.

:class:`Section` is a pydantic model that forbids unknown keys, validates on assignment, takes each
field's docstring as its description (``vaekit config --list``) and turns a bad value into one
:class:`~vaekit.errors.ConfigError` line. The data, train and eval sections live here; the model
section is assembled in :mod:`vaekit.models.options` from the options each component declares
beside its code (the ``*Options`` classes), and :mod:`vaekit.config` puts the four together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from vaekit.errors import ConfigError

# Sizes are bounded so that a typo (1e9 latents, a 10-million-unit layer) is one clear error, not a
# model that exhausts memory or crashes: far above any network that trains on one machine.
MAX_WIDTH = 65_536
Width = Annotated[int, Field(gt=0, le=MAX_WIDTH)]


# YAML (config files and --set values) reads a bare on/off as a boolean: take it back as the word.
def _bool_as(true: str, false: str) -> BeforeValidator:
    return BeforeValidator(lambda value: (true if value else false) if isinstance(value, bool) else value)


Switch = Annotated[Literal["auto", "on", "off"], _bool_as("on", "off")]
YesNo = Annotated[Literal["auto", "yes", "no"], _bool_as("yes", "no")]


class _OneLineErrors(type(BaseModel)):
    """Built in Python (``ModelConfig(beta=-1)``), a bad value is one ConfigError line, as it is in a
    config file. (A metaclass, not ``__init__``: pydantic would call an ``__init__`` for every nested
    section too, and wrap its error in the outer one's.)"""

    def __call__(cls, *args: Any, **values: Any) -> Any:
        try:
            return super().__call__(*args, **values)
        except ValidationError as error:
            raise ConfigError(one_line(error, cls.__name__)) from None


class Section(BaseModel, metaclass=_OneLineErrors):
    # Each field's docstring is its description (``vaekit config --list`` shows it), so the meaning
    # of a key lives in one place, next to its type and default.
    # No float option means anything at inf or NaN (`--lr inf` used to pass and diverge later).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True,
                              allow_inf_nan=False)


def one_line(error: ValidationError, origin: str) -> str:
    """A pydantic error as one line: where it was (``origin``), which key, what was wrong, what came."""
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


def set_dotted(tree: dict[str, Any], key: str, value: Any, origin: str) -> None:
    """``tree["a"]["b"] = value`` for ``key="a.b"``; a key under a value that is not a section is refused."""
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{origin}: {key!r} is not an option (no section {part!r})")
        node = child
    node[parts[-1]] = value


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra``, section by section (neither is changed)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
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


class DataConfig(Section):
    """Where the data comes from and how it is split and scaled."""

    source: str = "digits"
    """A registered dataset name (`vaekit datasets`) or a path to a file or folder."""
    root: str | None = None
    """Folder to look for (and download into) a named dataset's files."""
    download: bool = True
    """Fetch a missing named dataset (checksummed) instead of failing."""
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    """Share of the training split held out for validation."""
    test_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    """Share held out for testing, for sources with no official test split."""
    split_seed: int = 0
    """Seed of the train/validation/test split and of seeded subsets."""
    scale: Literal["auto", "unit", "standardize", "none"] = "auto"
    """auto: images divided by their maximum level into [0, 1], other data left alone; standardize: zero
    mean and unit variance per feature (tables, Gaussian likelihoods)."""
    continuous_transform: Literal["auto", "standardize", "quantile"] = "auto"
    """Tables: how continuous columns reach the model. quantile: each value through its column's
    empirical CDF to a normal score (a Gaussian copula's marginals; log-likelihoods are then of the
    scores, not of the values in their units); standardize: as data.scale says. auto: quantile when
    data.scale is auto (synthetic tables' SDMetrics quality, bench/peers_synth.py), else standardize."""
    binarize: bool = False
    """Threshold scaled values at 0.5 (a statically binarised dataset)."""
    image_size: tuple[int, int] | None = None
    """(H, W) to resize a folder of images to."""
    grayscale: bool | None = None
    """Force 1 channel (true) or 3 (false) for a folder of images."""
    crop: tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]] | None = None
    """Images: (H, W) random crops for training, a new window each time an image is drawn (the model is
    built for this size; data.image_size resizes first); held-out images and --data inputs are centre-cropped."""
    label_column: str | None = None
    """The CSV column that holds labels (not a feature)."""
    column_types: dict[str, Literal["continuous", "binary", "categorical", "count"]] | None = None
    """A table's column kinds by name where inference is not what you mean, e.g. {visits: count, zip:
    categorical} (inferred: numbers continuous; 0/1 or two text values binary; text categorical;
    non-negative integers with variance >= mean count)."""
    max_samples: int | None = Field(None, gt=0)
    """Keep only this many training samples (a seeded subset)."""
    tokens: Literal["char", "word", "smiles", "selfies"] | None = None
    """Text and molecules: the tokeniser (default smiles for .smi files and moses, char otherwise)."""
    min_freq: int = Field(1, ge=1)
    """Text and molecules: the least count that keeps a token in the vocabulary (rarer ones become <unk>)."""
    max_len: int | None = Field(None, gt=0)
    """Text and molecules: the most tokens per sequence (default the longest)."""
    text_column: str | None = None
    """The CSV column that holds the text (each row one sequence)."""
    properties: list[str] | None = None
    """Molecules: RDKit properties (qed, logp, weight, tpsa) as targets of a property head on z, trained
    with the VAE (Gomez-Bombarelli et al. 2018); `vaekit optimize` climbs them."""
    classes: list[int | str] | None = None
    """Train (and validate) on these classes only, by index or name: a one-class model for anomaly
    detection; the test split keeps every class."""
    in_memory: YesNo = "auto"
    """Hold the whole split as one tensor on the device (the fast path); auto: when it fits."""
    num_workers: int = Field(0, ge=0)
    """DataLoader workers on the streaming path."""


class TrainConfig(Section):
    """The optimisation loop."""

    epochs: int = Field(20, gt=0, le=1_000_000)
    """Passes over the training split."""
    batch_size: int = Field(128, gt=0)
    """Samples per training step."""
    lr: float = Field(1e-3, gt=0.0)
    """Learning rate."""
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    """The optimiser."""
    weight_decay: float = Field(0.0, ge=0.0)
    """Weight decay of the optimiser."""
    momentum: float = Field(0.9, ge=0.0)
    """SGD only: momentum."""
    schedule: Literal["none", "cosine", "step", "plateau"] = "none"
    """Learning-rate schedule after the warm-up."""
    warmup_epochs: int = Field(0, ge=0)
    """Epochs of linear learning-rate warm-up before the schedule."""
    step_size: int = Field(10, gt=0)
    """schedule=step: epochs between decays."""
    gamma: float = Field(0.5, gt=0.0)
    """schedule=step or plateau: decay factor."""
    grad_clip: float | None = Field(None, gt=0.0)
    """Largest global gradient norm; unset: no clipping."""
    kl_warmup: Literal["none", "linear", "cyclical"] = "none"
    """KL weight schedule: linear ramp from 0 (Bowman et al. 2016) or cyclical (Fu et al. 2019)."""
    kl_warmup_epochs: int = Field(10, gt=0)
    """linear: epochs to reach full KL weight; cyclical: the period."""
    capacity_epochs: int = Field(10, gt=0)
    """Epochs for the capacity C to reach model.capacity_max."""
    early_stopping: int | None = Field(None, gt=0)
    """Patience in epochs on the validation loss; unset: off."""
    max_minutes: float | None = Field(None, gt=0)
    """Wall-clock budget of the run, training and the final evaluation together (which gets a tenth of
    it, at most eval.max_seconds); training stops after the step that passes its share."""
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    """Where to train; auto: CUDA, then MPS, then the CPU."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Numeric precision; auto: bf16 autocast on CUDA only."""
    compile: bool = False
    """torch.compile the step: pays a compile once, helps larger models."""
    capture: Switch = "auto"
    """The device-side epoch: batches gathered on the device, metrics summed there, on CUDA each step one
    replay of a captured CUDA graph (the last partial batch is dropped); auto: on CUDA, on: on any device,
    off: the eager loop. Streaming data, DDP and train.compile train eagerly (said in the log)."""
    seed: int = 0
    """Seed for initialisation, batching and noise."""
    threads: int | None = Field(None, gt=0, le=1024)
    """CPU threads (torch's default when unset)."""
    progress: bool = True
    """Show progress bars while training and evaluating."""
    tensorboard: bool = False
    """Also log scalars per epoch to RUN/tensorboard (needs the tensorboard package)."""
    log_every: int = Field(50, gt=0)
    """Steps between progress updates (each one is a host sync)."""
    max_bad_steps: int = Field(10, gt=0)
    """NaN/Inf steps in a row before the last checkpoint is restored."""


class EvalConfig(Section):
    """The evaluation written to metrics.json at the end of training."""

    enabled: bool = True
    """Evaluate on the test split at the end of training."""
    k: int = Field(100, gt=0)
    """Importance samples for the NLL estimate (lowered when the budget needs it)."""
    batch_size: int = Field(256, gt=0)
    """Test samples per batch."""
    max_samples: int | None = Field(None, gt=0)
    """Evaluate on at most this many test samples (a seeded subset)."""
    max_seconds: float | None = Field(30.0, gt=0)
    """Wall-clock budget of the evaluation; it evaluates fewer samples, then fewer importance samples, to
    fit, and says what it cut; unset: the whole test split at eval.k (as `vaekit evaluate` does)."""

class CoreOptions(Section):
    """The model options that networks, priors and objectives all read."""

    latent_dim: int = Field(16, gt=0, le=MAX_WIDTH)
    """Dimensions of the latent code z."""
    condition: Literal["none", "label"] = "none"
    """label: a conditional VAE on the data's class labels."""
    stochastic_layers: int = Field(1, ge=1, le=8)
    """Stochastic layers; more than 1 is a hierarchical VAE (top-down inference)."""
