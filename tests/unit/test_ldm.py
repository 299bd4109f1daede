"""The latent-diffusion autoencoder network and its diffusers folder layout: shapes, the
downsampling factor, diffusers' parameter names, save -> load, the promised errors, and (where
diffusers is installed) outputs equal to diffusers' AutoencoderKL both ways."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from vaekit.errors import ConfigError, DataError
from vaekit.networks.ldm import AutoencoderKL, AutoencoderKLConfig
from vaekit.networks.ldm_files import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    config_from_json,
    config_to_json,
    load_diffusers,
    save_diffusers,
)

TINY = AutoencoderKLConfig(block_out_channels=(32, 64), layers_per_block=1, latent_channels=4, norm_num_groups=8)


def tiny_model(config: AutoencoderKLConfig = TINY, seed: int = 0) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(config).eval()


def images(n: int = 2, size: int = 16, channels: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("channels, f", [((32,), 1), ((32, 64), 2), ((8, 16, 16, 32), 8)])
def test_latents_are_spatial_and_downsampled_by_f(channels: tuple[int, ...], f: int) -> None:
    config = replace(TINY, block_out_channels=channels, latent_channels=3)
    model = tiny_model(config)
    with torch.no_grad():
        moments = model.encode(images(size=16))
        recon = model.decode(moments.mean)
    assert config.downsampling_factor == f
    assert moments.mean.shape == moments.logvar.shape == (2, 3, 16 // f, 16 // f)
    assert recon.shape == (2, 3, 16, 16)


def test_logvar_is_clamped_as_diffusers_clamps_it() -> None:
    model = tiny_model()
    with torch.no_grad():
        model.quant_conv.bias[4:] = 1e3  # the log-variance half of the moments
        assert torch.all(model.encode(images()).logvar == 20.0)
        model.quant_conv.bias[4:] = -1e3
        assert torch.all(model.encode(images()).logvar == -30.0)


def test_parameter_names_are_diffusers_state_dict_keys() -> None:
    keys = set(tiny_model().state_dict())
    for key in ("encoder.conv_in.weight", "encoder.down_blocks.0.resnets.0.norm1.weight",
                "encoder.down_blocks.0.downsamplers.0.conv.weight",
                "encoder.down_blocks.1.resnets.0.conv_shortcut.bias",
                "encoder.mid_block.attentions.0.group_norm.weight", "encoder.mid_block.attentions.0.to_q.weight",
                "encoder.mid_block.attentions.0.to_out.0.bias", "encoder.mid_block.resnets.1.conv2.weight",
                "encoder.conv_norm_out.bias", "encoder.conv_out.weight", "quant_conv.weight", "post_quant_conv.bias",
                "decoder.mid_block.attentions.0.to_v.bias", "decoder.up_blocks.0.resnets.1.norm2.weight",
                "decoder.up_blocks.0.upsamplers.0.conv.weight", "decoder.up_blocks.1.resnets.0.conv_shortcut.weight",
                "decoder.conv_out.bias"):
        assert key in keys, key
    # The last stage neither down- nor upsamples; equal widths need no shortcut conv.
    assert not any(k.startswith(("encoder.down_blocks.1.downsamplers", "decoder.up_blocks.1.upsamplers",
                                 "encoder.down_blocks.0.resnets.0.conv_shortcut")) for k in keys)
    plain = replace(TINY, use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=False)
    assert not any("quant_conv" in k or "attentions" in k for k in tiny_model(plain).state_dict())


def test_gradients_reach_every_parameter() -> None:
    model = tiny_model().train()
    model(images()).square().mean().backward()
    assert [name for name, p in model.named_parameters() if p.grad is None or not p.grad.any()] == []


def test_sampling_takes_a_generator_and_diffusion_scaling_inverts() -> None:
    model = tiny_model(replace(TINY, scaling_factor=0.5, shift_factor=0.1))
    with torch.no_grad():
        moments = model.encode(images())
    draw = [model.sample_latents(moments, torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(draw[0], draw[1]) and not torch.equal(draw[0], moments.mean)
    latents = model.to_diffusion(moments.mean)
    torch.testing.assert_close(latents, (moments.mean - 0.1) * 0.5)
    torch.testing.assert_close(model.from_diffusion(latents), moments.mean)


def test_save_then_load_gives_the_same_network(tmp_path: Path) -> None:
    config = replace(TINY, shift_factor=0.0609, scaling_factor=0.3611, latents_mean=(0.1,) * 4, sample_size=(16, 24))
    model = tiny_model(config)
    loaded = load_diffusers(save_diffusers(model, tmp_path / "vae"))
    assert loaded.config == config
    before, after = model.state_dict(), loaded.state_dict()
    assert list(before) == list(after) and all(torch.equal(before[key], after[key]) for key in before)
    with torch.no_grad():
        assert torch.equal(model(images()), loaded(images()))
    written = json.loads((tmp_path / "vae" / CONFIG_NAME).read_text())
    assert written["_class_name"] == "AutoencoderKL" and written["down_block_types"] == ["DownEncoderBlock2D"] * 2


def test_weights_under_the_old_attention_names_load(tmp_path: Path) -> None:
    model = tiny_model()
    save_diffusers(model, tmp_path)
    old = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    state = {}
    for key, value in load_file(tmp_path / WEIGHTS_NAME).items():
        for new, legacy in old.items():
            if f"attentions.0.{new}." in key:
                key = key.replace(f".{new}.", f".{legacy}.")
                value = value[..., None, None] if key.endswith("weight") and legacy != "proj_attn" else value
        state[key] = value
    assert "encoder.mid_block.attentions.0.query.weight" in state
    save_file(state, tmp_path / WEIGHTS_NAME)
    with torch.no_grad():
        assert torch.equal(load_diffusers(tmp_path)(images()), model(images()))


def test_an_older_config_takes_diffusers_defaults_for_keys_it_lacks() -> None:
    # The keys of Stable Diffusion 1.x's vae/config.json (sd-vae-ft-mse): no scaling or shift factor,
    # no quant-conv switches, written before those arguments existed.
    old = {"_class_name": "AutoencoderKL", "_diffusers_version": "0.4.2", "act_fn": "silu",
           "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
           "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32,
           "out_channels": 3, "sample_size": 256, "up_block_types": ["UpDecoderBlock2D"] * 4}
    config = config_from_json(old)
    assert config.downsampling_factor == 8 and config.scaling_factor == 0.18215 and config.shift_factor is None
    assert config.use_quant_conv and config.use_post_quant_conv and config.mid_block_add_attention


def test_half_precision_weights_load_into_float32(tmp_path: Path) -> None:
    model = tiny_model()
    save_diffusers(model, tmp_path)
    save_file({key: value.half() for key, value in load_file(tmp_path / WEIGHTS_NAME).items()}, tmp_path / WEIGHTS_NAME)
    loaded = load_diffusers(tmp_path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    assert torch.equal(loaded.encoder.conv_in.weight, model.encoder.conv_in.weight.half().float())


@pytest.mark.parametrize("change, key", [
    ({"down_block_types": ["DownEncoderBlock2D", "AttnDownEncoderBlock2D"]}, "down_block_types"),
    ({"up_block_types": ["UpDecoderBlock2D"]}, "up_block_types"),
    ({"act_fn": "gelu"}, "act_fn"),
    ({"norm_num_groups": 24}, "norm_num_groups"),
    ({"block_out_channels": []}, "block_out_channels"),
    ({"layers_per_block": 0}, "layers_per_block"),
    ({"shift_factor": "none"}, "shift_factor"),
    ({"use_quant_conv": 1}, "use_quant_conv"),
    ({"_class_name": "AutoencoderTiny"}, "_class_name"),
    ({"dropout": 0.1}, "dropout"),
])
def test_unsupported_config_is_one_line_naming_the_key(change: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key) as error:
        config_from_json({**config_to_json(TINY), **change})
    assert "\n" not in str(error.value)


def test_missing_pickled_or_mismatched_files_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=CONFIG_NAME):
        load_diffusers(tmp_path)
    save_diffusers(tiny_model(), tmp_path)
    (tmp_path / WEIGHTS_NAME).rename(tmp_path / "diffusion_pytorch_model.bin")
    with pytest.raises(DataError, match=r"diffusion_pytorch_model\.bin.*pickle.*expected diffusion_pytorch_model"):
        load_diffusers(tmp_path)
    (tmp_path / "diffusion_pytorch_model.bin").write_bytes(b"")
    (tmp_path / WEIGHTS_NAME).write_bytes(b"not safetensors")
    with pytest.raises(DataError, match="not a safetensors file"):
        load_diffusers(tmp_path)
    save_diffusers(tiny_model(replace(TINY, latent_channels=8)), tmp_path / "other")
    (tmp_path / "other" / WEIGHTS_NAME).replace(tmp_path / WEIGHTS_NAME)
    with pytest.raises(DataError, match=r"weight has shape \[64, 8, 3, 3\], expected \[64, 4, 3, 3\]"):
        load_diffusers(tmp_path)
    save_diffusers(tiny_model(replace(TINY, mid_block_add_attention=False)), tmp_path / "other")
    (tmp_path / "other" / WEIGHTS_NAME).replace(tmp_path / WEIGHTS_NAME)
    with pytest.raises(DataError, match="20 tensors missing"):
        load_diffusers(tmp_path)


# Stable Diffusion's layout; FLUX's (no quant convs, a shift factor, more latent channels); one
# without mid-block attention, on one-channel images.
DIFFUSERS_CONFIGS = [
    dict(block_out_channels=(32, 64), layers_per_block=1, latent_channels=4, norm_num_groups=8),
    dict(block_out_channels=(32, 32, 64), layers_per_block=2, latent_channels=16, norm_num_groups=32,
         use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.1159, scaling_factor=0.3611),
    dict(block_out_channels=(16, 32), layers_per_block=1, latent_channels=2, norm_num_groups=8,
         in_channels=1, out_channels=1, mid_block_add_attention=False),
]


@pytest.mark.parametrize("arguments", DIFFUSERS_CONFIGS)
def test_outputs_equal_diffusers_both_ways(tmp_path: Path, arguments: dict) -> None:
    diffusers = pytest.importorskip("diffusers")
    n_blocks = len(arguments["block_out_channels"])
    torch.manual_seed(0)
    theirs = diffusers.AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * n_blocks,
                                     up_block_types=("UpDecoderBlock2D",) * n_blocks, **arguments).eval()
    theirs.save_pretrained(tmp_path / "theirs")
    ours = load_diffusers(tmp_path / "theirs")
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = images(size=16, channels=arguments.get("in_channels", 3))
    with torch.no_grad():
        posterior, moments = theirs.encode(x).latent_dist, ours.encode(x)
        torch.testing.assert_close(moments.mean, posterior.mean, rtol=0, atol=1e-5)
        torch.testing.assert_close(moments.logvar, posterior.logvar, rtol=0, atol=1e-5)
        torch.testing.assert_close(ours.decode(posterior.mean), theirs.decode(posterior.mean).sample, rtol=0, atol=1e-5)

        save_diffusers(tiny_model(ours.config, seed=1), tmp_path / "ours")
        ours = load_diffusers(tmp_path / "ours")
        theirs = diffusers.AutoencoderKL.from_pretrained(tmp_path / "ours").eval()
        posterior, moments = theirs.encode(x).latent_dist, ours.encode(x)
        torch.testing.assert_close(moments.mean, posterior.mean, rtol=0, atol=1e-5)
        torch.testing.assert_close(moments.logvar, posterior.logvar, rtol=0, atol=1e-5)
        torch.testing.assert_close(ours.decode(moments.mean), theirs.decode(moments.mean).sample, rtol=0, atol=1e-5)
    assert theirs.config.shift_factor == ours.config.shift_factor
    assert theirs.config.scaling_factor == ours.config.scaling_factor
