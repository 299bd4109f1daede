"""bench/eval_nll_speed.py runs (its --quick mode) and times what it says: the evaluation as it is
and as it was before issue 18 are the same estimator, so where their chunks draw the same noise
(a few small images: one chunk each) they give the same NLL."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import eval_nll_speed  # noqa: E402


def test_quick_mode_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "eval_nll_speed.json"
    eval_nll_speed.main(["--quick", "--before", "--floor", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["items"] == 16 and report["k"] == 20
    assert set(report["variants"]) == {"after", "before", "decoder-only"}
    for entry in report["variants"].values():
        assert entry["best_seconds"] > 0 and entry["projected_seconds"] > 0
    after, before = report["variants"]["after"], report["variants"]["before"]
    assert after["nll"] == pytest.approx(before["nll"], rel=1e-5)
    assert after["neg_elbo"] == pytest.approx(before["neg_elbo"], rel=1e-5)
    assert report["plan"]["pilot_projected_seconds"] > 0
