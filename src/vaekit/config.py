"""Typed run configuration: defaults < preset < config file < ``--set`` overrides < CLI flags.

Every section forbids unknown keys and validates types, so a typo in a YAML file or an override
fails at once with the name of the field (a :class:`~vaekit.errors.ConfigError`), never later.
The data, train and eval sections and the parsing helpers live in :mod:`vaekit.sections`; the
model section is :class:`vaekit.models.options.ModelConfig`, the union of the options each model
part declares beside its code. This module puts the four together and resolves the layers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from vaekit.errors import ConfigError
from vaekit.models.options import ModelConfig
from vaekit.presets import PRESETS
from vaekit.sections import (
    DataConfig,
    EvalConfig,
    Section,
    TrainConfig,
    deep_merge,
    one_line,
    parse_override,
    read_config_file,
    set_dotted,
)

__all__ = ["DataConfig", "EvalConfig", "ModelConfig", "RunConfig", "TrainConfig", "config_from_dict", "dumps",
           "parse_override", "read_config_file", "resolve_config"]


class RunConfig(Section):
    """A whole run: the preset it started from and its four sections."""

    preset: str = "vae"
    """The variant whose choices the other keys start from (`vaekit presets`)."""
    data: DataConfig = Field(default_factory=DataConfig)
    """Where the data comes from and how it is split and scaled."""
    model: ModelConfig = Field(default_factory=ModelConfig)
    """The five axes (network, posterior, prior, likelihood, objective) and their sizes."""
    train: TrainConfig = Field(default_factory=TrainConfig)
    """The optimisation loop."""
    eval: EvalConfig = Field(default_factory=EvalConfig)
    """The evaluation written to metrics.json at the end of training."""

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def resolve_config(
    *,
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    values: Mapping[str, Mapping[str, Any]] | None = None,
    flags: dict[str, Any] | None = None,
) -> RunConfig:
    """Build a validated :class:`RunConfig`.

    Layers, later ones winning: defaults, the preset's choices, the config file, ``--set``
    overrides, Python ``values`` by section (``{"model": {"beta": 4.0}}``: no YAML in between), then
    explicit flags (``{"train.epochs": 3}``; ``None`` values are ignored).
    The preset is taken from the ``preset`` argument, else the file, else ``"vae"``.
    """
    file_tree = read_config_file(config_file) if config_file is not None else {}
    name = preset or file_tree.get("preset") or "vae"
    tree = deep_merge(PRESETS.get(name).partial(), file_tree)
    tree["preset"] = name
    for text in overrides:
        key, value = parse_override(text)
        if key == "preset":
            raise ConfigError(f"--set {text}: choose the preset with --preset {value} (it sets other options)")
        set_dotted(tree, key, value, f"--set {text}")
    for section, options in (values or {}).items():
        if not isinstance(options, Mapping):
            raise ConfigError(f"{section}={options!r}: expected a mapping of options, e.g. {section}={{...}}")
        for key, value in options.items():
            set_dotted(tree, f"{section}.{key}", value, f"{section}[{key!r}]")
    for key, value in (flags or {}).items():
        if value is not None:
            set_dotted(tree, key, value, f"--{key.split('.')[-1].replace('_', '-')}")
    origin = "configuration" if config_file is None else f"config {str(config_file)!r}"
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(one_line(error, origin)) from None


def config_from_dict(tree: dict[str, Any], origin: str) -> RunConfig:
    """Validate a saved config (a run folder's config.json)."""
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(one_line(error, origin)) from None


def dumps(config: RunConfig) -> str:
    return json.dumps(config.to_dict(), indent=2, sort_keys=True)
