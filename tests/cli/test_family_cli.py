"""The VAE family on the command line: ``vaekit presets`` lists them all; a conditional run (the
cvae preset) samples and decodes by class, index or name, and encodes, reconstructs and evaluates
with its inputs' labels; a label where none fits is one line on stderr and exit code 2.

Commands run in-process through typer's CliRunner; a few error cases run through ``run_app`` (where
errors are mapped to exit codes and messages; test_bad_input shows it in a real process too) and
check the line on stderr, the rest check the error class.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_support import TINY
from test_bad_input import assert_clean_error

import vaekit
from vaekit.data.loaders import prepare_data
from vaekit.errors import ConfigError
from vaekit.presets import PRESETS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SHAPES = ("circle", "square", "triangle")  # class names that are not indices


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory: pytest.TempPathFactory, invoke) -> Path:
    """A 1-epoch cvae on a CSV whose labels are words: circle, square, triangle (classes 0, 1, 2)."""
    folder = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    rows = [f"{a:.4f},{b:.4f},{c:.4f},{SHAPES[i % 3]}" for i, (a, b, c) in enumerate(rng.random((90, 3)))]
    table = folder / "shapes.csv"
    table.write_text("a,b,c,shape\n" + "\n".join(rows) + "\n")
    out = folder / "run"
    invoke(["train", "--data", table, "--preset", "cvae", "--epochs", "1", "--set", "data.label_column=shape",
            *TINY, "--out", out])
    return out


def test_presets_lists_every_registered_preset(invoke) -> None:
    output = invoke(["presets"]).output
    listed = {line.split()[0] for line in output.splitlines() if line and not line[0].isspace()}
    assert listed == set(PRESETS)
    for name in ("cvae", "factor-vae", "hvae", "vae-gan", "wae", "dae"):
        assert PRESETS.get(name).description in output


def test_sample_by_label(cvae_run: Path, invoke, tmp_path: Path) -> None:
    png = tmp_path / "threes.png"
    invoke(["sample", cvae_run, "--label", "3", "--n", "8", "--out", png])
    assert png.read_bytes()[:8] == PNG_MAGIC

    def sample(*args: str) -> np.ndarray:
        out = tmp_path / f"{len(list(tmp_path.iterdir()))}.npy"
        invoke(["sample", cvae_run, "--n", "8", "--seed", "1", *args, "--out", out])
        return np.load(out)

    threes, fours = sample("--label", "3"), sample("--label", "4")
    assert threes.shape == (8, 1, 8, 8) and np.isfinite(threes).all()
    assert np.abs(threes - fours).max() > 1e-3
    np.testing.assert_allclose(sample("--condition", ",".join("1" if i == 3 else "0" for i in range(10))), threes)
    expected = vaekit.load(cvae_run).sample(8, seed=1, condition=3).numpy()
    np.testing.assert_allclose(threes, expected, atol=1e-6)
    every_class = sample()  # default: classes 0, 1, ..., 7 in turn
    np.testing.assert_allclose(every_class[3], threes[3], atol=1e-6)
    assert sample("--label", "4")[3].tolist() != every_class[3].tolist()


def test_sample_by_class_name(shapes_run: Path, invoke, tmp_path: Path) -> None:
    assert vaekit.load(shapes_run).spec.class_names == list(SHAPES)
    by_name, by_index = tmp_path / "name.npy", tmp_path / "index.npy"
    invoke(["sample", shapes_run, "--label", "square", "--n", "4", "--out", by_name])
    invoke(["sample", shapes_run, "--label", "1", "--n", "4", "--out", by_index])
    np.testing.assert_array_equal(np.load(by_name), np.load(by_index))
    other = tmp_path / "triangle.npy"
    invoke(["sample", shapes_run, "--label", "triangle", "--n", "4", "--out", other])
    assert np.abs(np.load(other) - np.load(by_name)).max() > 1e-4


@pytest.mark.parametrize(
    "args, names",
    [(["--label", "99"], ["--label", "99"]), (["--condition", "1,2"], ["--condition", "1,2"])],
    ids=["label-99", "condition-too-short"],
)
def test_a_bad_label_is_one_line_and_writes_nothing(run_cli_in_process, cvae_run: Path, tmp_path: Path, args,
                                                    names) -> None:
    out = tmp_path / "samples.png"
    assert_clean_error(run_cli_in_process("sample", str(cvae_run), *args, "--out", str(out)), *names)
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [["--label", "-1"], ["--label", "hexagon"], ["--label", "3", "--condition", "0,0,0,1,0,0,0,0,0,0"],
     ["--condition", "a,b,c,d,e,f,g,h,i,j"]],
    ids=["label-minus-1", "unknown-name", "label-and-condition", "condition-not-numbers"],
)
def test_other_bad_labels_are_config_errors(invoke, cvae_run: Path, tmp_path: Path, args: list[str]) -> None:
    """The error class (the cases above show how a ConfigError reaches the terminal)."""
    out = tmp_path / "samples.png"
    result = invoke(["sample", cvae_run, *args, "--out", out], expect=1)
    assert isinstance(result.exception, ConfigError), repr(result.exception)
    assert not out.exists()


def test_label_on_a_run_that_is_not_conditional(run_cli_in_process, pristine_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "samples.png"
    result = run_cli_in_process("sample", str(pristine_run), "--label", "3", "--out", str(out))
    line = assert_clean_error(result, "--label")
    assert "not conditional" in line
    assert not out.exists()


def test_decode_by_label(cvae_run: Path, invoke, tmp_path: Path) -> None:
    codes = tmp_path / "codes.npy"
    invoke(["encode", cvae_run, "--split", "test", "--out", codes])
    z = np.load(codes)  # (N, 2, 4): means and log-variances
    assert z.ndim == 3 and z.shape[1:] == (2, 4) and np.isfinite(z).all()
    np.save(tmp_path / "z.npy", z[:6])
    sevens, by_class = tmp_path / "sevens.npy", tmp_path / "by_class.npy"
    invoke(["decode", cvae_run, "--latents", tmp_path / "z.npy", "--label", "7", "--out", sevens])
    invoke(["decode", cvae_run, "--latents", tmp_path / "z.npy", "--out", by_class])
    run = vaekit.load(cvae_run)
    means = torch.from_numpy(z[:6, 0])
    np.testing.assert_allclose(np.load(sevens), run.decode(means, condition=7).numpy(), atol=1e-6)
    np.testing.assert_allclose(np.load(by_class), run.decode(means, condition=torch.arange(6)).numpy(), atol=1e-6)


def test_reconstruct_a_conditional_run(cvae_run: Path, invoke, tmp_path: Path) -> None:
    png, array = tmp_path / "recon.png", tmp_path / "recon.npy"
    invoke(["reconstruct", cvae_run, "--n", "8", "--out", png])
    assert png.read_bytes()[:8] == PNG_MAGIC
    invoke(["reconstruct", cvae_run, "--indices", "0,1,2,3,4,5,6,7", "--out", array])
    run = vaekit.load(cvae_run)
    held_out = prepare_data(run.config.data).test  # the run's own test split, with its labels
    expected = run.reconstruct(held_out.x[:8], condition=torch.as_tensor(held_out.y[:8]))
    np.testing.assert_allclose(np.load(array), expected.numpy(), atol=1e-6)


def test_evaluate_a_conditional_run(cvae_run: Path, invoke, tmp_path: Path) -> None:
    run_dir = Path(shutil.copytree(cvae_run, tmp_path / "run"))
    result = invoke(["evaluate", run_dir, "--k", "20"])
    printed = json.loads(result.stdout[result.stdout.index("{"):])
    for key in ("neg_elbo", "nll", "kl"):
        assert math.isfinite(printed[key]), key
    assert printed["nll"] <= printed["neg_elbo"] + 1.0
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["evaluate"]["nll"] == pytest.approx(printed["nll"])
    assert "nll" in saved["test"]  # training evaluated the test split with its labels too


def test_export_of_a_conditional_run_takes_the_condition_as_an_input(run_cli_in_process, cvae_run: Path,
                                                                      tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "exported"
    result = run_cli_in_process("export", str(cvae_run), "--onnx", "--out", str(out))
    assert result.returncode == 0, result.stderr
    run = vaekit.load(cvae_run)
    x = torch.rand(3, *run.spec.shape)
    labels = torch.tensor([0, 1, 2])
    one_hot = torch.nn.functional.one_hot(labels, run.model.condition_dim).float()
    encoder = ort.InferenceSession(str(out / "encoder.onnx"))
    mean, _ = encoder.run(None, {"x": x.numpy(), "condition": one_hot.numpy()})
    np.testing.assert_allclose(mean, run.model.encode(x, labels).mean.detach().numpy(), atol=1e-5)
    decoder = ort.InferenceSession(str(out / "decoder.onnx"))
    (x_mean,) = decoder.run(None, {"z": mean, "condition": one_hot.numpy()})
    expected = run.model.decode(torch.from_numpy(mean), labels).mean.detach().numpy()
    np.testing.assert_allclose(x_mean, expected, atol=1e-5)
