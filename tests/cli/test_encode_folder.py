"""Issue 21: ``vaekit encode RUN --data FOLDER --out latents/`` streams an image folder into sharded
safetensors latents and a manifest, resumes an interrupted run to the same bytes, and refuses bad
input in one line before writing anything."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_support import TINY
from PIL import Image
from safetensors.torch import load_file

import vaekit
from vaekit.applications import latents
from vaekit.applications.latents import MANIFEST, encode_folder, read_latents
from vaekit.data.sources.image_folder import load_image_folder
from vaekit.errors import DataError
from vaekit.sections import DataConfig

N = 60  # images: shards of 16 -> 16, 16, 16, 12


@pytest.fixture(scope="module")
def pngs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 scikit-learn digits as 8x8 grey PNGs (0..240), one subfolder per class."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    root = tmp_path_factory.mktemp("pngs") / "digits"
    for i in range(N):
        folder = root / f"class{bunch.target[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((bunch.images[i] * 15).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def png_run(tmp_path_factory: pytest.TempPathFactory, invoke, pngs: Path) -> Path:
    """A 1-epoch VAE trained on the PNG folder. Read it; never write into it."""
    out = tmp_path_factory.mktemp("pngrun") / "run"
    invoke(["train", "--data", pngs, "--epochs", "1", *TINY, "--out", out])
    return out


def refused(result, *words: str) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("vaekit: error: "), result.stderr
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


def test_shards_hold_what_encode_all_gives(run_cli_in_process, png_run: Path, pngs: Path, tmp_path: Path) -> None:
    out = tmp_path / "latents"
    result = run_cli_in_process("encode", png_run, "--data", pngs, "--out", out, "--shard-size", "16",
                                "--batch-size", "8")
    assert result.returncode == 0, result.stderr
    assert f"{N} items in 4 shards" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST] + [f"shard-0000{k}.safetensors" for k in range(4)]
    run = vaekit.load(png_run)
    raw = load_image_folder(pngs, DataConfig(source=str(pngs))).train
    mean, logvar = run.encode_all(raw.x, batch_size=8)
    got = read_latents(out)
    assert set(got) == {"mean", "logvar", "index", "label"}
    assert got["mean"].dtype == torch.float32 and got["mean"].shape == (N, *run.model.latent_shape)
    assert torch.equal(got["mean"], mean) and torch.equal(got["logvar"], logvar)
    assert torch.equal(got["index"], torch.arange(N)) and torch.equal(got["label"], torch.as_tensor(raw.y))
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["complete"] is True and manifest["items"] == N
    assert [s["count"] for s in manifest["shards"]] == [16, 16, 16, 12]
    assert manifest["files"][0] == "class0/000.png" and len(manifest["files"]) == N
    assert manifest["sizes"] == [[8, 8]] * N and manifest["labels"] == raw.y.tolist()
    assert manifest["class_names"] == raw.class_names
    assert manifest["latent_shape"] == [4] and manifest["latent_scaling"] == {} and manifest["image_shape"] == [1, 8, 8]


def test_an_interrupted_encoding_resumes_to_the_same_bytes(png_run: Path, pngs: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    run = vaekit.load(png_run)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    encode_folder(run, pngs, whole, shard_size=16, batch_size=8, sample=True, seed=3)
    save, writes = latents.atomic_save_tensors, []

    def interrupted(path, tensors, metadata=None):
        if len(writes) == 2:
            raise KeyboardInterrupt
        writes.append(path)
        return save(path, tensors, metadata)

    monkeypatch.setattr(latents, "atomic_save_tensors", interrupted)
    with pytest.raises(KeyboardInterrupt):
        encode_folder(run, pngs, cut, shard_size=16, batch_size=8, sample=True, seed=3)
    assert json.loads((cut / MANIFEST).read_text())["complete"] is False
    assert not (cut / "shard-00002.safetensors").exists()
    writes.clear()
    monkeypatch.setattr(latents, "atomic_save_tensors",
                        lambda path, *a, **k: (writes.append(path), save(path, *a, **k)))
    summary = encode_folder(run, pngs, cut, shard_size=16, batch_size=8, sample=True, seed=3)
    assert (summary.written, summary.skipped) == (2, 2)
    assert [p.name for p in writes] == ["shard-00002.safetensors", "shard-00003.safetensors"]
    for name in sorted(p.name for p in whole.iterdir()):
        assert (whole / name).read_bytes() == (cut / name).read_bytes(), name
    shard = load_file(whole / "shard-00000.safetensors")
    assert not torch.equal(shard["sample"], shard["mean"])  # a draw, seeded
    assert encode_folder(run, pngs, cut, shard_size=16, sample=True, seed=3).written == 0  # complete: nothing to do


def test_a_folder_of_another_encoding_is_refused(run_cli_in_process, png_run: Path, pngs: Path,
                                                  tmp_path: Path) -> None:
    out = tmp_path / "latents"
    assert run_cli_in_process("encode", png_run, "--data", pngs, "--out", out, "--shard-size", "16").returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    refused(run_cli_in_process("encode", png_run, "--data", pngs, "--out", out, "--shard-size", "8"),
            str(out), "shard_size")
    fewer = Path(shutil.copytree(pngs, tmp_path / "fewer"))
    next(fewer.glob("class0/*.png")).unlink()
    refused(run_cli_in_process("encode", png_run, "--data", fewer, "--out", out, "--shard-size", "16"), "files")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_bad_inputs_are_one_line_and_write_nothing(run_cli_in_process, png_run: Path, pngs: Path,
                                                    tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    refused(run_cli_in_process("encode", png_run, "--data", pngs, "--out", busy), str(busy), "not empty")
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]
    corrupt = Path(shutil.copytree(pngs, tmp_path / "corrupt"))
    (corrupt / "class3" / "bad.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    refused(run_cli_in_process("encode", png_run, "--data", corrupt, "--out", out), "bad.png")
    assert not out.exists()
    big = Path(shutil.copytree(pngs, tmp_path / "big"))
    Image.new("L", (16, 12)).save(big / "class1" / "wide.png")
    refused(run_cli_in_process("encode", png_run, "--data", big, "--out", out), "wide.png", "16x12", "8x8",
            "--resize")
    assert not out.exists()
    resized = run_cli_in_process("encode", png_run, "--data", big, "--out", out, "--resize")
    assert resized.returncode == 0, resized.stderr
    assert json.loads((out / MANIFEST).read_text())["sizes"].count([16, 12]) == 1
    colour = Path(shutil.copytree(pngs, tmp_path / "colour"))
    Image.new("RGB", (8, 8)).save(colour / "class1" / "rgb.png")
    refused(run_cli_in_process("encode", png_run, "--data", colour, "--out", tmp_path / "out2"), "rgb.png", "grey")
    refused(run_cli_in_process("encode", png_run, "--data", "digits", "--out", tmp_path / "out3"), "--data FOLDER")
    refused(run_cli_in_process("encode", png_run, "--data", pngs, "--out", tmp_path / "z.npy", "--shard-size", "4"),
            "--out FOLDER")
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3").exists()


def test_the_library_call_refuses_a_file_and_pixels_outside_the_runs_range(pristine_run: Path, png_run: Path,
                                                                            pngs: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="a folder of images"):
        encode_folder(vaekit.load(png_run), pngs / "class0" / "000.png", tmp_path / "a")
    with pytest.raises(DataError, match="trained on 0..16"):  # the digits run: PNG pixels 0..240 are far outside
        encode_folder(vaekit.load(pristine_run), pngs, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_spatial_code_is_stored_in_its_latent_shape_with_its_scaling(png_run: Path, pngs: Path,
                                                                       tmp_path: Path) -> None:
    run = vaekit.load(png_run)
    flat = encode_folder(run, pngs, tmp_path / "flat", shard_size=32).out
    run.model.latent_shape, run.model.latent_scaling = (1, 2, 2), {"scaling_factor": 0.5, "shift_factor": 0.25}
    spatial = encode_folder(run, pngs, tmp_path / "spatial", shard_size=32).out
    got, before = read_latents(spatial), read_latents(flat)
    assert got["mean"].shape == (N, 1, 2, 2) and got["logvar"].shape == (N, 1, 2, 2)
    assert torch.equal(got["mean"].reshape(N, 4), before["mean"])
    manifest = json.loads((spatial / MANIFEST).read_text())
    assert manifest["latent_shape"] == [1, 2, 2]
    assert manifest["latent_scaling"] == {"scaling_factor": 0.5, "shift_factor": 0.25}


def test_a_conditional_run_gets_each_class_folder_by_name(invoke, pngs: Path, tmp_path: Path) -> None:
    invoke(["train", "--data", pngs, "--preset", "cvae", "--epochs", "1", *TINY, "--out", tmp_path / "cvae"])
    run = vaekit.load(tmp_path / "cvae")
    some = tmp_path / "some"
    for name in ("class3", "class7"):  # two of the ten classes: folder labels 0, 1 are the run's 3, 7
        shutil.copytree(pngs / name, some / name)
    encode_folder(run, some, tmp_path / "z", shard_size=8)
    raw = load_image_folder(some, DataConfig(source=str(some))).train
    condition = torch.as_tensor(np.array([3, 7])[raw.y])
    mean, _ = run.encode_all(raw.x, condition=condition, batch_size=8)
    got = read_latents(tmp_path / "z")
    assert torch.equal(got["mean"], mean) and torch.equal(got["label"], torch.as_tensor(raw.y))
    assert not torch.equal(mean, run.encode_all(raw.x, condition=torch.as_tensor(raw.y), batch_size=8)[0])
    shutil.copytree(pngs / "class1", some / "cats")
    with pytest.raises(DataError, match="'cats' is not one of the run's classes"):
        encode_folder(run, some, tmp_path / "z2")


def test_a_run_trained_on_crops_encodes_centre_crops(invoke, pngs: Path, tmp_path: Path) -> None:
    """As training read them: images of the run's data.image_size (resized), then centre-cropped."""
    out = tmp_path / "run"
    invoke(["train", "--data", pngs, "--epochs", "1", *TINY, "--set", "data.image_size=[12,12]",
            "--set", "data.crop=[6,6]", "--out", out])
    run = vaekit.load(out)
    assert run.spec.shape == [1, 6, 6]
    encode_folder(run, pngs, tmp_path / "latents")
    raw = run.inputs(str(pngs), split="train")  # the same reading: resized to 12x12, centre 6x6
    mean, _ = run.encode_all(raw.x)
    torch.testing.assert_close(read_latents(tmp_path / "latents")["mean"], mean, rtol=0, atol=1e-6)
