"""diffusers AutoencoderKL folders opened as runs, and kl-f runs exported as diffusers folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vaekit
from vaekit.config import resolve_config
from vaekit.data.sources import RawData

TINY = ["model.conv_channels=[8, 16, 16]", "model.norm_groups=8", "model.patch_channels=8", "train.epochs=1",
        "train.batch_size=16", "train.progress=false", "train.device=cpu", "eval.enabled=false"]


def gradients(n: int = 32, side: int = 16, seed: int = 0) -> RawData:
    """RGB gradient images with a random offset each (uint8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side]
    x = np.stack([np.stack([(xx * 9 + o) % 256, (yy * 7 + o) % 256, (xx + yy) * 4 % 256])
                  for o in rng.integers(0, 255, n)]).astype(np.uint8)  # (n, 3, side, side)
    return RawData(x=x, y=None, kind="image", max_level=255.0)


def image_folder(path: Path, raw: RawData) -> Path:
    path.mkdir()
    for i, image in enumerate(raw.x):
        Image.fromarray(image.transpose(1, 2, 0)).save(path / f"{i:03d}.png")
    return path


@pytest.fixture(scope="module")
def klf4_run(tmp_path_factory: pytest.TempPathFactory) -> vaekit.Run:
    """A kl-f4 run on a folder of 16x16 RGB gradients (one epoch: these tests read its weights only)."""
    folder = image_folder(tmp_path_factory.mktemp("data") / "gradients", gradients())
    config = resolve_config(preset="kl-f4", overrides=[*TINY, f"data.source={folder}"])
    return vaekit.train(config, out=tmp_path_factory.mktemp("runs") / "klf4")


def test_an_exported_run_opens_as_a_run_with_the_same_outputs(klf4_run, tmp_path, run_cli_in_process) -> None:
    done = run_cli_in_process("export", klf4_run.path, "--diffusers", "--scaling-factor", "0.5",
                              "--out", tmp_path / "vae")
    assert done.returncode == 0, done.stderr
    tree = json.loads((tmp_path / "vae" / "config.json").read_text())
    assert tree["_class_name"] == "AutoencoderKL" and tree["scaling_factor"] == 0.5
    assert tree["block_out_channels"] == [8, 16, 16] and tree["in_channels"] == 3 and tree["sample_size"] == 16
    opened = vaekit.load(tmp_path / "vae")
    assert opened.config.preset == "kl-f4" and opened.model.latent_shape == (3, 4, 4)  # f = 4: three stages
    assert opened.model.latent_scaling == {"scaling_factor": 0.5, "shift_factor": None}
    x = klf4_run.to_model_space(gradients(4, seed=1).x)
    torch.testing.assert_close(opened.model.encode(x).mean, klf4_run.model.encode(x).mean, rtol=0, atol=0)
    z = torch.randn(4, 48)
    torch.testing.assert_close(opened.decode(z), klf4_run.decode(z), rtol=0, atol=0)


def test_the_default_scaling_factor_is_one_over_the_latents_std(klf4_run, tmp_path, run_cli_in_process) -> None:
    done = run_cli_in_process("export", klf4_run.path, "--diffusers", "--out", tmp_path / "vae")
    assert done.returncode == 0, done.stderr
    factor = json.loads((tmp_path / "vae" / "config.json").read_text())["scaling_factor"]
    x = klf4_run.to_model_space(klf4_run.inputs(split="train").x)
    with torch.no_grad():
        qz = klf4_run.model.encode(x)
    assert factor == pytest.approx(1 / torch.sqrt(qz.mean.var() + qz.variance.mean()).item(), rel=0.05)


def test_commands_work_on_a_diffusers_folder(klf4_run, tmp_path, run_cli_in_process) -> None:
    assert run_cli_in_process("export", klf4_run.path, "--diffusers", "--out", tmp_path / "vae").returncode == 0
    images = image_folder(tmp_path / "images", gradients(6, seed=2))
    for args in (("reconstruct", "--data", images, "--n", "4", "--out", tmp_path / "rec.png"),
                 ("interpolate", "--data", images, "--a", "0", "--b", "1", "--out", tmp_path / "int.png"),
                 ("encode", "--data", images, "--out", tmp_path / "latents"),
                 ("evaluate", "--data", images, "--k", "5")):
        done = run_cli_in_process(args[0], tmp_path / "vae", *args[1:])
        assert done.returncode == 0, (args[0], done.stderr)
    assert not (tmp_path / "vae" / "metrics.json").exists()  # a model folder is left as it came
    done = run_cli_in_process("evaluate", tmp_path / "vae", "--data", images, "--k", "5")
    metrics = json.loads(done.stdout)
    assert np.isfinite(metrics["psnr"]) and 0 < metrics["ssim"] <= 1
    assert "is a diffusers model folder: the metrics above are not written into it" in done.stderr
    manifest = json.loads((tmp_path / "latents" / "manifest.json").read_text())
    assert manifest["latent_shape"] == [3, 4, 4] and manifest["latent_scaling"]["scaling_factor"] > 0
    done = run_cli_in_process("interpolate", tmp_path / "vae", "--a", "0", "--b", "1", "--out", tmp_path / "x.png")
    assert done.returncode == 2 and "has no data of its own; pass the images with --data" in done.stderr


def test_export_refusals_are_one_line(pristine_run, tmp_path, run_cli_in_process) -> None:
    done = run_cli_in_process("export", pristine_run, "--diffusers", "--out", tmp_path / "vae")
    assert done.returncode == 2 and "writes latent-diffusion autoencoders" in done.stderr
    assert not (tmp_path / "vae").exists()
    done = run_cli_in_process("export", pristine_run, "--diffusers", "--onnx", "--out", tmp_path / "vae")
    assert done.returncode == 2 and "choose one format" in done.stderr


def test_diffusers_itself_agrees_both_ways(klf4_run, tmp_path) -> None:
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    theirs = diffusers.AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 3,
                                     up_block_types=["UpDecoderBlock2D"] * 3, block_out_channels=[32, 32, 64],
                                     layers_per_block=1, latent_channels=4, norm_num_groups=16, sample_size=32,
                                     scaling_factor=0.3, shift_factor=0.1).eval()
    theirs.save_pretrained(tmp_path / "theirs", safe_serialization=True)
    run = vaekit.load(tmp_path / "theirs")
    assert run.model.latent_scaling == {"scaling_factor": 0.3, "shift_factor": 0.1}
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        posterior = theirs.encode(2 * x - 1).latent_dist
        qz = run.model.encode(x)
        torch.testing.assert_close(qz.mean, posterior.mean.flatten(1), rtol=0, atol=1e-5)
        torch.testing.assert_close(qz.logvar, posterior.logvar.flatten(1), rtol=0, atol=1e-5)
        z = torch.randn(2, 4, 8, 8)
        torch.testing.assert_close(run.model.decode(z.flatten(1)).mean, (theirs.decode(z).sample + 1) / 2, rtol=0,
                                   atol=1e-5)

    from vaekit.ldm_runs import save_diffusers_run

    save_diffusers_run(klf4_run.model, klf4_run.spec, klf4_run.config, tmp_path / "ours", 0.7)
    back = diffusers.AutoencoderKL.from_pretrained(tmp_path / "ours").eval()
    assert back.config.scaling_factor == 0.7
    x = klf4_run.to_model_space(gradients(3, seed=3).x)
    with torch.no_grad():
        torch.testing.assert_close(back.encode(2 * x - 1).latent_dist.mean.flatten(1),
                                   klf4_run.model.encode(x).mean, rtol=0, atol=1e-5)
        z = torch.randn(3, 3, 4, 4)
        torch.testing.assert_close((back.decode(z).sample + 1) / 2, klf4_run.model.decode(z.flatten(1)).mean, rtol=0,
                                   atol=1e-5)
