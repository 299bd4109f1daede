"""One path from a config to a run folder (issue 19): ``vaekit.train`` and ``vaekit train`` write the
same folder, and ``vaekit evaluate`` is the evaluation training ends with (it honours eval.max_samples)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

import vaekit

CONFIG = """\
data:
  source: digits
model:
  hidden: [32]
  latent_dim: 4
train:
  epochs: 2
  progress: false
eval:
  k: 10
  max_seconds: null
"""
TIMINGS = ("train_seconds", "samples_per_s")  # wall-clock columns of history.csv


def _files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def _json(path: Path, drop: tuple[str, ...] = ()) -> dict:
    return {key: value for key, value in json.loads(path.read_text()).items() if key not in drop}


def _history(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return [{k: v for k, v in row.items() if k not in TIMINGS} for row in csv.DictReader(handle)]


def test_python_and_cli_write_the_same_run_folder(invoke, data_store: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(CONFIG)
    a, b = tmp_path / "python", tmp_path / "cli"
    monkeypatch.setenv("VAEKIT_DATA", str(data_store))
    vaekit.train(vaekit.resolve_config(config_file=config), out=a)
    invoke(["train", "--config", config, "--out", b])
    assert _files(a) == _files(b)
    assert "figures/loss.png" in _files(a)
    assert _json(a / "config.json", ("versions",)) == _json(b / "config.json", ("versions",))
    assert _json(a / "data_spec.json") == _json(b / "data_spec.json")
    weights_a, weights_b = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    assert all(weights_a[key].equal(weights_b[key]) for key in weights_a)
    assert _json(a / "metrics.json") == _json(b / "metrics.json")
    assert _history(a / "history.csv") == _history(b / "history.csv")


def test_evaluate_honours_eval_max_samples(invoke, pristine_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for path in pristine_run.iterdir():
        if path.is_file():
            (run / path.name).write_bytes(path.read_bytes())
    config = json.loads((run / "config.json").read_text())
    config["eval"]["max_samples"] = 50
    (run / "config.json").write_text(json.dumps(config))
    invoke(["evaluate", run, "--k", "5"])
    entry = json.loads((run / "metrics.json").read_text())["evaluate"]
    assert entry["n_samples"] == 50 and entry["n_available"] == 50 and entry["k"] == 5
