"""The diffusers folder layout of an ``AutoencoderKL``, read and written without diffusers:

    FOLDER/config.json                          the constructor arguments (``_class_name``: AutoencoderKL)
    FOLDER/diffusion_pytorch_model.safetensors  the weights, under diffusers' own parameter names

as ``AutoencoderKL.save_pretrained`` writes it and ``from_pretrained`` reads it. Weights are read from
safetensors only: a folder with only ``diffusion_pytorch_model.bin`` (a pickle, which can run code
when loaded) is refused with a one-line error.

What loading handles beyond the current names: diffusers checkpoints written before the attention
rename (``query``/``key``/``value``/``proj_attn`` in the mid blocks) are renamed to ``to_q``/``to_k``/
``to_v``/``to_out.0``, as diffusers does on load, and attention weights stored as 1x1 convolutions
(C, C, 1, 1) are flattened to the (C, C) of a linear layer. Not handled: the original CompVis
single-file checkpoints (``first_stage_model.*`` keys), sharded weights and variant files
(``diffusion_pytorch_model.fp16.safetensors``). Weights of any float dtype load into float32.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from vaekit.errors import ConfigError, DataError
from vaekit.files import atomic_save_tensors, atomic_write_json
from vaekit.networks.ldm import AutoencoderKL, AutoencoderKLConfig
from vaekit.version import __version__

CONFIG_NAME, WEIGHTS_NAME = "config.json", "diffusion_pytorch_model.safetensors"
PICKLE_WEIGHTS_NAME = "diffusion_pytorch_model.bin"
CLASS_NAME, DOWN_BLOCK, UP_BLOCK = "AutoencoderKL", "DownEncoderBlock2D", "UpDecoderBlock2D"
ACTIVATIONS = ("silu", "swish")  # diffusers maps both names to SiLU
LEGACY_ATTENTION_NAMES = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}

# The JSON keys that are not AutoencoderKLConfig fields: the block types and the activation are
# fixed in this architecture, so they are checked, not stored.
FIXED_KEYS = ("down_block_types", "up_block_types", "act_fn")


def config_from_json(tree: Any, source: str = CONFIG_NAME) -> AutoencoderKLConfig:
    """Check a diffusers AutoencoderKL config (the parsed config.json) and build its config.

    Keys starting with ``_`` (``_class_name``, ``_diffusers_version``) are metadata; ``_class_name``,
    when present, must be AutoencoderKL. Any other unknown key, or an unsupported value, raises.

    Raises
    ------
    ConfigError
        One line naming the key, its value and what was expected.
    """
    if not isinstance(tree, dict):
        raise ConfigError(f"{source}: expected a JSON object of AutoencoderKL arguments, got {type(tree).__name__}")
    if tree.get("_class_name", CLASS_NAME) != CLASS_NAME:
        raise ConfigError(f"{source}: _class_name={tree['_class_name']!r}: expected {CLASS_NAME!r} "
                          "(only diffusers' AutoencoderKL is supported)")
    known = {f.name for f in fields(AutoencoderKLConfig)}
    unknown = [key for key in tree if not key.startswith("_") and key not in known | set(FIXED_KEYS)]
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}: expected only AutoencoderKL's keys "
                          f"({', '.join(sorted(known | set(FIXED_KEYS)))})")
    values = {key: tree[key] for key in known if key in tree}

    def fail(key: str, expected: str) -> ConfigError:
        return ConfigError(f"{source}: {key}={tree[key]!r}: expected {expected}")

    for key in ("in_channels", "out_channels", "layers_per_block", "latent_channels", "norm_num_groups"):
        if key in values and not _positive_int(values[key]):
            raise fail(key, "a positive integer")
    if "block_out_channels" in values:
        channels = values["block_out_channels"]
        if not isinstance(channels, list) or not channels or not all(_positive_int(c) for c in channels):
            raise fail("block_out_channels", "a non-empty list of positive integers")
        values["block_out_channels"] = tuple(channels)
    n_blocks = len(values.get("block_out_channels", AutoencoderKLConfig.block_out_channels))
    for key, block in (("down_block_types", DOWN_BLOCK), ("up_block_types", UP_BLOCK)):
        types = tree.get(key, [block])
        if not isinstance(types, list) or types != [block] * n_blocks:
            raise fail(key, f"{n_blocks} x {block!r}, one per block_out_channels entry "
                            "(the only block type vaekit's AutoencoderKL builds)")
    if tree.get("act_fn", "silu") not in ACTIVATIONS:
        raise fail("act_fn", "'silu'")
    for key in ("force_upcast", "use_quant_conv", "use_post_quant_conv", "mid_block_add_attention"):
        if key in values and not isinstance(values[key], bool):
            raise fail(key, "true or false")
    if "scaling_factor" in values and not (_number(values["scaling_factor"]) and values["scaling_factor"] > 0):
        raise fail("scaling_factor", "a positive number")
    if values.get("shift_factor") is not None and not _number(values["shift_factor"]):
        raise fail("shift_factor", "a number or null")
    for key in ("latents_mean", "latents_std"):
        if values.get(key) is not None:
            if not isinstance(values[key], list) or not all(_number(v) for v in values[key]):
                raise fail(key, "a list of numbers or null")
            values[key] = tuple(values[key])
    size = values.get("sample_size", AutoencoderKLConfig.sample_size)
    if isinstance(size, list) and size and all(_positive_int(s) for s in size):
        values["sample_size"] = tuple(size)
    elif not _positive_int(size):
        raise fail("sample_size", "a positive integer or a list of them")
    config = AutoencoderKLConfig(**values)
    groups = config.norm_num_groups
    if any(width % groups for width in config.block_out_channels):
        raise ConfigError(f"{source}: norm_num_groups={groups} must divide every block_out_channels entry "
                          f"{list(config.block_out_channels)} (GroupNorm splits the channels into equal groups)")
    return config


def config_to_json(config: AutoencoderKLConfig) -> dict[str, Any]:
    """The config.json diffusers' ``AutoencoderKL.from_pretrained`` reads for ``config``."""
    tree = {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(config).items()}
    n_blocks = len(config.block_out_channels)
    return {"_class_name": CLASS_NAME, "_vaekit_version": __version__, "act_fn": "silu",
            "down_block_types": [DOWN_BLOCK] * n_blocks, "up_block_types": [UP_BLOCK] * n_blocks, **tree}


def load_diffusers(folder: str | Path) -> AutoencoderKL:
    """Open a diffusers AutoencoderKL folder (config.json + diffusion_pytorch_model.safetensors) as a
    vaekit network, in float32 and eval mode.

    Raises
    ------
    DataError
        A missing or unreadable file, weights only as a pickle (.bin), or weights that do not fit
        the config (missing, unexpected or mis-shaped tensors).
    ConfigError
        An unsupported config.json (see :func:`config_from_json`).
    """
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    try:
        tree = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{str(config_path)!r} is missing or not JSON ({error.__class__.__name__}); "
                        "expected a diffusers AutoencoderKL folder") from None
    config = config_from_json(tree, str(config_path))
    if not weights_path.is_file() and (folder / PICKLE_WEIGHTS_NAME).is_file():
        raise DataError(f"{str(folder / PICKLE_WEIGHTS_NAME)!r} is a pickle, which vaekit never loads; expected "
                        f"{WEIGHTS_NAME} (diffusers writes it with save_pretrained(..., safe_serialization=True))")
    try:
        state = load_file(weights_path)
    except (OSError, SafetensorError) as error:
        raise DataError(f"{str(weights_path)!r} is missing or not a safetensors file "
                        f"({error.__class__.__name__}); expected {CLASS_NAME} weights") from None
    model = AutoencoderKL(config)
    model.load_state_dict(fit_state_dict(rename_legacy_keys(state), model, str(weights_path)), strict=True)
    return model.eval()


def save_diffusers(model: AutoencoderKL, folder: str | Path) -> Path:
    """Write ``model`` as a diffusers AutoencoderKL folder (each file atomically); returns the folder."""
    folder = Path(folder)
    atomic_write_json(folder / CONFIG_NAME, config_to_json(model.config))
    atomic_save_tensors(folder / WEIGHTS_NAME, model.state_dict(), metadata={"format": "pt"})
    return folder


def rename_legacy_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Attention parameters under their pre-rename names (``...attentions.0.query.weight``) under
    their current ones (``...attentions.0.to_q.weight``); 1x1-conv shaped ones flattened to (C, C)."""
    renamed = {}
    for key, value in state.items():
        *path, name, kind = key.split(".")
        if "attentions" in path and name in LEGACY_ATTENTION_NAMES:
            key = ".".join([*path, LEGACY_ATTENTION_NAMES[name], kind])
            value = value.flatten(1) if value.dim() == 4 else value  # (C, C, 1, 1) -> (C, C)
        renamed[key] = value
    return renamed


def fit_state_dict(state: dict[str, Tensor], model: AutoencoderKL, source: str) -> dict[str, Tensor]:
    """``state`` if it has exactly ``model``'s keys and shapes; else one DataError line on the first misfit."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        raise DataError(f"{source}: {len(missing)} tensors missing (first: {missing[:1]}), {len(unexpected)} "
                        f"unexpected (first: {unexpected[:1]}) for the network its config.json describes")
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise DataError(f"{source}: {key} has shape {list(value.shape)}, expected "
                            f"{list(expected[key].shape)} for the network its config.json describes")
    return state


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
