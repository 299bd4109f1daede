"""The scripts in examples/ run as a reader would run them, as ``__main__`` (two epochs here)."""

from __future__ import annotations

import math
import re
import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_minimal_vae_trains_from_the_parts_and_samples(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # In this process (no interpreter start-up): the script reads EPOCHS and prints, nothing else.
    monkeypatch.setenv("EPOCHS", "2")
    runpy.run_path(str(EXAMPLES / "minimal_vae.py"), run_name="__main__")
    stdout = capsys.readouterr().out
    found = re.search(r"epoch 2: -ELBO ([\d.]+) nats \(reconstruction ([\d.]+), KL ([\d.]+)\)", stdout)
    assert found, stdout
    loss, recon, kl = map(float, found.groups())
    assert math.isclose(loss, recon + kl, rel_tol=1e-3) and kl > 0
    assert loss < 45  # 64 ln 2 = 44.4 nats: a fair coin per pixel
    assert "16 samples drawn: (16, 64)" in stdout
