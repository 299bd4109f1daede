"""Which inputs a figure shows: files are often sorted by label (a CSV or .npz of digits, class by
class), so a figure of the first items in file order would show one class. Every command that picks
inputs from data takes a seeded random choice by default, accepts explicit indices, prints which
items (and labels) it used, and captions the rows of its figures. Also the small listings: ``info``'s
metrics table, ``report``'s metrics (each once), ``datasets`` and ``presets`` in columns.

Commands run in-process through ``vaekit.cli.common.run_app`` (the conftest's ``run_main``), which
logs to stderr as ``python -m vaekit`` does: the "showing items ..." line is part of what is tested.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

import vaekit

CLASSES = 10


@pytest.fixture(scope="module")
def sorted_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's 1,797 digits as uint8 (N, 1, 8, 8) with labels, sorted by label: 0s first, 9s last."""
    bunch = load_digits()
    order = np.argsort(bunch.target, kind="stable")
    path = tmp_path_factory.mktemp("sorted") / "digits_by_label.npz"
    np.savez(path, x=bunch.images[order].astype(np.uint8)[:, None], y=bunch.target[order])
    return path


def shown(stderr: str, what: str = "showing") -> tuple[list[int], list[str]]:
    """The items and labels named by a command's "<what> items 3, 17 (labels 0, 9)" line."""
    match = re.search(rf"^{re.escape(what)} items? ([\d, ]+) \(labels? ([^)]*)\)$", stderr, re.M)
    assert match, f"no '{what} items ... (labels ...)' line in:\n{stderr}"
    return [int(i) for i in match[1].split(", ")], match[2].split(", ")


def ok(result: tuple[int, str, str]) -> tuple[str, str]:
    code, out, err = result
    assert code == 0, err
    return out, err


CELL, EDGE = (8 + 2) * 8, 2 * 8  # 8x8 digits with 2 px padding, shown 8 times larger; the grid's last padding


def captioned_rows(path: Path, rows: int, columns: int) -> None:
    """The figure is a grid of ``rows`` x ``columns`` digits with a white margin on its left holding
    dark text beside each row."""
    with Image.open(path) as picture:
        grey = np.asarray(picture.convert("L"), dtype=np.float64)
    assert grey.shape[0] == rows * CELL + EDGE, "rows"
    margin = grey[:, : grey.shape[1] - (columns * CELL + EDGE)]
    assert margin.shape[1] > 20, "no room for a caption on the left"
    inked = [bool((band < 128).any()) for band in np.array_split(margin[EDGE // 2 :], rows)]
    assert all(inked), f"rows without a caption: {[i for i, ink in enumerate(inked) if not ink]}"


# ------------------------------------------------------------------------------- reconstruct


def test_reconstruct_of_a_label_sorted_file_shows_every_class(pristine_run: Path, sorted_digits: Path, run_main,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "r.npy"
    _, err = ok(run_main("reconstruct", pristine_run, "--data", sorted_digits, "--n", "16", "--out", out))
    items, labels = shown(err)
    assert len(set(labels)) >= 5, f"one class or two from a label-sorted file: {labels}"
    truth = np.load(sorted_digits)["y"]
    assert labels == [str(truth[i]) for i in items]
    run = vaekit.load(pristine_run)
    expected = run.reconstruct(np.load(sorted_digits)["x"][items]).numpy()
    np.testing.assert_allclose(np.load(out), expected, atol=1e-6)

    again = tmp_path / "again.npy"
    ok(run_main("reconstruct", pristine_run, "--data", sorted_digits, "--n", "16", "--out", again))
    assert again.read_bytes() == out.read_bytes(), "the choice is seeded"
    other = tmp_path / "other.npy"
    _, err = ok(run_main("reconstruct", pristine_run, "--data", sorted_digits, "--n", "16", "--seed", "1",
                         "--out", other))
    assert shown(err)[0] != items, "--seed picks other inputs"


def test_reconstruct_given_indices(pristine_run: Path, sorted_digits: Path, run_main, tmp_path: Path) -> None:
    out = tmp_path / "r.npy"
    _, err = ok(run_main("reconstruct", pristine_run, "--data", sorted_digits, "--indices", "3,17,1796",
                         "--out", out))
    assert shown(err) == ([3, 17, 1796], ["0", "0", "9"])
    run = vaekit.load(pristine_run)
    expected = run.reconstruct(np.load(sorted_digits)["x"][[3, 17, 1796]]).numpy()
    np.testing.assert_allclose(np.load(out), expected, atol=1e-6)


def test_a_conditional_run_reconstructs_the_chosen_inputs_under_their_labels(cvae_run: Path, sorted_digits: Path,
                                                                              run_main, tmp_path: Path) -> None:
    out = tmp_path / "r.npy"
    _, err = ok(run_main("reconstruct", cvae_run, "--data", sorted_digits, "--n", "6", "--out", out))
    items, _ = shown(err)
    data = np.load(sorted_digits)
    expected = vaekit.load(cvae_run).reconstruct(data["x"][items], condition=torch.as_tensor(data["y"][items]))
    np.testing.assert_allclose(np.load(out), expected.numpy(), atol=1e-6)


# ------------------------------------------------------------------------------- interpolate


def test_interpolate_between_two_chosen_inputs_of_a_label_sorted_file(pristine_run: Path, sorted_digits: Path,
                                                                      run_main, tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.npy"
    _, err = ok(run_main("interpolate", pristine_run, "--data", sorted_digits, "--steps", "4", "--out", chosen))
    (a, b), labels = shown(err, "from a to b:")
    assert a != b and labels[0] != labels[1], f"two inputs of one class: {a}, {b} ({labels})"
    given = tmp_path / "given.npy"
    ok(run_main("interpolate", pristine_run, "--data", sorted_digits, "--steps", "4", "--a", str(a), "--b", str(b),
                "--out", given))
    assert given.read_bytes() == chosen.read_bytes()
    _, err = ok(run_main("interpolate", pristine_run, "--data", sorted_digits, "--steps", "4", "--a", str(b),
                         "--out", tmp_path / "one.npy"))
    (start, end), _ = shown(err, "from a to b:")
    assert start == b and end != b, "the end not given is chosen, and differs from the one given"


# ---------------------------------------------------------------------------------- restore


def test_restore_of_a_label_sorted_file_captions_a_row_per_input(pristine_run: Path, sorted_digits: Path, run_main,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "r.png"
    _, err = ok(run_main("restore", pristine_run, "--data", sorted_digits, "--mask", "half", "--steps", "5",
                         "--out", out))
    items, labels = shown(err, "restored")
    assert len(items) == 8 and len(set(labels)) >= 4, labels
    captioned_rows(out, 8, 3)  # a row per input: observed, restored, original

    chosen, given = tmp_path / "chosen.npy", tmp_path / "given.npy"
    _, err = ok(run_main("restore", pristine_run, "--data", sorted_digits, "--mask", "half", "--steps", "5",
                         "--n", "8", "--out", chosen))
    items, _ = shown(err, "restored")
    ok(run_main("restore", pristine_run, "--data", sorted_digits, "--mask", "half", "--steps", "5",
                "--indices", ",".join(map(str, items)), "--out", given))
    assert given.read_bytes() == chosen.read_bytes()


# ------------------------------------------------------------------------- traverse, arithmetic, swap


def test_traverse_captions_each_row_with_its_dimension(pristine_run: Path, run_main, tmp_path: Path) -> None:
    out = tmp_path / "t.png"
    ok(run_main("traverse", pristine_run, "--dims", "3", "--steps", "4", "--out", out))
    captioned_rows(out, 3, 4)


def test_traverse_of_a_conditional_run_says_whose_label_the_rows_use(cvae_run: Path, sorted_digits: Path,
                                                                    run_main, tmp_path: Path) -> None:
    out = tmp_path / "t.npy"
    _, err = ok(run_main("traverse", cvae_run, "--data", sorted_digits, "--dims", "2", "--steps", "3",
                         "--seed", "1", "--out", out))
    (item,), (label,) = shown(err, "drawn under the label of")
    assert label == str(np.load(sorted_digits)["y"][item])


def test_arithmetic_moves_chosen_inputs_of_a_label_sorted_file(pristine_run: Path, sorted_digits: Path, run_main,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "a.png"
    _, err = ok(run_main("arithmetic", pristine_run, "--data", sorted_digits, "--from", "3", "--to", "8",
                         "--strengths", "0,1", "--out", out))
    items, labels = shown(err, "moving")
    assert len(items) == 4 and len(set(labels)) >= 3, labels
    captioned_rows(out, 4, 2)


def test_swap_draws_chosen_inputs_of_a_label_sorted_file(cvae_run: Path, sorted_digits: Path, run_main,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "s.png"
    _, err = ok(run_main("swap", cvae_run, "--data", sorted_digits, "--out", out))
    items, labels = shown(err)
    assert len(items) == 4 and len(set(labels)) >= 3, labels
    captioned_rows(out, 4, CLASSES)


@pytest.mark.parametrize("args, named", [
    (["reconstruct", "--indices", "3,1797"], ["--indices", "3,1797", "0..1796"]),
    (["reconstruct", "--indices", "3,x"], ["--indices", "3,x"]),
    (["reconstruct", "--indices", "3", "--n", "4"], ["--n", "--indices"]),
    (["restore", "--mask", "half", "--indices", "-1"], ["--indices", "-1"]),
    (["arithmetic", "--from", "3", "--to", "8", "--apply", "2000"], ["--apply", "2000"]),
], ids=["out-of-range", "malformed", "with-n", "negative", "apply-out-of-range"])
def test_bad_indices_are_one_line_and_write_nothing(pristine_run: Path, sorted_digits: Path, run_main,
                                                    tmp_path: Path, args: list[str], named: list[str]) -> None:
    out = tmp_path / "figure.png"
    code, stdout, stderr = run_main(args[0], pristine_run, "--data", sorted_digits, *args[1:], "--out", out)
    lines = stderr.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("vaekit: error: "), stderr
    assert all(name in lines[0] for name in named), lines[0]
    assert stdout == "" and not out.exists()


# ------------------------------------------------------------------------------- report, info


def test_report_shows_a_chosen_set_and_lists_each_metric_once(run_copy: Path, sorted_digits: Path, run_main,
                                                              tmp_path: Path) -> None:
    ok(run_main("evaluate", run_copy, "--k", "5"))  # a second evaluation beside the training-time "test"
    out = tmp_path / "report.html"
    ok(run_main("report", run_copy, "--data", sorted_digits, "--out", out))
    page = out.read_text()
    metrics = page[page.index("<h2>Metrics</h2>") : page.index("<h2>", page.index("<h2>Metrics</h2>") + 1)]
    names = re.findall(r"<tr><th>([^<]*)</th><td>", metrics)
    assert len(names) == len(set(names)), f"metrics listed more than once: {names}"
    assert sum("nll" in name for name in names) == 1 and sum("elbo" in name for name in names) == 1, names
    assert "<th>test</th>" in metrics and "<th>evaluate</th>" in metrics, "a column per evaluation"
    caption = re.search(r"reconstructions: items [\d, ]+ \(labels ([^)]*)\)", page)
    assert caption and len(set(caption[1].split(", "))) >= 5, "reconstructions of one class"


def test_info_prints_metrics_as_a_table(run_copy: Path, run_main) -> None:
    ok(run_main("evaluate", run_copy, "--k", "5"))
    text, _ = ok(run_main("info", run_copy))
    assert re.search(r"^metrics +evaluate +test$", text, re.M), text
    assert re.search(r"^  nll +\d+\.\d{2} +\d+\.\d{2}$", text, re.M), text
    assert "{" not in text and "kl_per_dim" not in text, text
    rows = [line for line in text.splitlines() if line.startswith("  ")]
    ends = {len(line) for line in rows if re.search(r"\d$", line)}
    assert len(ends) == 1, f"the numbers' columns are not aligned:\n{text}"


# -------------------------------------------------------------------------------- datasets, presets


def test_datasets_say_offline_or_what_they_need_once(run_main) -> None:
    text, _ = ok(run_main("datasets"))
    rows = [line for line in text.splitlines() if line and not line.startswith("paths:")]
    assert {row.split()[0] for row in rows} >= {"digits", "mnist", "fashion-mnist", "cifar10"}
    columns = [re.match(r"^(\S+) +(offline|needs \S.*?)  +(\S.*)$", row) for row in rows]
    assert all(columns), f"a line without 'offline' or 'needs ...' after the name:\n{text}"
    for match in columns:  # the availability is said once, in its column
        assert not re.search(r"\b(offline|download)\b", match[3]), match[0]
    assert len({match.start(3) for match in columns}) == 1, f"descriptions do not start in one column:\n{text}"
    assert re.search(r"^mnist +(offline|needs 12 MB download)  ", text, re.M), text


def test_presets_are_listed_in_aligned_columns(run_main) -> None:
    text, _ = ok(run_main("presets"))
    lines = text.splitlines()
    starts = {re.match(r"^\S* +", line).end() for line in lines}
    assert len(starts) == 1, f"descriptions and options do not start in one column:\n{text}"
    assert any(line.startswith("beta-vae-capacity ") for line in lines)
