"""The reproduction suite's driver (bench/reproduce.py): its plan cannot overrun the GPU window, its
budget fractions are the papers' arithmetic, and ``--quick`` runs every part end to end on a CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import reproduce  # noqa: E402


def test_every_process_ends_before_the_suite_deadline(tmp_path):
    budget = reproduce.gpu_budget(9.5)
    jobs = reproduce.plan_jobs(budget, tmp_path)
    names = {job["name"] for job in jobs}
    assert {"moses_smiles", "moses_selfies", "family_vae", "family_hvae"} <= names
    assert sum(name.startswith("dsprites_") for name in names) == 6  # one lane per (protocol, model)
    assert all(job["limit"] < 9.5 * 60 for job in jobs)
    for job in jobs:  # every training has a time limit inside its process's
        argv = " ".join(job["argv"])
        assert "--max-minutes" in argv or "train.max_minutes=" in argv or "--deadline" in argv


def test_budget_fractions_are_the_papers_arithmetic():
    budget = asdict(reproduce.gpu_budget(9.5))
    chen, kim = reproduce.PROTOCOLS["chen2018"], reproduce.PROTOCOLS["kim2018"]
    assert chen.paper_steps == 18_000  # 50 epochs of 737,280 at batch 2048
    assert reproduce.planned_fraction(chen, budget) == pytest.approx(1.0)
    assert reproduce.planned_fraction(kim, budget) == pytest.approx(2 * 11_520 / 300_000)


def test_summary_and_table_from_rows(capsys):
    rows = [{"protocol": "chen2018", "model": "vae", "seed": s, "budget_fraction": 1.0, "mig": m, "factor_vae": f}
            for s, m, f in ((0, 0.1, 0.6), (1, 0.3, 0.8))]
    summary = reproduce.summarise(rows)
    assert summary[0]["seeds"] == 2 and summary[0]["mig"]["mean"] == pytest.approx(0.2)
    report = {"budget": {"dsprites_images": None}, "dsprites": {"summary": summary}, "moses": {}, "family": {},
              "jobs": {"moses_smiles": {"exit": 124, "timed_out": True, "log_tail": "cut"}}, "wall_seconds": 1.0}
    reproduce.print_table(report)
    printed = capsys.readouterr().out
    assert "100% of the paper's" in printed and "0.200 ± 0.141" in printed
    assert "moses_smiles FAILED (exit 124, timed out)" in printed


@pytest.mark.slow
def test_quick_runs_every_part_on_the_cpu(tmp_path):
    """About 100 s on a busy 2-core machine: every part's process, one JSON, the table."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "reproduce.py"), "--quick", "--out", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "reproduce.json").read_text())
    assert all(state["exit"] == 0 for state in report["jobs"].values()), report["jobs"]
    assert {(e["protocol"], e["model"]) for e in report["dsprites"]["summary"]} == {
        (p.name, m) for p in reproduce.PROTOCOLS.values() for m in p.models}
    assert set(report["moses"]) == {"smiles", "selfies"} and set(report["family"]) == {"vae", "hvae"}
    assert "of the paper's" in done.stdout
