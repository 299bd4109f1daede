"""Exploring a trained run on the command line: ``interpolate``, ``traverse``, ``arithmetic`` and
``swap`` decode paths through the latent space; ``embed`` and ``cluster`` map it; ``report`` puts it
all on one self-contained HTML page; ``sample --sampler gmm`` and ``evaluate --fid`` generate from a
mixture fitted to the codes and score sample quality.

Happy paths run in-process through typer's CliRunner (the conftest's ``invoke``). Bad input runs
in-process through ``vaekit.cli.common.run_app``, the function ``python -m vaekit`` calls, which is
where errors become exit code 2 and one line on stderr; each case also checks that nothing was
written, neither the promised file nor anything in the run folder.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_support import folder_digest
from PIL import Image
from typer.testing import CliRunner

import vaekit
from vaekit import io as run_io
from vaekit.cli import app
from vaekit.config import resolve_config
from vaekit.data.loaders import prepare_data
from vaekit.data.sources import RawData
from vaekit.models import build_model

LATENT_DIM = 4  # TINY sets model.latent_dim=4
CLASSES = 10  # digits




def load_picture(path: Path, kind: str = "PNG") -> Image.Image:
    """Open a written figure, check its format and that it is not blank; returns a loaded copy."""
    with Image.open(path) as picture:
        assert picture.format == kind, picture.format
        picture.load()
        grey = np.asarray(picture.convert("L"), dtype=np.float64)
        assert grey.std() > 1.0, f"{path.name} is blank"
        return picture.copy()


def images(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    array = np.load(path, allow_pickle=False)
    assert array.shape == shape and array.dtype == np.float32
    assert np.isfinite(array).all()
    return array


# ------------------------------------------------------------------------------- interpolate


def test_interpolate_writes_a_path_as_an_array_a_strip_and_an_animation(pristine_run: Path, invoke,
                                                                      tmp_path: Path) -> None:
    linear, spherical = tmp_path / "linear.npy", tmp_path / "spherical.npy"
    invoke(["interpolate", pristine_run, "--a", "3", "--b", "7", "--steps", "6", "--out", linear])
    invoke(["interpolate", pristine_run, "--a", "3", "--b", "7", "--steps", "6", "--path", "spherical",
            "--out", spherical])
    straight, curved = images(linear, (6, 1, 8, 8)), images(spherical, (6, 1, 8, 8))
    np.testing.assert_allclose(straight[[0, -1]], curved[[0, -1]], atol=1e-5)  # both ends on both paths

    strip, animation = tmp_path / "morph.png", tmp_path / "morph.gif"
    invoke(["interpolate", pristine_run, "--steps", "6", "--out", strip])
    picture = load_picture(strip)
    assert picture.width > 5 * picture.height, "one row of six images"
    invoke(["interpolate", pristine_run, "--steps", "6", "--path", "spherical", "--out", animation])
    with Image.open(animation) as gif:
        assert gif.format == "GIF" and gif.is_animated and gif.n_frames >= 6
        frames = []
        for index in range(gif.n_frames):
            gif.seek(index)
            frames.append(np.asarray(gif.convert("L"), dtype=np.float64))
    assert max(frame.std() for frame in frames) > 1.0, "every frame is blank"


# --------------------------------------------------------------------------------- traverse


def test_traverse_writes_one_row_per_dimension(pristine_run: Path, invoke, tmp_path: Path) -> None:
    grid = tmp_path / "grid.npy"
    invoke(["traverse", pristine_run, "--dims", "3", "--steps", "5", "--span", "2", "--out", grid])
    images(grid, (3 * 5, 1, 8, 8))
    around = tmp_path / "around.npy"
    invoke(["traverse", pristine_run, "--dims", "3", "--steps", "5", "--span", "2", "--center", "2", "--out", around])
    images(around, (3 * 5, 1, 8, 8))
    figure = tmp_path / "grid.png"
    invoke(["traverse", pristine_run, "--dims", "2", "--steps", "7", "--out", figure])
    picture = load_picture(figure)
    assert picture.width > picture.height, "two rows of seven"


def test_traverse_of_a_conditional_run_draws_the_centre_under_its_own_label(cvae_run: Path, held_out: RawData,
                                                                           invoke, tmp_path: Path) -> None:
    k = int(np.flatnonzero(held_out.y != held_out.y[0])[0])  # another class than the first input's
    grid = tmp_path / "grid.npy"
    invoke(["traverse", cvae_run, "--dims", "2", "--steps", "3", "--center", str(k), "--out", grid])
    middle = images(grid, (2 * 3, 1, 8, 8)).reshape(2, 3, 1, 8, 8)[:, 1]  # the centre column of each row
    run = vaekit.load(cvae_run)
    own = run.reconstruct(held_out.x[k : k + 1], condition=torch.as_tensor(held_out.y[k : k + 1])).numpy()
    np.testing.assert_allclose(middle, np.repeat(own, 2, axis=0), atol=1e-5)


# ------------------------------------------------------------------------------- arithmetic


def test_arithmetic_moves_inputs_along_an_attribute_vector(pristine_run: Path, held_out: RawData, invoke,
                                                           tmp_path: Path) -> None:
    shifted = tmp_path / "shifted.npy"
    invoke(["arithmetic", pristine_run, "--from", "3", "--to", "8", "--apply", "0,1", "--strengths", "0,1,2",
            "--out", shifted])
    rows = images(shifted, (2 * 3, 1, 8, 8)).reshape(2, 3, 1, 8, 8)  # one row per input, one column per strength
    run = vaekit.load(pristine_run)
    unmoved = run.decode(run.encode(held_out.x[[0, 1]]).mean).numpy()
    np.testing.assert_allclose(rows[:, 0], unmoved, atol=1e-5)  # strength 0: the input's own code

    figure = tmp_path / "shifted.png"
    invoke(["arithmetic", pristine_run, "--from-indices", "1,2,3", "--to-indices", "4,5", "--apply", "0,1,2",
            "--out", figure])
    load_picture(figure)


def test_arithmetic_analogy(pristine_run: Path, invoke, tmp_path: Path) -> None:
    answer = tmp_path / "answer.npy"
    invoke(["arithmetic", pristine_run, "--analogy", "1,2,3", "--out", answer])
    images(answer, (1, 1, 8, 8))
    figure = tmp_path / "analogy.png"
    invoke(["arithmetic", pristine_run, "--analogy", "1,2,3", "--out", figure])
    picture = load_picture(figure)
    assert picture.width > 3 * picture.height, "one row: A, B, C and the answer"


# ------------------------------------------------------------------------------------- swap


def test_swap_draws_each_input_as_every_class(cvae_run: Path, invoke, tmp_path: Path) -> None:
    swapped = tmp_path / "swapped.npy"
    invoke(["swap", cvae_run, "--apply", "0,1,2", "--out", swapped])
    rows = images(swapped, (3 * CLASSES, 1, 8, 8)).reshape(3, CLASSES, -1)
    assert np.abs(rows[:, 0] - rows[:, 1]).max() > 1e-4, "the class changes the drawing"
    figure = tmp_path / "swapped.png"
    invoke(["swap", cvae_run, "--out", figure])
    load_picture(figure)


# ------------------------------------------------------------------------------------ embed


def test_embed_writes_the_latent_means(pristine_run: Path, held_out: RawData, invoke, tmp_path: Path) -> None:
    means = tmp_path / "means.npy"
    invoke(["embed", pristine_run, "--out", means])
    codes = images(means, (len(held_out), LATENT_DIM))
    expected, _ = vaekit.load(pristine_run).encode_all(held_out.x)
    np.testing.assert_allclose(codes, expected.numpy(), atol=1e-6)

    table = tmp_path / "means.csv"
    invoke(["embed", pristine_run, "--out", table])
    with table.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [f"mean_{i}" for i in range(LATENT_DIM)] + ["label"]
    assert len(rows) == len(held_out) + 1
    np.testing.assert_array_equal([int(float(row[-1])) for row in rows[1:]], held_out.y)
    np.testing.assert_allclose(np.array([row[:-1] for row in rows[1:]], dtype=np.float32), codes, atol=1e-5)


def test_embed_of_a_conditional_run(cvae_run: Path, held_out: RawData, invoke, tmp_path: Path) -> None:
    means = tmp_path / "means.npy"
    invoke(["embed", cvae_run, "--out", means])
    images(means, (len(held_out), LATENT_DIM))


@pytest.mark.parametrize("args", [["--method", "pca"], ["--method", "pca", "--dims", "3"],
                                  ["--method", "tsne", "--max-points", "60"]], ids=["pca", "pca-3d", "tsne"])
def test_embed_draws_a_map(pristine_run: Path, invoke, tmp_path: Path, args: list[str]) -> None:
    figure = tmp_path / "map.png"
    invoke(["embed", pristine_run, *args, "--out", figure])
    load_picture(figure)


# ---------------------------------------------------------------------------------- cluster


def score_table(output: str, probe: bool = False) -> dict[str, list[float]]:
    """``representation dim NMI ARI ACC [probe]`` rows -> {representation: [NMI, ARI, ACC(, probe)]}."""
    lines = [line.split() for line in output.strip().splitlines()]
    assert lines[0] == ["representation", "dim", "NMI", "ARI", "ACC"] + (["probe"] if probe else []), output
    return {words[0]: [float(v) for v in words[2:]] for words in lines[1:]}


def test_cluster_scores_the_latent_space_and_two_baselines(pristine_run: Path, invoke) -> None:
    table = score_table(invoke(["cluster", pristine_run]).stdout)
    assert list(table) == ["latent", "raw", "pca"]
    for name, scores in table.items():
        assert len(scores) == 3 and all(math.isfinite(s) and -1.0 <= s <= 1.0 for s in scores), (name, scores)


def test_cluster_with_a_linear_probe(pristine_run: Path, invoke) -> None:
    table = score_table(invoke(["cluster", pristine_run, "--probe"]).stdout, probe=True)
    assert list(table) == ["latent", "raw", "pca"]
    for name, scores in table.items():
        assert len(scores) == 4 and 0.1 < scores[3] <= 1.0, (name, scores)  # ten digit classes: chance is 0.1
    assert table["raw"][3] > 0.8  # logistic regression on raw 8x8 digits is a strong baseline


def test_cluster_with_fewer_inputs_than_latent_dimensions_narrows_the_pca_baseline(tmp_path: Path, invoke) -> None:
    """A 16-d model on 10 inputs: PCA has at most 10 components (an untrained folder; scores do not matter)."""
    config = resolve_config(preset="vae", overrides=["data.source=digits", "model.hidden=[16]", "model.latent_dim=16"])
    spec = prepare_data(config.data).spec
    torch.manual_seed(0)
    folder = tmp_path / "wide"
    folder.mkdir()
    run_io.write_header(folder, config, spec)
    run_io.save_weights(folder, build_model(spec, config.model))
    table = invoke(["cluster", folder, "--max-points", "10", "--clusters", "2"]).stdout
    dims = {line.split()[0]: int(line.split()[1]) for line in table.strip().splitlines()[1:]}
    assert dims["pca"] == 10 and dims["raw"] == 64


def test_cluster_a_conditional_run_with_a_mixture(cvae_run: Path, invoke) -> None:
    table = score_table(invoke(["cluster", cvae_run, "--method", "gmm", "--clusters", "5", "--no-baselines"]).stdout)
    assert list(table) == ["latent"]
    assert all(-1.0 <= s <= 1.0 for s in table["latent"])


# ----------------------------------------------------------------------------------- report


def test_report_is_one_self_contained_page(pristine_run: Path, invoke, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    invoke(["report", pristine_run, "--out", page])
    text = page.read_text()
    assert text.lstrip().lower().startswith("<!doctype html") or "<html" in text.lower()
    assert "http://" not in text and "https://" not in text
    links = re.findall(r'\b(?:src|href)\s*=\s*["\']([^"\']*)', text, flags=re.IGNORECASE)
    assert len(links) >= 4 and all(link.startswith("data:") for link in links), links
    for link in links:
        header, payload = link.split(",", 1)
        assert header == "data:image/png;base64", header
        with Image.open(io.BytesIO(base64.b64decode(payload))) as picture:
            picture.verify()


# ---------------------------------------------------------------------------- gmm and --fid


def test_sample_from_a_latent_mixture(pristine_run: Path, invoke, tmp_path: Path) -> None:
    mixture, prior = tmp_path / "mixture.npy", tmp_path / "prior.npy"
    invoke(["sample", pristine_run, "--sampler", "gmm", "--components", "3", "--n", "12", "--out", mixture])
    invoke(["sample", pristine_run, "--n", "12", "--out", prior])
    assert not np.array_equal(images(mixture, (12, 1, 8, 8)), images(prior, (12, 1, 8, 8)))
    figure = tmp_path / "mixture.png"
    invoke(["sample", pristine_run, "--sampler", "gmm", "--components", "3", "--n", "16", "--out", figure])
    load_picture(figure)


class Flatten(torch.nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)  # (N, C * H * W)


@pytest.fixture
def scripted_features(tmp_path: Path) -> Path:
    """A TorchScript feature network: the pixels themselves."""
    path = tmp_path / "pixels.pt"
    torch.jit.script(Flatten()).save(str(path))
    return path


@pytest.mark.parametrize("features, sampler", [(None, "prior"), ("scripted", "gmm")], ids=["default", "torchscript"])
def test_evaluate_fid_records_sample_quality(run_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             scripted_features: Path, features: str | None, sampler: str) -> None:
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "cache"))  # the default feature classifier is cached here
    extra = [] if features is None else ["--features", str(scripted_features)]
    result = CliRunner().invoke(app, ["evaluate", str(run_copy), "--k", "5", "--fid", "--fid-samples", "100",
                                      "--sampler", sampler, *extra])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    entry = json.loads((run_copy / "metrics.json").read_text())["evaluate"]
    quality = entry["sample_quality"]
    for key in ("fid", "kid_mean", "precision", "recall"):
        assert math.isfinite(quality[key]), (key, quality)
    assert quality["fid"] >= 0 and 0 <= quality["precision"] <= 1 and 0 <= quality["recall"] <= 1
    assert quality["n_fake"] == 100 and quality["sampler"] == sampler
    assert math.isfinite(entry["rfid"]) and entry["rfid"] >= 0 and set(entry["not_computed"]) == {"ssim"}  # 8x8
    expected = "classifier" if features is None else "pixels.pt"
    assert expected in quality["features"], quality["features"]


# ----------------------------------------------------------------------------- determinism


@pytest.mark.parametrize(
    "run_name, args",
    [("pristine_run", ["interpolate", "--a", "2", "--b", "9", "--steps", "5", "--path", "spherical"]),
     ("pristine_run", ["traverse", "--dims", "2", "--steps", "4", "--center", "1"]),
     ("pristine_run", ["arithmetic", "--from", "1", "--to", "7", "--apply", "0,3"]),
     ("pristine_run", ["arithmetic", "--analogy", "4,5,6"]),
     ("cvae_run", ["swap", "--apply", "5,6"]),
     ("pristine_run", ["embed"]),
     ("pristine_run", ["sample", "--sampler", "gmm", "--components", "4", "--n", "9", "--seed", "3"])],
    ids=["interpolate", "traverse", "arithmetic", "analogy", "swap", "embed", "sample-gmm"],
)
def test_the_same_command_twice_writes_the_same_bytes(request: pytest.FixtureRequest, invoke, tmp_path: Path,
                                                      run_name: str, args: list[str]) -> None:
    run_dir = request.getfixturevalue(run_name)
    first, second = tmp_path / "first.npy", tmp_path / "second.npy"
    for out in (first, second):
        invoke([args[0], run_dir, *args[1:], "--out", out])
    assert first.read_bytes() == second.read_bytes()


# ------------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def unlabelled_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A .npy of 8x8 images: a data source with no labels."""
    path = tmp_path_factory.mktemp("unlabelled") / "images.npy"
    np.save(path, np.random.default_rng(0).uniform(0, 16, size=(40, 8, 8)).astype(np.float32))
    return path


@pytest.fixture(scope="module")
def two_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A .npz of 8x8 images labelled 0 and 1 only: the other digit classes are absent."""
    path = tmp_path_factory.mktemp("two-classes") / "images.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.uniform(0, 16, size=(30, 8, 8)).astype(np.float32), y=np.arange(30) % 2)
    return path


@pytest.fixture(scope="module")
def one_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A .npz of 8x8 images that all carry label 3."""
    path = tmp_path_factory.mktemp("one-class") / "one_class.npz"
    np.savez(path, x=np.random.default_rng(1).uniform(0, 16, size=(30, 8, 8)).astype(np.float32), y=np.full(30, 3))
    return path


# (run, arguments before --out, output file name or None, what the one line must name)
BAD_INPUT = [
    pytest.param("pristine_run", ["interpolate", "--a", "9999"], "path.png", ["--a", "9999"], id="a-out-of-range"),
    pytest.param("pristine_run", ["interpolate", "--path", "curvy"], "path.png", ["--path", "curvy"],
                 id="path-unknown"),
    pytest.param("pristine_run", ["interpolate", "--steps", "1"], "path.png", ["--steps"], id="steps-1"),
    pytest.param("pristine_run", ["arithmetic", "--from", "seven", "--to", "8"], "shift.png", ["--from", "seven"],
                 id="from-unknown-label"),
    pytest.param("pristine_run", ["arithmetic", "--analogy", "1,2"], "shift.png", ["--analogy", "1,2"],
                 id="analogy-two-indices"),
    pytest.param("pristine_run", ["arithmetic", "--analogy", "1,2,3,4"], "shift.png", ["--analogy", "1,2,3,4"],
                 id="analogy-four-indices"),
    pytest.param("cvae_run", ["arithmetic", "--from", "3", "--to", "8"], "shift.png", ["unconditional", "swap"],
                 id="arithmetic-on-a-cvae"),
    pytest.param("pristine_run", ["swap"], "swap.png", ["not conditional"], id="swap-unconditional"),
    pytest.param("cvae_run", ["swap", "--apply", "x,y"], "swap.png", ["--apply", "x,y"], id="swap-apply-junk"),
    pytest.param("pristine_run", ["arithmetic", "--from", "3", "--to", "8", "--apply", "1,junk"], "shift.png",
                 ["--apply", "1,junk"], id="arithmetic-apply-junk"),
    pytest.param("pristine_run", ["embed", "--method", "bogus"], "map.png", ["--method", "bogus"],
                 id="embed-method-bogus"),
    pytest.param("pristine_run", ["embed"], "map.txt", ["--out", "map.txt"], id="embed-out-txt"),
    pytest.param("pristine_run", ["cluster", "--data", "{unlabelled}"], None, ["images.npy", "label"],
                 id="cluster-unlabelled"),
    pytest.param("pristine_run", ["sample", "--sampler", "bogus"], "samples.png", ["--sampler", "bogus"],
                 id="sample-sampler-bogus"),
    pytest.param("run_copy", ["evaluate", "--k", "5", "--fid", "--fid-samples", "100", "--sampler", "bogus"], None,
                 ["--sampler", "bogus"], id="evaluate-fid-sampler-bogus"),
    pytest.param("run_copy", ["evaluate", "--k", "5", "--sampler", "bogus"], None, ["--sampler", "bogus"],
                 id="evaluate-sampler-bogus-without-fid"),
    pytest.param("run_copy", ["evaluate", "--k", "5", "--fid", "--fid-samples", "100", "--features", "{missing}"],
                 None, ["missing.pt"], id="evaluate-features-missing"),
    pytest.param("pristine_run", ["report"], "report.txt", ["--out", "report.txt"], id="report-out-txt"),
    pytest.param("pristine_run", ["arithmetic", "--data", "{two_classes}", "--from", "0", "--to", "5"], "shift.png",
                 ["--to", "'5'", "0, 1"], id="to-a-class-absent-from-the-inputs"),
    pytest.param("pristine_run", ["arithmetic", "--from", "3", "--to", "8", "--strengths", "0,nan"], "shift.png",
                 ["--strengths", "0,nan"], id="strengths-nan"),
    pytest.param("pristine_run", ["traverse", "--data", "{one_input}"], "grid.png", ["traverse", "2 reference inputs"],
                 id="traverse-one-input"),
    pytest.param("pristine_run", ["cluster", "--data", "{one_class}"], None, ["one_class.npz", "2 classes"],
                 id="cluster-one-class"),
    pytest.param("pristine_run", ["cluster", "--clusters", "5000", "--max-points", "50"], None,
                 ["--clusters", "5000"], id="cluster-more-clusters-than-inputs"),
]


@pytest.mark.parametrize("run_name, args, out_name, names", BAD_INPUT)
def test_bad_input_is_one_line_and_writes_nothing(request: pytest.FixtureRequest, run_main, unlabelled_images: Path,
                                                  two_classes: Path, one_class: Path, tmp_path: Path, run_name: str,
                                                  args: list[str], out_name: str | None, names: list[str]) -> None:
    run_dir = request.getfixturevalue(run_name)
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    one_input = tmp_path / "one_input.npy"
    np.save(one_input, np.zeros((1, 8, 8), dtype=np.float32))
    words = [word.format(unlabelled=unlabelled_images, missing=tmp_path / "missing.pt", two_classes=two_classes,
                         one_class=one_class, one_input=one_input) for word in args]
    words[1:1] = [str(run_dir)]
    if out_name is not None:
        words += ["--out", str(outputs / out_name)]
    before = folder_digest(run_dir)

    code, stdout, stderr = run_main(*words)

    report = f"vaekit {' '.join(words)}: exit {code}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    assert code == 2, report
    assert "Traceback" not in stdout + stderr, report
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vaekit: error: "), report
    for name in names:
        assert name in lines[0], f"the error does not name {name!r}\n{report}"
    assert stdout == "", report
    assert list(outputs.iterdir()) == [], report
    assert folder_digest(run_dir) == before, f"the run folder changed\n{report}"


def test_an_upper_case_suffix_is_accepted(pristine_run: Path, invoke, tmp_path: Path) -> None:
    out = tmp_path / "path.NPY"
    invoke(["interpolate", pristine_run, "--steps", "3", "--out", out])
    images(out, (3, 1, 8, 8))

