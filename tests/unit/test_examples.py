"""The scripts in examples/ run as a reader would run them (one epoch here)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_minimal_vae_trains_from_the_parts_and_samples() -> None:
    env = {**os.environ, "EPOCHS": "2", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    result = subprocess.run([sys.executable, str(EXAMPLES / "minimal_vae.py")], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    found = re.search(r"epoch 2: -ELBO ([\d.]+) nats \(reconstruction ([\d.]+), KL ([\d.]+)\)", result.stdout)
    assert found, result.stdout
    loss, recon, kl = map(float, found.groups())
    assert math.isclose(loss, recon + kl, rel_tol=1e-3) and kl > 0
    assert loss < 45  # 64 ln 2 = 44.4 nats: a fair coin per pixel
    assert "16 samples drawn: (16, 64)" in result.stdout
