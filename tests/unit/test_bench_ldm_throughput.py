"""bench/ldm_throughput.py (gpu.sh's ldm step) runs the full patch-gan step and reports images/s."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import ldm_throughput  # noqa: E402


def test_a_tiny_kl_f8_reports_its_throughput(tmp_path: Path) -> None:
    out = tmp_path / "ldm.json"
    result = ldm_throughput.main(["--side", "16", "--channels", "8,8,8,8", "--layers", "1", "--groups", "8",
                                  "--batch", "4", "--images", "8", "--epochs", "2", "--device", "cpu",
                                  "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["images_per_second"] > 0 and result["parameters"] > 0
    assert result["disc_loss"] > 0  # the discriminator played from the first step (model.disc_start=0)
