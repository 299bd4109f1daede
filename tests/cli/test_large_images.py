"""Issue 21, large images: a kl-f run encodes images larger than its own (``vaekit encode --size``),
through tiles where asked (``--tile``), and ``vaekit decode --latents FOLDER`` turns the latents back
into one PNG per file; what cannot work is one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_diffusers_runs import TINY, gradients, image_folder

import vaekit
from vaekit.applications.latents import read_latents
from vaekit.config import resolve_config
from vaekit.ldm_runs import AnySize


def refused(result, *words: str) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("vaekit: error: "), result.stderr
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


@pytest.fixture(scope="module")
def klf4(tmp_path_factory: pytest.TempPathFactory) -> vaekit.Run:
    """A kl-f4 run on 16x16 RGB gradients (a few epochs: its reconstructions follow the gradients)."""
    folder = image_folder(tmp_path_factory.mktemp("data") / "gradients", gradients(48))
    config = resolve_config(preset="kl-f4", overrides=[*TINY, f"data.source={folder}", "train.epochs=4",
                                                       "model.perceptual=none", "model.disc_start=10"])
    return vaekit.train(config, out=tmp_path_factory.mktemp("runs") / "klf4")


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 48x40 (WxH) RGB gradients: larger than the run's 16x16."""
    folder = tmp_path_factory.mktemp("big") / "photos"
    folder.mkdir()
    yy, xx = np.mgrid[0:40, 0:48]
    for k in range(3):
        image = np.stack([xx * 5 + 10 * k, yy * 6, (xx + yy) * 2 + 20 * k], -1).clip(0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"p{k}.png")
    return folder


def model_space(folder: Path) -> torch.Tensor:
    files = sorted(folder.glob("*.png"))
    return torch.as_tensor(np.stack([np.asarray(Image.open(f)).transpose(2, 0, 1) for f in files])).float() / 255


def test_the_autoencoder_at_any_size_is_the_run_at_its_own(klf4: vaekit.Run) -> None:
    x = klf4.to_model_space(gradients(4, seed=3).x)
    large = AnySize(klf4.model, klf4.spec, klf4.config)
    with torch.no_grad():
        qz = klf4.model.encode(x)
        moments = large.encode(x)
        torch.testing.assert_close(moments.mean.flatten(1), qz.mean, rtol=0, atol=1e-6)
        torch.testing.assert_close(large.decode(moments.mean), klf4.model.decode(qz.mean).mean, rtol=0, atol=1e-6)


def test_encode_and_decode_images_larger_than_the_run(klf4, big, tmp_path, run_cli_in_process) -> None:
    latents, images = tmp_path / "latents", tmp_path / "images"
    done = run_cli_in_process("encode", klf4.path, "--data", big, "--out", latents, "--size", "48x40")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((latents / "manifest.json").read_text())
    assert manifest["latent_shape"] == [3, 10, 12] and manifest["image_shape"] == [3, 40, 48]
    assert manifest["size"] == [40, 48] and manifest["tile"] is None
    expected = AnySize(klf4.model, klf4.spec, klf4.config).encode(model_space(big)).mean
    torch.testing.assert_close(read_latents(latents)["mean"], expected, rtol=0, atol=1e-5)

    done = run_cli_in_process("decode", klf4.path, "--latents", latents, "--out", images)
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in images.iterdir())
    assert written == ["p0.png", "p1.png", "p2.png"]
    decoded = model_space(images)
    assert decoded.shape == (3, 3, 40, 48)
    with torch.no_grad():  # the PNGs are the decoder's images at that size, to 8 bits
        images_of = AnySize(klf4.model, klf4.spec, klf4.config).decode(read_latents(latents)["mean"]).clamp(0, 1)
    assert (decoded - images_of).abs().max() <= 0.5 / 255 + 1e-6


def test_encode_and_decode_through_tiles(klf4, big, tmp_path, run_cli_in_process) -> None:
    whole, tiled = tmp_path / "whole", tmp_path / "tiled"
    for out, extra in ((whole, []), (tiled, ["--tile", "16", "--overlap", "8"])):
        done = run_cli_in_process("encode", klf4.path, "--data", big, "--out", out, "--size", "48x40", *extra)
        assert done.returncode == 0, done.stderr
    manifest = json.loads((tiled / "manifest.json").read_text())
    assert (manifest["tile"], manifest["overlap"]) == (16, 8)
    a, b = read_latents(whole)["mean"], read_latents(tiled)["mean"]
    assert a.shape == b.shape and torch.isfinite(b).all()
    assert not torch.equal(a, b)  # tiles see their own statistics (ldm_tiling's text and figures)
    tiles = AnySize(klf4.model, klf4.spec, klf4.config, tile=16, overlap=8)
    torch.testing.assert_close(b, tiles.encode(model_space(big)).mean, rtol=0, atol=1e-5)
    out, untiled = tmp_path / "images", tmp_path / "untiled"
    done = run_cli_in_process("decode", klf4.path, "--latents", tiled, "--out", out, "--tile", "16")
    assert done.returncode == 0, done.stderr
    assert run_cli_in_process("decode", klf4.path, "--latents", tiled, "--out", untiled).returncode == 0
    # the tiled decode is exact: the same PNGs as the whole decode, up to one 8-bit level where rounding tips
    assert (model_space(out) - model_space(untiled)).abs().max() <= 1 / 255 + 1e-6
    again = run_cli_in_process("decode", klf4.path, "--latents", tiled, "--out", out, "--tile", "16")
    assert again.returncode == 0 and "0 now, 3 already there" in again.stderr  # resumable: kept files stay


def test_what_cannot_work_is_one_line(klf4, big, tmp_path, run_cli_in_process) -> None:
    conv = tmp_path / "conv"
    assert run_cli_in_process("train", "--data", "digits", "--epochs", "1", "--quiet", "--set", "model.hidden=[8]",
                              "--set", "model.latent_dim=2", "--set", "eval.enabled=false",
                              "--out", conv).returncode == 0
    refused(run_cli_in_process("encode", conv, "--data", big, "--out", tmp_path / "a", "--size", "48x40"),
            "model.network=ldm", "8x8 images only")
    refused(run_cli_in_process("encode", klf4.path, "--data", big, "--out", tmp_path / "b", "--size", "50x40"),
            "--size 50x40", "f=4")
    refused(run_cli_in_process("encode", klf4.path, "--data", big, "--out", tmp_path / "c", "--size", "big"),
            "--size", "WxH")
    refused(run_cli_in_process("encode", klf4.path, "--data", big, "--out", tmp_path / "d", "--size", "48x40",
                               "--tile", "10"), "--tile 10", "multiple")
    refused(run_cli_in_process("encode", klf4.path, "--out", tmp_path / "z.npy", "--tile", "16"), "--out FOLDER")
    refused(run_cli_in_process("decode", klf4.path, "--latents", big, "--out", tmp_path / "e"), "manifest.json")
    for name in "abcde":
        assert not (tmp_path / name).exists()
