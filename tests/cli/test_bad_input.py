"""Bad input fails early and cleanly (DESIGN §8): exit code 2, exactly one line on stderr that names
the file or field at fault, no traceback, and nothing half-written.

Errors are mapped to exit codes and messages in ``vaekit.cli.common.run_app``. Most cases run it
in-process (``run_cli_in_process``: the same ``run_app``, its stderr and the warnings a fresh
interpreter would print); a few run ``python -m vaekit`` as a real subprocess, to show the mapping
holds in a real process too: a data error, a usage error, and the run folder held by another
process's lock.
"""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_support import TINY, folder_digest

from vaekit.config import DataConfig
from vaekit.data.sources import load_source
from vaekit.data.sources.idx import IMAGES_MAGIC, LABELS_MAGIC, SPLIT_FILES


def assert_clean_error(result: subprocess.CompletedProcess[str], *names: str) -> str:
    """Exit 2, one non-empty stderr line naming every one of ``names``, no traceback; returns the line."""
    report = f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 2, report
    assert "Traceback" not in result.stdout + result.stderr, report
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected exactly one line on stderr\n{report}"
    for name in names:
        assert name in lines[0], f"the error does not name {name!r}\n{report}"
    return lines[0]


def train_args(out: Path, *extra: str, data: str = "digits") -> list[str]:
    return ["train", "--data", data, "--epochs", "1", *TINY, *extra, "--out", str(out)]


# ------------------------------------------------------------------------------------ data files


def test_missing_data_file(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli(*train_args(out, data="nope.npz"))
    assert_clean_error(result, "nope.npz")
    assert not out.exists()


@pytest.mark.parametrize("where", ["a-file", "below-a-file"])
def test_an_out_that_cannot_be_a_folder_is_refused_before_training(run_cli_in_process, tmp_path: Path,
                                                                   where: str) -> None:
    """Issue 17: `--out` naming an existing file was found only after a whole epoch, as an internal error."""
    taken = tmp_path / "notes.txt"
    taken.write_text("keep me\n")
    out = taken if where == "a-file" else taken / "run"
    result = run_cli_in_process(*train_args(out))
    assert_clean_error(result, "notes.txt")
    assert "epoch" not in result.stdout + result.stderr.lower()  # refused before any training
    assert taken.read_text() == "keep me\n"


@pytest.mark.parametrize(("rows", "split"), [(1, "0.2"), (4, "0.5")], ids=["one-row", "one-left-by-the-splits"])
def test_too_few_samples_to_train_on_is_refused(run_cli_in_process, tmp_path: Path, rows: int, split: str) -> None:
    """Issue 17: 1-row data was accepted."""
    table = tmp_path / "tiny.csv"
    table.write_text("a,b\n" + "".join(f"{i},{2 * i + 1}\n" for i in range(rows)))
    out = tmp_path / "out"
    result = run_cli_in_process(*train_args(out, "--set", f"data.test_fraction={split}",
                                            "--set", f"data.val_fraction={split}", data=str(table)))
    line = assert_clean_error(result, "tiny.csv")
    assert "1 sample to train on" in line
    assert not out.exists()


def test_a_run_folder_in_use_is_refused_and_a_dead_owners_lock_is_taken_over(run_cli, tmp_path: Path) -> None:
    """Issue 17: two `vaekit train` on one --out both succeeded, mixing their files."""
    import sys

    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from vaekit.files import FolderLock; "
         "FolderLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(300)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert_clean_error(run_cli(*train_args(out)), "run", f"in use by pid {holder.pid}")
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert (tmp_path / ".run.lock").exists()  # what a killed owner leaves: taken over, then removed
    result = run_cli(*train_args(out))
    assert result.returncode == 0, result.stderr
    assert (out / "model.safetensors").is_file() and not (tmp_path / ".run.lock").exists()


def test_divergence_is_one_line_with_the_remedy_and_no_half_written_folder(run_cli_in_process, tmp_path: Path) -> None:
    """Issue 17: `--lr 1000` ended with exit 1 "internal error: FloatingPointError" and a folder holding
    only config.json and data_spec.json. No epoch finished, so no folder is kept."""
    out = tmp_path / "out"
    line = assert_clean_error(run_cli_in_process(*train_args(out, "--lr", "1000")), "diverged", "train.lr")
    assert "no run folder was kept" in line
    assert not out.exists()


def test_ragged_csv(run_cli_in_process, tmp_path: Path) -> None:
    table = tmp_path / "ragged.csv"
    table.write_text("a,b,c\n1,2,3\n4,5,6\n7,8\n9,10,11\n")
    out = tmp_path / "out"
    line = assert_clean_error(run_cli_in_process(*train_args(out, data=str(table))), "ragged.csv")
    assert "row 4" in line, "the error says which row is ragged"
    assert not out.exists()


def write_idx(path: Path, magic: int, array: np.ndarray) -> None:
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_fake_mnist(folder: Path) -> dict[str, Path]:
    """Four valid gzip IDX files (8x8 images, so a training run would be tiny); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = {}
    for split, n in (("train", 40), ("test", 10)):
        images_name, labels_name = SPLIT_FILES[split]
        write_idx(folder / images_name, IMAGES_MAGIC, rng.integers(0, 256, size=(n, 8, 8)))
        write_idx(folder / labels_name, LABELS_MAGIC, np.arange(n) % 10)
        paths[images_name], paths[labels_name] = folder / images_name, folder / labels_name
    return paths


def test_fake_mnist_folder_is_valid(tmp_path: Path) -> None:
    """The control for the corrupt-IDX cases: uncorrupted, the same folder loads."""
    write_fake_mnist(tmp_path / "mnist")
    splits = load_source(DataConfig(source="mnist", root=str(tmp_path / "mnist"), download=False))
    assert splits.train.x.shape == (40, 1, 8, 8) and splits.test.x.shape == (10, 1, 8, 8)


def truncate_content(path: Path) -> None:
    """A whole gzip stream around an IDX file whose data stop short of what the header promises."""
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[: len(data) - 17]))


def truncate_stream(path: Path) -> None:
    """A download cut off mid-way: the gzip stream itself ends early."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def wrong_magic(path: Path) -> None:
    data = bytearray(gzip.decompress(path.read_bytes()))
    data[2:4] = b"\x08\x02"  # unsigned bytes, but 2 dimensions
    path.write_bytes(gzip.compress(bytes(data)))


@pytest.mark.parametrize(
    ("filename", "corrupt"),
    [
        ("train-images-idx3-ubyte.gz", truncate_content),
        ("train-labels-idx1-ubyte.gz", truncate_stream),
        ("t10k-images-idx3-ubyte.gz", wrong_magic),
        ("t10k-labels-idx1-ubyte.gz", wrong_magic),
    ],
    ids=["truncated-data", "truncated-gzip", "wrong-magic-images", "wrong-magic-labels"],
)
def test_corrupt_idx_file(run_cli_in_process, tmp_path: Path, filename: str, corrupt) -> None:
    paths = write_fake_mnist(tmp_path / "mnist")
    corrupt(paths[filename])
    out = tmp_path / "out"
    args = train_args(out, "--set", f"data.root={tmp_path / 'mnist'}", "--set", "data.download=false", data="mnist")
    assert_clean_error(run_cli_in_process(*args), filename)
    assert not out.exists()


# ------------------------------------------------------------------------------------ inputs to a trained run


@pytest.fixture
def bad_shape_npz(tmp_path: Path) -> Path:
    """7x7 images for a model trained on 8x8 digits."""
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros((10, 7, 7), dtype=np.uint8), y=np.zeros(10, dtype=np.int64))
    return path


@pytest.mark.parametrize("command", ["reconstruct", "encode", "evaluate"])
def test_input_that_does_not_match_the_data_spec(run_cli_in_process, pristine_run: Path, tmp_path: Path,
                                                  bad_shape_npz: Path, command: str) -> None:
    before = folder_digest(pristine_run)
    out = {"reconstruct": ["--out", str(tmp_path / "r.png")], "encode": ["--out", str(tmp_path / "z.npy")],
           "evaluate": ["--k", "5"]}[command]
    result = run_cli_in_process(command, str(pristine_run), "--data", str(bad_shape_npz), *out)
    line = assert_clean_error(result, "bad.npz")
    assert "(1, 7, 7)" in line and "(1, 8, 8)" in line, "the error says what shape was expected"
    assert not (tmp_path / "r.png").exists() and not (tmp_path / "z.npy").exists()
    assert folder_digest(pristine_run) == before


def test_decode_latents_of_the_wrong_width(run_cli_in_process, pristine_run: Path, tmp_path: Path) -> None:
    latents = tmp_path / "z3.npy"
    np.save(latents, np.zeros((5, 3), dtype=np.float32))  # the model's latent_dim is 4
    out = tmp_path / "d.npy"
    result = run_cli_in_process("decode", str(pristine_run), "--latents", str(latents), "--out", str(out))
    line = assert_clean_error(result, "z3.npy")
    assert "4" in line
    assert not out.exists()


def empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def huge_codes(path: Path) -> Path:
    np.save(path, np.full((3, 4), 1e30, dtype=np.float32))
    return path


@pytest.mark.parametrize(("args", "named"), [
    (["sample", "--temperature", "inf", "--out", "{tmp}/s.png"], "--temperature"),
    (["sample", "--temperature", "nan", "--out", "{tmp}/s.png"], "--temperature"),
    (["restore", "--noise", "nan", "--out", "{tmp}/s.png"], "--noise"),
    (["restore", "--noise", "-0.5", "--out", "{tmp}/s.png"], "--noise"),
    (["traverse", "--span", "nan", "--out", "{tmp}/s.png"], "--span"),
    (["decode", "--latents", "{empty}", "--out", "{tmp}/s.png"], "empty.npy"),
    (["decode", "--latents", "{huge}", "--out", "{tmp}/s.png"], "huge.npy"),
], ids=["temperature-inf", "temperature-nan", "noise-nan", "noise-negative", "span-nan", "latents-empty",
        "latents-1e30"])
def test_values_outside_any_meaning_are_refused(run_cli_in_process, pristine_run: Path, tmp_path: Path, args: list[str],
                                                named: str) -> None:
    """Issue 17: `sample --temperature inf`, `restore --noise nan` and codes of 1e30 were accepted
    silently; a 0-byte --latents file exited 130 with no message."""
    files = {"tmp": tmp_path, "empty": empty_file(tmp_path / "empty.npy"), "huge": huge_codes(tmp_path / "huge.npy")}
    command, *rest = [arg.format(**files) for arg in args]
    before = folder_digest(pristine_run)
    assert_clean_error(run_cli_in_process(command, str(pristine_run), *rest), named)
    assert not (tmp_path / "s.png").exists()
    assert folder_digest(pristine_run) == before


def test_weights_of_another_shape_than_the_config_are_a_run_folder_error(run_cli_in_process, pristine_run: Path,
                                                                        tmp_path: Path) -> None:
    """Issue 17: a config.json that disagrees with model.safetensors gave a multi-line RuntimeError."""
    import json

    import vaekit
    from vaekit.errors import RunFolderError

    broken = tmp_path / "broken"
    shutil.copytree(pristine_run, broken)
    config = json.loads((broken / "config.json").read_text())
    config["model"]["latent_dim"] += 1
    (broken / "config.json").write_text(json.dumps(config))
    line = assert_clean_error(run_cli_in_process("sample", str(broken), "--n", "4", "--out", str(tmp_path / "s.png")),
                              "model.safetensors", "config.json")
    assert "shape" in line and not (tmp_path / "s.png").exists()
    with pytest.raises(RunFolderError, match="another shape"):
        vaekit.load(broken)


@pytest.mark.parametrize("damage", [b"\xff\xfe\x00garbage", b"epoch,loss\n1,not-a-number\n", b"epoch\n1,2,3\n"],
                         ids=["binary", "text-in-numbers", "ragged"])
def test_a_damaged_history_costs_the_history_not_the_run(run_cli_in_process, pristine_run: Path, tmp_path: Path,
                                                         damage: bytes) -> None:
    """Issue 17: a corrupt history.csv made the run unloadable (exit 1)."""
    import vaekit

    damaged = Path(shutil.copytree(pristine_run, tmp_path / "damaged"))
    (damaged / "history.csv").write_bytes(damage)
    assert vaekit.load(damaged).history == []
    result = run_cli_in_process("sample", str(damaged), "--n", "4", "--out", str(tmp_path / "s.png"))
    assert result.returncode == 0, result.stderr
    assert "history.csv is damaged" in result.stderr and (tmp_path / "s.png").exists()


def test_sample_from_a_missing_run(run_cli_in_process, tmp_path: Path) -> None:
    out = tmp_path / "s.png"
    assert_clean_error(run_cli_in_process("sample", str(tmp_path / "no-such-run"), "--n", "4", "--out", str(out)),
                       "no-such-run")
    assert not out.exists() and not (tmp_path / "no-such-run").exists()


def test_sample_to_an_unsupported_file_type(run_cli_in_process, pristine_run: Path, tmp_path: Path) -> None:
    before = folder_digest(pristine_run)
    result = run_cli_in_process("sample", str(pristine_run), "--out", str(tmp_path / "s.txt"))
    assert_clean_error(result, "--out", "s.txt")
    assert not (tmp_path / "s.txt").exists()
    assert folder_digest(pristine_run) == before


# ------------------------------------------------------------------------------------ configuration


def test_unknown_preset(run_cli_in_process, tmp_path: Path) -> None:
    out = tmp_path / "out"
    line = assert_clean_error(run_cli_in_process(*train_args(out, "--preset", "nope")), "nope")
    assert "vae" in line, "the error lists the known presets"
    assert not out.exists()


def test_unknown_override_key(run_cli_in_process, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert_clean_error(run_cli_in_process(*train_args(out, "--set", "model.nope=1")), "model.nope")
    assert not out.exists()


def test_override_of_the_wrong_type(run_cli_in_process, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # No --epochs flag here: a flag would win over the override.
    args = ["train", "--data", "digits", "--set", "train.epochs=abc", *TINY, "--out", str(out)]
    line = assert_clean_error(run_cli_in_process(*args), "train.epochs")
    assert "abc" in line
    assert not out.exists()


def test_config_file_with_an_unknown_key(run_cli_in_process, tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("train:\n  epochs: 1\n  learning_rate: 0.01\n")
    out = tmp_path / "out"
    result = run_cli_in_process(*train_args(out, "--config", str(config)))
    assert_clean_error(result, "typo.yaml", "train.learning_rate")
    assert not out.exists()


# ------------------------------------------------------------------------------------ run folders


def test_train_refuses_an_existing_run(run_cli_in_process, pristine_run: Path, tmp_path: Path) -> None:
    existing = Path(shutil.copytree(pristine_run, tmp_path / "existing"))
    before = folder_digest(existing)
    line = assert_clean_error(run_cli_in_process(*train_args(existing)), "existing")
    assert "--resume" in line
    assert folder_digest(existing) == before


def test_resume_without_a_checkpoint(run_cli_in_process, pristine_run: Path, tmp_path: Path) -> None:
    # A run whose training never wrote a checkpoint: only the header files.
    started = tmp_path / "started"
    started.mkdir()
    for name in ("config.json", "data_spec.json"):
        shutil.copy(pristine_run / name, started / name)
    before = folder_digest(started)
    line = assert_clean_error(run_cli_in_process("train", "--out", str(started), "--resume"), "started")
    assert "checkpoint" in line
    assert folder_digest(started) == before


def test_resume_of_a_missing_run(run_cli_in_process, tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    assert_clean_error(run_cli_in_process("train", "--out", str(missing), "--resume"), "missing")
    assert not missing.exists()


# ------------------------------------------------------------------------------------ usage


def test_a_bad_option_value_is_one_line(run_cli_in_process, pristine_run: Path) -> None:
    line = assert_clean_error(run_cli_in_process("sample", str(pristine_run), "--n", "0"), "--n")
    assert "vaekit sample --help" in line


def test_an_unknown_command_is_one_line(run_cli) -> None:
    assert_clean_error(run_cli("nocommand"), "nocommand")


def test_resume_refuses_options_it_would_ignore(run_cli_in_process, run_copy: Path) -> None:
    before = folder_digest(run_copy)
    assert_clean_error(run_cli_in_process("train", "--out", str(run_copy), "--resume", "--lr", "0.1"), "--lr")
    assert folder_digest(run_copy) == before


def test_preset_through_set_is_refused(run_cli_in_process, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert_clean_error(run_cli_in_process(*train_args(out, "--set", "preset=beta-vae")), "--preset")
    assert not out.exists()


def test_bare_command_prints_help_and_succeeds(run_cli_in_process) -> None:
    result = run_cli_in_process()
    assert result.returncode == 0 and "Usage:" in result.stdout and "train" in result.stdout


def test_evaluate_on_an_unknown_device_is_one_line(run_cli_in_process, pristine_run: Path) -> None:
    assert_clean_error(run_cli_in_process("evaluate", str(pristine_run), "--device", "gpu"), "--device")


def test_resume_with_a_negative_epoch_count_is_one_line(run_cli_in_process, run_copy: Path) -> None:
    assert_clean_error(run_cli_in_process("train", "--out", str(run_copy), "--resume", "--epochs", "-1"), "--epochs")
