"""`vaekit config`: every configuration key with its type, default and meaning, so nobody has to
read config.py to find the key for `--set`."""

from __future__ import annotations

import json

from vaekit.cli.config import options
from vaekit.config import resolve_config


def test_config_list_shows_every_key_with_type_default_and_meaning(invoke) -> None:
    output = invoke(["config", "--list"]).stdout
    for option in options(resolve_config()):
        assert option.key in output and option.description in output
    assert "train.max_minutes (float or null) = null\n    Wall-clock budget of the run" in output
    assert "eval.max_seconds (float or null) = 30.0\n" in output


def test_config_list_shows_a_presets_values(invoke) -> None:
    assert "model.beta (float) = 4.0\n" in invoke(["config", "--list", "--preset", "beta-vae"]).stdout


def test_config_without_list_prints_the_resolved_configuration(invoke) -> None:
    resolved = json.loads(invoke(["config", "--set", "train.lr=0.01"]).stdout)
    assert resolved["train"]["lr"] == 0.01 and resolved["preset"] == "vae"


def test_train_help_points_to_the_listing(invoke) -> None:
    assert "vaekit config --list" in invoke(["train", "--help"]).stdout
