"""The names, shapes and order of what a run saves, per preset and data kind, against a manifest.

A trained run is ``model.safetensors`` (the model's state dict) and ``checkpoint/last.safetensors``
(the same under ``model.``, the discriminator's under ``aux.``, the optimizer state keyed by parameter
*index*). Renaming a module attribute, nesting it differently or building modules in another order
would leave every saved run unreadable, or resume it with another parameter's Adam moments, without
any other test noticing. The manifest (saved_format.json beside this file) was written by the code
that wrote those runs; a change to it must be deliberate: ``VAEKIT_WRITE_SAVED_FORMAT=1 pytest
tests/unit/test_saved_format.py`` rewrites it, and the diff is the review.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from vaekit.config import DataConfig, resolve_config
from vaekit.data.sources import RawData
from vaekit.data.sources.text import sequences
from vaekit.data.spec import DataSpec
from vaekit.models import build_model, build_objective
from vaekit.presets import PRESETS

MANIFEST = Path(__file__).with_name("saved_format.json")
SMALL = ["model.latent_dim=3", "model.hidden=[8]", "model.conv_channels=[4, 8]", "model.disc_hidden=[8]",
         "model.embed_dim=4", "model.rnn_hidden=8", "model.prior_components=2"]


def _image() -> RawData:
    x = np.random.default_rng(0).integers(0, 256, (12, 1, 16, 16)).astype(np.uint8)
    return RawData(x=x, y=np.arange(12) % 3, kind="image", max_level=255.0, class_names=["a", "b", "c"])


def _table() -> RawData:
    import pandas as pd

    frame = pd.DataFrame({"size": [1.0, 2.5, np.nan, 4.0, 3.0, 2.0],
                          "colour": ["red", "blue", "red", None, "green", "blue"], "count": [1, 2, 3, 4, 5, 6]})
    from vaekit.data.sources.tabular import from_frame

    return from_frame(frame)


def _text() -> RawData:
    return sequences(["a cat sat", "the dog ran far", "cats and dogs", "a bird"] * 3)


DATA = {"image": _image, "table": _table, "text": _text}
CASES = {f"image-mlp-{preset}": ("image", preset, ["model.network=mlp"]) for preset in PRESETS
         if preset not in ("seq-vae",)}
CASES.update({
    "image-conv-vae": ("image", "vae", ["model.network=conv"]),
    "image-conv-vae-gan": ("image", "vae-gan", ["model.network=conv"]),
    "image-conv-hvae": ("image", "hvae", ["model.network=conv"]),
    "image-ldm-kl-f4": ("image", "kl-f4", ["model.norm_groups=4", "model.patch_channels=4"]),
    "table-vae": ("table", "vae", []),
    "text-seq-vae-gru": ("text", "seq-vae", ["model.seq_decoder=gru"]),
    "text-seq-vae-transformer": ("text", "seq-vae", ["model.seq_decoder=transformer", "model.seq_heads=2",
                                                      "model.seq_layers=1"]),
})


def saved_format(case: str) -> dict[str, list]:
    kind, preset, extra = CASES[case]
    raw = DATA[kind]()
    spec = DataSpec.fit(raw, DataConfig(source="array"))
    config = resolve_config(preset=preset, overrides=[*SMALL, *extra]).model
    with torch.device("meta"):
        model = build_model(spec, config)
        objective = build_objective(config, spec, dataset_size=len(raw.x))
    modules = {"model": model, "aux": objective.aux_module}
    return {
        f"{prefix}.{what}": [[name, list(tensor.shape)] for name, tensor in items]
        for prefix, module in modules.items() if module is not None
        for what, items in (("state_dict", module.state_dict().items()), ("parameters", module.named_parameters()))
    }


def test_the_manifest_covers_every_preset() -> None:
    named = {preset for _, preset, _ in CASES.values()}
    assert named == set(PRESETS), "a new preset: add it to CASES and rewrite the manifest"


@pytest.mark.parametrize("case", sorted(CASES))
def test_what_a_run_saves_keeps_its_names_shapes_and_order(case: str) -> None:
    found = saved_format(case)
    if os.environ.get("VAEKIT_WRITE_SAVED_FORMAT"):
        manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
        manifest[case] = found
        MANIFEST.write_text(json.dumps(manifest, indent=0, sort_keys=True) + "\n")
        return
    expected = json.loads(MANIFEST.read_text())[case]
    assert found == expected
