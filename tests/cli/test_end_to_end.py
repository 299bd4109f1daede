"""The promised workflow on digits, command by command: train a run folder, then sample,
reconstruct, encode, decode, evaluate, inspect and export it; and the same through the Python API.

Commands run in-process through typer's CliRunner (exit codes and outputs); ``python -m vaekit``
runs once as a real subprocess.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_support import SUBPROCESS_TIMEOUT, TINY, cli_env, read_history, vaekit_command
from PIL import Image
from sklearn.datasets import load_digits

import vaekit
from vaekit.cli import app
from vaekit.errors import RunFolderError

COMMANDS = ["train", "sample", "synthesize", "reconstruct", "encode", "decode", "evaluate", "info", "datasets",
            "presets", "export"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def digits_images() -> np.ndarray:
    """All 1,797 digits as raw (N, 1, 8, 8) values 0..16, in scikit-learn's order."""
    return load_digits().images.astype(np.uint8)[:, None]


def open_png(path: Path) -> Image.Image:
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_MAGIC, f"{path} is not a PNG"
    return Image.open(path)


# ------------------------------------------------------------------------------------ train


def test_train_writes_the_run_folder(pristine_run: Path) -> None:
    assert sorted(p.name for p in pristine_run.iterdir()) == sorted(
        ["config.json", "data_spec.json", "model.safetensors", "checkpoint", "history.csv", "metrics.json", "figures"]
    )
    assert [p.name for p in (pristine_run / "checkpoint").iterdir()] == ["last.safetensors"]
    assert (pristine_run / "figures").is_dir()
    # Every file is written under a temporary name and renamed: none may be left over.
    leftovers = [p for p in pristine_run.rglob("*") if p.name.startswith(".") or p.suffix in (".tmp", ".part")]
    assert leftovers == []

    config = json.loads((pristine_run / "config.json").read_text())
    assert config["train"]["epochs"] == 2
    assert config["model"]["latent_dim"] == 4 and config["model"]["hidden"] == [32]
    assert config["data"]["source"] == "digits"
    assert {"vaekit", "torch"} <= set(config["versions"])
    spec = json.loads((pristine_run / "data_spec.json").read_text())
    assert spec["kind"] == "image" and spec["shape"] == [1, 8, 8]


def test_history_has_one_row_per_epoch(pristine_run: Path) -> None:
    rows = read_history(pristine_run / "history.csv")
    assert [int(float(row["epoch"])) for row in rows] == [1, 2]
    for column in ("loss", "recon", "kl", "samples_per_s", "val_loss"):
        assert column in rows[0], f"history.csv has no column {column!r}"
        values = [float(row[column]) for row in rows]
        assert all(math.isfinite(v) for v in values), (column, values)
    assert all(float(row["samples_per_s"]) > 0 for row in rows)
    # -ELBO = reconstruction + KL, per sample, on the same batches.
    for row in rows:
        assert float(row["loss"]) == pytest.approx(float(row["recon"]) + float(row["kl"]), rel=1e-5)


def test_metrics_hold_the_held_out_bounds(pristine_run: Path) -> None:
    test = json.loads((pristine_run / "metrics.json").read_text())["test"]
    for key in ("neg_elbo", "elbo", "nll", "recon", "kl", "bits_per_dim", "k"):
        assert key in test, f"metrics.json['test'] has no {key!r}"
    assert test["k"] == 10 and test["latent_dim"] == 4
    assert test["elbo"] == pytest.approx(-test["neg_elbo"])
    assert math.isfinite(test["nll"]) and test["nll"] > 0
    # The importance-weighted bound is at least as tight as the ELBO (Burda et al. 2016).
    assert test["nll"] <= test["neg_elbo"] + 1e-3
    assert len(test["kl_per_dim"]) == 4


# ------------------------------------------------------------------------------------ sample / decode


def test_sample_png_is_a_grid(pristine_run: Path, tmp_path: Path, invoke) -> None:
    out = tmp_path / "x.png"
    invoke(["sample", pristine_run, "--n", "16", "--seed", "0", "--out", out])
    picture = open_png(out)
    assert picture.mode == "L"  # one channel, like the data
    width, height = picture.size
    assert width == height, "16 samples make a 4 x 4 grid"
    assert 4 * 8 <= width <= 4096  # four 8-pixel images per row at least, upscaled at most modestly


def test_sample_npy_is_seeded(pristine_run: Path, tmp_path: Path, invoke) -> None:
    first, second, other = tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "c.npy"
    invoke(["sample", pristine_run, "--n", "16", "--seed", "3", "--out", first])
    invoke(["sample", pristine_run, "--n", "16", "--seed", "3", "--out", second])
    invoke(["sample", pristine_run, "--n", "16", "--seed", "4", "--out", other])
    samples = np.load(first, allow_pickle=False)
    assert samples.shape == (16, 1, 8, 8)
    assert np.isfinite(samples).all()
    assert samples.min() >= 0.0 and samples.max() <= 16.0  # the data's own units (digits: 0..16)
    np.testing.assert_array_equal(samples, np.load(second))
    assert not np.array_equal(samples, np.load(other))


def test_sample_defaults_to_the_figures_folder(run_copy: Path, invoke) -> None:
    invoke(["sample", run_copy, "--n", "4"])
    open_png(run_copy / "figures" / "samples.png")


def test_decode_latents_written_by_encode(pristine_run: Path, tmp_path: Path, invoke) -> None:
    codes, decoded = tmp_path / "z.npy", tmp_path / "d.npy"
    invoke(["encode", pristine_run, "--data", "digits", "--out", codes])
    invoke(["decode", pristine_run, "--latents", codes, "--out", decoded])
    z = np.load(codes)
    x = np.load(decoded)
    assert x.shape == (len(z), 1, 8, 8)
    run = vaekit.load(pristine_run)
    expected = run.decode(torch.from_numpy(z[:, 0])).numpy()
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)
    invoke(["decode", pristine_run, "--latents", codes, "--out", tmp_path / "d.png"])
    open_png(tmp_path / "d.png")


def test_decode_accepts_plain_latent_vectors(pristine_run: Path, tmp_path: Path, invoke) -> None:
    z = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    invoke(["decode", pristine_run, "--latents", tmp_path / "z.npy", "--out", tmp_path / "d.npy"])
    assert np.load(tmp_path / "d.npy").shape == (5, 1, 8, 8)


# ------------------------------------------------------------------------------------ reconstruct / encode


def test_reconstruct(run_copy: Path, tmp_path: Path, invoke) -> None:
    invoke(["reconstruct", run_copy, "--n", "16", "--out", tmp_path / "r.png"])
    picture = open_png(tmp_path / "r.png")
    assert picture.size[0] > picture.size[1], "one row of originals above one row of reconstructions"
    invoke(["reconstruct", run_copy, "--n", "16", "--out", tmp_path / "r.npy"])
    recon = np.load(tmp_path / "r.npy")
    assert recon.shape == (16, 1, 8, 8) and np.isfinite(recon).all()
    invoke(["reconstruct", run_copy, "--n", "4"])
    open_png(run_copy / "figures" / "reconstructions.png")


def test_encode_npy_holds_means_and_log_variances(pristine_run: Path, tmp_path: Path, invoke) -> None:
    out = tmp_path / "z.npy"
    result = invoke(["encode", pristine_run, "--out", out])
    codes = np.load(out, allow_pickle=False)
    assert codes.shape == (1797, 2, 4), "all of the run's data (train + val + test), mean and logvar"
    assert np.isfinite(codes).all()
    assert result.exit_code == 0


def test_encode_matches_the_python_api(pristine_run: Path, tmp_path: Path, invoke) -> None:
    out = tmp_path / "z.npy"
    invoke(["encode", pristine_run, "--data", "digits", "--out", out])
    codes = np.load(out)
    x = digits_images()
    assert codes.shape == (len(x), 2, 4)
    posterior = vaekit.load(pristine_run).encode(x[:50])
    np.testing.assert_allclose(codes[:50, 0], posterior.mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(codes[:50, 1], posterior.logvar.numpy(), rtol=1e-5, atol=1e-6)


def _read_codes_csv(path: Path) -> tuple[list[str], np.ndarray]:
    header = path.read_text().splitlines()[0].split(",")
    return header, np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


@pytest.mark.parametrize("data", [None, "digits"], ids=["run-data", "named-source"])
def test_encode_csv_has_named_columns_and_labels(pristine_run: Path, tmp_path: Path, invoke, data) -> None:
    out = tmp_path / "z.csv"
    invoke(["encode", pristine_run, *(["--data", data] if data else []), "--out", out])
    header, table = _read_codes_csv(out)
    assert header == [f"mean_{i}" for i in range(4)] + [f"logvar_{i}" for i in range(4)] + ["label"]
    assert table.shape == (1797, 9)
    labels = table[:, -1]
    assert set(np.unique(labels)) == set(range(10))
    assert sorted(np.bincount(labels.astype(int))) == sorted(np.bincount(load_digits().target))


# ------------------------------------------------------------------------------------ evaluate / info / lists


def test_evaluate_adds_an_entry_to_metrics(run_copy: Path, invoke) -> None:
    before = json.loads((run_copy / "metrics.json").read_text())
    result = invoke(["evaluate", run_copy, "--k", "20"])
    metrics = json.loads((run_copy / "metrics.json").read_text())
    assert metrics["test"] == before["test"], "the training-time evaluation is kept"
    entry = metrics["evaluate"]
    assert entry["k"] == 20 and entry["n_samples"] == before["test"]["n_samples"]
    assert math.isfinite(entry["nll"]) and math.isfinite(entry["neg_elbo"])
    assert entry["nll"] <= entry["neg_elbo"] + 1e-3  # IWAE bound (k=20) >= ELBO on average
    printed = json.loads(result.stdout)
    assert printed["nll"] == pytest.approx(entry["nll"])
    # Reconstruction quality is deterministic: the same at the end of training; 8x8 digits have no SSIM.
    assert entry["psnr"] == pytest.approx(before["test"]["psnr"]) and 5 < entry["psnr"] < 60
    assert set(entry["not_computed"]) == {"ssim", "rfid"} and "ssim" not in entry and "rfid" not in entry


def test_info_summarises_the_run(run_copy: Path, invoke) -> None:
    invoke(["evaluate", run_copy, "--k", "5"])
    text = invoke(["info", run_copy]).stdout
    assert re.search(r"^preset\s+vae$", text, re.M), text
    assert "latent_dim 4" in text
    assert re.search(r"^trained\s+2 epochs", text, re.M), text
    assert re.search(r"^metrics\s+evaluate\s+test$", text, re.M), text  # a column per evaluation
    assert re.search(r"^  nll\s+\S+\s+\S+$", text, re.M), text


def test_datasets_lists_digits_as_offline(invoke) -> None:
    text = invoke(["datasets"]).stdout
    assert re.search(r"^digits\s+offline\b", text, re.M), text
    for name in ("mnist", "fashion-mnist", "cifar10"):
        assert re.search(rf"^{name}\s", text, re.M), f"{name} missing from:\n{text}"
    assert ".npz" in text and ".csv" in text


def test_presets_lists_the_variants(invoke) -> None:
    text = invoke(["presets"]).stdout
    for name in ("vae", "beta-vae", "ae", "iwae"):
        assert re.search(rf"^{re.escape(name)}\s", text, re.M), f"{name} missing from:\n{text}"


# ------------------------------------------------------------------------------------ export


def test_export_onnx_matches_torch(run_copy: Path, invoke) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    invoke(["export", run_copy, "--onnx"])
    folder = run_copy / "export"
    assert {"encoder.onnx", "decoder.onnx", "data_spec.json"} <= {p.name for p in folder.iterdir()}
    run = vaekit.load(run_copy)

    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))  # a batch size other than export's
    decoder = onnxruntime.InferenceSession(str(folder / "decoder.onnx"), providers=["CPUExecutionProvider"])
    (x_mean,) = decoder.run(None, {"z": z.numpy()})
    with torch.no_grad():
        expected = run.model.decode(z).mean.numpy()
    np.testing.assert_allclose(x_mean, expected, atol=1e-5, rtol=0)

    x = torch.from_numpy(digits_images()[:7].astype(np.float32) / 16.0)  # model space: [0, 1]
    encoder = onnxruntime.InferenceSession(str(folder / "encoder.onnx"), providers=["CPUExecutionProvider"])
    mean, logvar = encoder.run(None, {"x": x.numpy()})
    with torch.no_grad():
        posterior = run.model.encode(x)
    np.testing.assert_allclose(mean, posterior.mean.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(logvar, posterior.logvar.numpy(), atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------ help


def test_every_documented_command_is_registered() -> None:
    names = {command.name for command in app.registered_commands}
    assert set(COMMANDS) <= names


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_an_example(command: str, invoke) -> None:
    text = invoke([command, "--help"]).stdout
    assert "Example:" in text
    assert f"vaekit {command}" in text


def test_top_level_help(invoke) -> None:
    text = invoke(["--help"]).stdout
    for command in COMMANDS:
        assert command in text


def test_python_dash_m_vaekit_help(data_store: Path, tmp_path: Path) -> None:
    import subprocess

    result = subprocess.run(vaekit_command("--help"), cwd=tmp_path, env=cli_env(data_store), capture_output=True,
                            text=True, timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert "train" in result.stdout and "sample" in result.stdout
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------------ Python API


def tiny_config(epochs: int = 2) -> vaekit.RunConfig:
    overrides = [TINY[i + 1] for i, word in enumerate(TINY) if word == "--set"]
    return vaekit.resolve_config(preset="vae", overrides=overrides,
                                 flags={"data.source": "digits", "train.epochs": epochs, "train.progress": False})


def test_api_train_then_load(tmp_path: Path) -> None:
    out = tmp_path / "api-run"
    trained = vaekit.train(tiny_config(), out)
    assert trained.path == out and len(trained.history) == 2
    assert (out / "model.safetensors").is_file() and (out / "metrics.json").is_file()

    loaded = vaekit.load(out)
    assert loaded.config.model.latent_dim == 4 and loaded.spec.shape == [1, 8, 8]
    assert [int(row["epoch"]) for row in loaded.history] == [1, 2]
    for name, value in trained.model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[name], value.cpu(), rtol=0, atol=0)

    x = digits_images()[:10]
    torch.testing.assert_close(loaded.encode(x).mean, trained.encode(x).mean)
    torch.testing.assert_close(loaded.reconstruct(x), trained.reconstruct(x))

    with pytest.raises(RunFolderError, match="already exists"):
        vaekit.train(tiny_config(), out)


def test_api_sample_encode_reconstruct(pristine_run: Path) -> None:
    run = vaekit.load(pristine_run)
    first, second = run.sample(8, seed=0), run.sample(8, seed=0)
    assert first.shape == (8, 1, 8, 8)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    assert not torch.equal(first, run.sample(8, seed=1))
    generator = torch.Generator().manual_seed(0)
    torch.testing.assert_close(run.sample(8, generator=generator), first, rtol=0, atol=0)

    x = digits_images()[:12]
    posterior = run.encode(x)
    assert posterior.mean.shape == (12, 4)
    recon = run.reconstruct(x)
    assert recon.shape == (12, 1, 8, 8) and torch.isfinite(recon).all()
    torch.testing.assert_close(recon, run.decode(posterior.mean))
