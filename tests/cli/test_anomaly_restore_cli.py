"""``vaekit anomaly`` and ``vaekit restore`` on the command line.

Happy paths run in-process through typer's CliRunner (the conftest's ``invoke``) on a private copy of
the tiny trained digits run (``run_copy``): ``anomaly`` saves its threshold into the run folder. Bad
input runs in-process through ``vaekit.cli.common.run_app`` (what ``python -m vaekit`` calls): exit
code 2, one line on stderr, and nothing written, neither the output nor anything in the run folder.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_support import TINY, folder_digest
from PIL import Image

from vaekit.data.sources import RawData

N_TEST = 359  # digits: 20% of 1797 held out




def assert_clean_error(result: tuple[int, str, str], *names: str) -> str:
    """Exit 2, one stderr line naming every one of ``names``, no traceback; returns the line."""
    code, out, err = result
    report = f"exit {code}\n--- stdout\n{out}\n--- stderr\n{err}"
    assert code == 2, report
    assert "Traceback" not in out + err, report
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected exactly one line on stderr\n{report}"
    for name in names:
        assert name in lines[0], f"the error does not name {name!r}\n{report}"
    return lines[0]


def read_scores(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], np.array(rows[1:], dtype=np.float64)


def flagged_count(stdout: str) -> int:
    match = re.search(r"(\d+) of (\d+) inputs flagged", stdout)
    assert match, stdout
    return int(match.group(1))


def picture_of(path: Path) -> Image.Image:
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        picture.load()
        assert np.asarray(picture.convert("L"), dtype=np.float64).std() > 1.0, f"{path.name} is blank"
        return picture.copy()


# ----------------------------------------------------------------------------------- anomaly


def test_anomaly_writes_a_ranked_table_and_a_figure_and_keeps_its_threshold(run_copy: Path, invoke, tmp_path: Path,
                                                                           held_out: RawData) -> None:
    table = tmp_path / "s.csv"
    first = invoke(["anomaly", run_copy, "--out", table, "--k", "5"])
    header, rows = read_scores(table)
    assert header == ["index", "score", "flagged", "label"]
    assert len(rows) == N_TEST
    index, score, flagged, label = rows.T
    assert sorted(index.astype(int)) == list(range(N_TEST)), "every input once"
    assert np.all(np.diff(score) <= 0), "most anomalous first"
    assert set(np.unique(flagged)) <= {0.0, 1.0}
    assert np.all(np.diff(flagged) <= 0), "the flagged are the highest scores"
    np.testing.assert_array_equal(label, held_out.y[index.astype(int)])
    assert flagged_count(first.output) == int(flagged.sum())
    assert 0 < flagged.mean() < 0.25, "the 95% quantile of normal (validation) scores flags a few"
    picture_of(tmp_path / "s.png")

    saved = json.loads((run_copy / "anomaly.json").read_text())
    assert list(saved) == ["nll@k5"]
    assert saved["nll@k5"]["method"] == "quantile" and saved["nll@k5"]["level"] == 0.95
    assert "validation" in saved["nll@k5"]["source"]

    before = folder_digest(run_copy)
    again = tmp_path / "again.csv"
    invoke(["anomaly", run_copy, "--out", again, "--k", "5"])
    assert again.read_bytes() == table.read_bytes(), "the saved threshold flags the same inputs"
    assert folder_digest(run_copy) == before, "reusing the saved threshold rewrites nothing"


def test_a_contamination_threshold_is_saved_and_reused(run_copy: Path, invoke, tmp_path: Path) -> None:
    first = invoke(["anomaly", run_copy, "--out", tmp_path / "a.csv", "--score", "recon", "--contamination", "0.2"])
    assert abs(flagged_count(first.output) - round(0.2 * N_TEST)) <= 1
    _, rows = read_scores(tmp_path / "a.csv")
    assert abs(rows[:, 2].sum() - 0.2 * N_TEST) <= 1
    saved = json.loads((run_copy / "anomaly.json").read_text())["recon"]
    assert saved["method"] == "contamination" and saved["level"] == 0.2

    later = invoke(["anomaly", run_copy, "--out", tmp_path / "b.csv", "--score", "recon"])
    assert flagged_count(later.output) == flagged_count(first.output), "not refitted at the 95% quantile"
    _, reused = read_scores(tmp_path / "b.csv")
    np.testing.assert_array_equal(reused[:, 2], rows[:, 2])


def test_normal_classes_give_auroc(run_copy: Path, invoke, tmp_path: Path) -> None:
    result = invoke(["anomaly", run_copy, "--out", tmp_path / "s.csv", "--k", "5", "--normal", "0,1",
                     "--contamination", "0.1"])
    match = re.search(r"AUROC (\d\.\d+)\s+AUPRC (\d\.\d+)", result.output)
    assert match, result.output
    assert 0.0 <= float(match.group(1)) <= 1.0 and 0.0 < float(match.group(2)) <= 1.0
    assert "normal classes 0,1" in result.output


def test_a_one_class_run_reports_auroc_against_the_other_classes(invoke, tmp_path: Path) -> None:
    run = tmp_path / "zeros"
    invoke(["train", "--data", "digits", "--epochs", "2", *TINY, "--set", "data.classes=[0]", "--out", run])
    result = invoke(["anomaly", run, "--out", tmp_path / "s.csv", "--score", "recon"])
    match = re.search(r"AUROC (\d\.\d+)", result.output)
    assert match, result.output
    assert float(match.group(1)) > 0.6, "zeros are told from other digits by a model of zeros"
    _, rows = read_scores(tmp_path / "s.csv")
    assert len(np.unique(rows[:, 3])) == 10, "the test split keeps every class"


@pytest.mark.parametrize("args,named", [
    (["--score", "foo"], "foo"),
    (["--contamination", "2"], "--contamination"),
    (["--quantile", "0"], "--quantile"),
    (["--contamination", "0.1", "--quantile", "0.9"], "--quantile"),
    (["--normal", "eleven"], "eleven"),
    (["--split", "val"], "--split"),
    (["--figure", "f.jpg"], "--figure"),
    (["--k", "0"], "--k"),
], ids=["score", "contamination", "quantile", "both", "normal", "split", "figure", "k"])
def test_bad_anomaly_options_exit_2_and_write_nothing(run_copy: Path, run_main, tmp_path: Path, args: list[str],
                                                      named: str) -> None:
    before = folder_digest(run_copy)
    out = tmp_path / "s.csv"
    assert_clean_error(run_main("anomaly", run_copy, "--out", out, *args), named)
    assert not out.exists() and not out.with_suffix(".png").exists()
    assert folder_digest(run_copy) == before


def test_anomaly_refuses_a_table_name_for_its_output(run_copy: Path, run_main, tmp_path: Path) -> None:
    before = folder_digest(run_copy)
    assert_clean_error(run_main("anomaly", run_copy, "--out", tmp_path / "x.txt"), "x.txt")
    assert not (tmp_path / "x.txt").exists()
    assert folder_digest(run_copy) == before


def test_a_corrupt_threshold_file_is_a_clean_error(run_copy: Path, run_main, tmp_path: Path) -> None:
    (run_copy / "anomaly.json").write_text("{not json")
    assert_clean_error(run_main("anomaly", run_copy, "--out", tmp_path / "s.csv", "--k", "5"), "anomaly.json")


def test_a_new_threshold_replaces_a_corrupt_file(run_copy: Path, run_main, tmp_path: Path) -> None:
    (run_copy / "anomaly.json").write_text("{not json")
    code, out, err = run_main("anomaly", run_copy, "--out", tmp_path / "s.csv", "--k", "5", "--contamination", "0.1")
    assert code == 0, err
    assert json.loads((run_copy / "anomaly.json").read_text())["nll@k5"]["method"] == "contamination"


# ----------------------------------------------------------------------------------- restore


def test_restore_a_half_masked_image_grid(pristine_run: Path, invoke, tmp_path: Path) -> None:
    out = tmp_path / "r.png"
    result = invoke(["restore", pristine_run, "--mask", "half", "--out", out, "--steps", "20"])
    picture = picture_of(out)
    # a row per input, 8 rows of 3 (observed, restored, original): 8x8 images, 2 px padding, shown 8x
    # larger, after a margin of captions
    assert picture.height == (8 * 10 + 2) * 8 and picture.width > (3 * 10 + 2) * 8
    match = re.search(r"PSNR on the unknown values: (-?[\d.]+) dB restored, (-?[\d.]+) dB as observed", result.output)
    assert match, result.output


def test_restore_noise_to_an_array_in_data_units(pristine_run: Path, invoke, tmp_path: Path) -> None:
    out = tmp_path / "r.npy"
    invoke(["restore", pristine_run, "--noise", "0.3", "--out", out, "--steps", "20"])
    restored = np.load(out, allow_pickle=False)
    assert restored.shape == (N_TEST, 1, 8, 8)
    assert np.isfinite(restored).all()
    assert restored.min() >= -1e-4 and restored.max() <= 16 + 1e-3, "digits' units: levels 0..16"
    assert restored.max() > 4.0, "scaled back from the model's [0, 1]"


def test_restore_downsampled_digits(pristine_run: Path, invoke, tmp_path: Path, held_out: RawData) -> None:
    out = tmp_path / "r.npy"
    first = ",".join(str(i) for i in range(10))
    invoke(["restore", pristine_run, "--downsample", "2", "--indices", first, "--out", out, "--steps", "20"])
    restored = np.load(out, allow_pickle=False)
    assert restored.shape == (10, 1, 8, 8)

    def pool(x: np.ndarray) -> np.ndarray:
        return x.reshape(10, 1, 4, 2, 4, 2).mean((3, 5))

    np.testing.assert_allclose(pool(restored), pool(held_out.x[:10].astype(np.float32)), atol=1e-3)


def test_restore_observed_low_resolution_inputs(pristine_run: Path, invoke, tmp_path: Path, held_out: RawData) -> None:
    small = torch.nn.functional.avg_pool2d(torch.as_tensor(held_out.x[:6], dtype=torch.float32), 2)  # (6, 1, 4, 4)
    np.save(tmp_path / "small.npy", small.numpy())
    out = tmp_path / "r.npy"
    invoke(["restore", pristine_run, "--data", tmp_path / "small.npy", "--observed", "--downsample", "2",
            "--out", out, "--steps", "10"])
    restored = np.load(out, allow_pickle=False)
    assert restored.shape == (6, 1, 8, 8)
    np.testing.assert_allclose(restored.reshape(6, 1, 4, 2, 4, 2).mean((3, 5)), small.numpy(), atol=1e-3)


def test_restore_with_a_conditional_run(cvae_run: Path, invoke, tmp_path: Path) -> None:
    out = tmp_path / "r.npy"
    invoke(["restore", cvae_run, "--mask", "random:0.5", "--method", "importance", "--k", "10", "--n", "5",
            "--out", out])
    assert np.load(out, allow_pickle=False).shape == (5, 1, 8, 8)


@pytest.mark.parametrize("args,named", [
    (["--mask", "half", "--noise", "0.3"], "--noise"),
    (["--out-of-place"], "--out-of-place"),
    ([], "--mask"),
    (["--downsample", "3"], "--downsample 3"),
    (["--observed", "--mask", "half"], "--observed"),
    (["--mask", "random:2"], "random:2"),
    (["--noise", "-1"], "--noise"),
    (["--noise", "0.3", "--method", "mwg"], "mwg"),
    (["--mask", "half", "--method", "gibbs"], "gibbs"),
], ids=["two-operators", "unknown-option", "no-operator", "downsample-3", "observed-mask", "random", "noise",
        "mwg-noise", "method"])
def test_bad_restore_options_exit_2_and_write_nothing(run_copy: Path, run_main, tmp_path: Path, args: list[str],
                                                      named: str) -> None:
    before = folder_digest(run_copy)
    out = tmp_path / "r.png"
    assert_clean_error(run_main("restore", run_copy, "--out", out, *args), named)
    assert not out.exists()
    assert folder_digest(run_copy) == before


def test_restore_refuses_an_output_it_cannot_write(run_copy: Path, run_main, tmp_path: Path) -> None:
    assert_clean_error(run_main("restore", run_copy, "--mask", "half", "--out", tmp_path / "r.csv"), "r.csv")
    assert not (tmp_path / "r.csv").exists()
