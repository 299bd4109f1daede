"""Configuration layers (defaults < preset < file < --set < flags) and the errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaekit.config import RunConfig, config_from_dict, parse_override, resolve_config
from vaekit.errors import ConfigError
from vaekit.presets import PRESETS


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_give_the_vae_preset() -> None:
    config = resolve_config()
    assert config.preset == "vae"
    assert (config.model.posterior, config.model.objective, config.model.beta) == ("gaussian", "elbo", 1.0)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_applies_its_choices(name: str) -> None:
    config = resolve_config(preset=name)
    assert config.preset == name
    tree = config.to_dict()
    for key, value in PRESETS.get(name).items():
        section, field = key.split(".")
        assert tree[section][field] == value, key


def test_named_presets_set_the_documented_options() -> None:
    assert resolve_config(preset="beta-vae").model.beta == 4.0
    ae = resolve_config(preset="ae").model
    assert (ae.posterior, ae.objective) == ("deterministic", "ae")
    iwae = resolve_config(preset="iwae").model
    assert (iwae.objective, iwae.k) == ("iwae", 5)


def test_layers_file_then_overrides_then_flags(tmp_path: Path) -> None:
    path = write(tmp_path, "preset: beta-vae\nmodel:\n  beta: 2.0\n  latent_dim: 7\ntrain:\n  lr: 0.01\n")
    from_file = resolve_config(config_file=path)
    assert from_file.preset == "beta-vae"  # the preset named in the file
    assert from_file.model.beta == 2.0  # the file beats the preset
    assert from_file.train.lr == 0.01

    overridden = resolve_config(config_file=path, overrides=["train.lr=0.02", "model.hidden=[8, 4]"])
    assert overridden.train.lr == 0.02  # --set beats the file
    assert overridden.model.hidden == [8, 4]
    assert overridden.model.latent_dim == 7  # untouched file values stay

    flagged = resolve_config(config_file=path, overrides=["train.lr=0.02"],
                             flags={"train.lr": 0.03, "train.epochs": None})
    assert flagged.train.lr == 0.03  # flags beat --set
    assert flagged.train.epochs == RunConfig().train.epochs  # a None flag is ignored


def test_preset_argument_beats_the_file_preset_and_the_file_beats_the_preset(tmp_path: Path) -> None:
    path = write(tmp_path, "preset: iwae\nmodel:\n  k: 9\n")
    config = resolve_config(preset="beta-vae", config_file=path)
    assert config.preset == "beta-vae"
    assert config.model.beta == 4.0
    assert config.model.objective == "elbo"  # the file's preset was not applied
    assert config.model.k == 9  # but the file's own values were


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_valid_partial_config(name: str) -> None:
    """A preset is a partial run config: it validates on its own, over the defaults."""
    config = RunConfig.model_validate(PRESETS.get(name).partial())
    for key, value in PRESETS.get(name).items():
        section, option = key.split(".")
        assert getattr(getattr(config, section), option) == value


def test_python_values_are_laid_over_overrides_and_under_flags() -> None:
    config = resolve_config(preset="beta-vae", overrides=["model.latent_dim=3", "train.lr=0.1"],
                            values={"model": {"beta": 2, "hidden": [32, 16]}, "train": {"lr": 0.01, "epochs": 7}},
                            flags={"train.epochs": 9})
    assert config.model.beta == 2.0 and config.model.hidden == [32, 16] and config.model.latent_dim == 3
    assert config.train.lr == 0.01 and config.train.epochs == 9
    assert config.preset == "beta-vae"


@pytest.mark.parametrize(("values", "words"), [
    ({"model": {"beta": -1}}, "model.beta"),
    ({"model": {"nope": 1}}, "nope"),
    ({"model": 4}, "expected a mapping of options"),
])
def test_bad_python_values_are_one_config_error_line(values: dict, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_config(values=values)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_overrides_are_read_as_yaml_values() -> None:
    assert resolve_config(overrides=["train.lr=1e-3"]).train.lr == 1e-3  # the documented spelling
    assert parse_override("train.lr=0.5") == ("train.lr", 0.5)
    assert parse_override("train.compile=true") == ("train.compile", True)
    assert parse_override("model.hidden=[64, 32]") == ("model.hidden", [64, 32])
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("train.lr")


def test_unknown_key_in_file_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "model:\n  latnet_dim: 4\n")
    with pytest.raises(ConfigError) as error:
        resolve_config(config_file=path)
    assert "latnet_dim" in str(error.value)
    assert str(path) in str(error.value)


def test_unknown_section_in_file_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="optimiser"):
        resolve_config(config_file=write(tmp_path, "optimiser:\n  lr: 0.1\n"))


def test_unknown_key_in_override_names_the_key() -> None:
    with pytest.raises(ConfigError) as error:
        resolve_config(overrides=["train.learning_rate=0.1"])
    assert "learning_rate" in str(error.value)


@pytest.mark.parametrize(
    ("override", "field"),
    [("train.epochs=many", "epochs"), ("model.latent_dim=-3", "latent_dim"),
     ("model.activation=swish", "activation"), ("data.val_fraction=1.5", "val_fraction")],
)
def test_bad_value_names_the_field(override: str, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        resolve_config(overrides=[override])
    assert field in str(error.value)
    assert "\n" not in str(error.value)  # one line


def test_bad_type_in_file_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        resolve_config(config_file=write(tmp_path, "train:\n  batch_size: lots\n"))


def test_override_below_a_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="train.lr"):
        resolve_config(overrides=["train.lr=0.1", "train.lr.value=2"])


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as error:
        resolve_config(preset="no-such-vae")
    message = str(error.value)
    assert "no-such-vae" in message
    for name in PRESETS:
        assert name in message


def test_unknown_preset_in_file_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="beta-vae"):
        resolve_config(config_file=write(tmp_path, "preset: nope\n"))


def test_missing_or_malformed_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_config(config_file=tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="mapping"):
        resolve_config(config_file=write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="not valid"):
        resolve_config(config_file=write(tmp_path, "model: [unclosed\n"))


def test_saved_config_round_trips(tmp_path: Path) -> None:
    config = resolve_config(preset="iwae", overrides=["model.hidden=[16]", "train.epochs=3"])
    assert config_from_dict(config.to_dict(), "saved") == config
    with pytest.raises(ConfigError, match="bogus"):
        config_from_dict({**config.to_dict(), "bogus": 1}, "saved")


def test_every_key_has_a_description_and_is_listed_with_its_type_and_default() -> None:
    """`vaekit config --list` is generated from the pydantic models, so it cannot drift from them; a
    new key without a description (an attribute docstring) fails here."""
    from vaekit.cli.config import options

    config = RunConfig()
    listed = {option.key: option for option in options(config)}
    sections = {"data": config.data, "model": config.model, "train": config.train, "eval": config.eval}
    keys = ["preset"] + [f"{name}.{key}" for name, section in sections.items() for key in type(section).model_fields]
    assert list(listed) == keys
    missing = [key for key, option in listed.items() if not option.description]
    assert missing == [], f"config keys without a description: {missing}"
    assert all("\n" not in option.description for option in listed.values())  # one line each
    assert (listed["model.network"].type, listed["model.network"].value) == ("auto|mlp|conv|ldm", "auto")
    assert (listed["train.grad_clip"].type, listed["train.grad_clip"].value) == ("float or null", None)
    assert (listed["model.hidden"].type, listed["model.hidden"].value) == ("list[int]", [512, 256])


@pytest.mark.parametrize(("override", "field"), [
    ("train.lr=inf", "train.lr"),
    ("train.lr=.nan", "train.lr"),
    ("model.beta=.inf", "model.beta"),
    ("train.grad_clip=.inf", "train.grad_clip"),
    ("train.epochs=0", "train.epochs"),
    ("model.latent_dim=1000000000", "model.latent_dim"),
    ("model.hidden=[10000000, 10000000]", "model.hidden.0"),
    ("model.conv_channels=[32, 10000000]", "model.conv_channels.1"),
    ("train.threads=100000", "train.threads"),
])
def test_unbounded_or_meaningless_values_are_refused_naming_the_field(override: str, field: str) -> None:
    """Issue 17: `--lr inf` passed validation and diverged; 1e9 latents, a 10-million-unit layer or
    100,000 threads exhausted memory or crashed. Each is now one error naming the field."""
    with pytest.raises(ConfigError, match=rf"^configuration: {field}: "):
        resolve_config(overrides=[override])


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_the_model_memory_estimate_counts_what_training_builds(preset: str, tmp_path: Path) -> None:
    """Issue 17: a model too large for the machine is refused, with the figure, before anything is
    allocated. The count is taken on the meta device and equals the built model's, for every preset."""
    import torch

    from vaekit.data.loaders import prepare_data
    from vaekit.models import build_model, build_objective, check_model_fits

    source = "digits"
    if preset == "seq-vae":  # a text file: the MOSES files need the molsets wheel, which CI lacks
        source = tmp_path / "lines.txt"
        source.write_text("\n".join(f"line number {i} of the file" for i in range(40)) + "\n")
    config = resolve_config(preset=preset, overrides=[f"data.source={source}", "data.max_samples=200",
                                                     "model.hidden=[48]", "model.latent_dim=3"])
    data = prepare_data(config.data)
    state = torch.random.get_rng_state()
    count = check_model_fits(data.spec, config.model, torch.device("cpu"), len(data.train))
    assert torch.equal(state, torch.random.get_rng_state()), "the estimate drew random numbers"
    model, objective = build_model(data.spec, config.model), build_objective(config.model, data.spec, len(data.train))
    built = sum(p.numel() for p in model.parameters())
    built += sum(p.numel() for p in objective.aux_module.parameters()) if objective.aux_module is not None else 0
    assert count == built
    with pytest.raises(ConfigError, match=r"model.hidden=\[48\].*parameters and need about .* GiB"):
        check_model_fits(data.spec, config.model, torch.device("cpu"), len(data.train), memory=count * 8)


@pytest.mark.parametrize("kind", ["mixed-table", "conv-images", "text"])
def test_the_model_memory_estimate_builds_every_kind_of_model_on_the_meta_device(kind: str, tmp_path: Path) -> None:
    """A table's categorical input once read a tensor's value in __init__, which the meta device
    cannot give: every table with a category failed to train."""
    import numpy as np
    import torch

    from vaekit.data.loaders import prepare_data
    from vaekit.models import build_model, check_model_fits

    rng = np.random.default_rng(0)
    if kind == "mixed-table":
        source = tmp_path / "mixed.csv"
        rows = [f"{rng.normal():.3f},{rng.integers(0, 9)},{'abc'[rng.integers(0, 3)]},{rng.integers(0, 2)}"
                for _ in range(60)]
        source.write_text("x,k,colour,flag\n" + "\n".join(rows) + "\n")
        overrides = [f"data.source={source}"]
    elif kind == "conv-images":
        source = tmp_path / "images.npy"
        np.save(source, rng.integers(0, 256, size=(40, 16, 16), dtype=np.uint8))
        overrides = [f"data.source={source}", "model.network=conv"]
    else:
        source = tmp_path / "lines.txt"
        source.write_text("\n".join(f"line number {i} of the file" for i in range(40)) + "\n")
        overrides = [f"data.source={source}"]
    config = resolve_config(overrides=overrides)
    data = prepare_data(config.data)
    count = check_model_fits(data.spec, config.model, torch.device("cpu"), len(data.train))
    assert count == sum(p.numel() for p in build_model(data.spec, config.model).parameters())
