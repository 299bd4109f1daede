"""One family member trained for an epoch on the GPU, as ``bash bench/gpu.sh smoke`` runs each in its
own process (a failed CUDA-graph capture must not decide the next preset's fate): prints one line,
the preset, ok or FAILED, its test -ELBO and what the captured step said (captured, or why not).

    python bench/gpu_smoke.py vae
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path


class Said(logging.Handler):
    """What the capture module logged: captured, or why the step trains eagerly."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def main(name: str) -> None:
    import vaekit

    said = Said()
    for logger in ("vaekit.training.capture", "vaekit.training.trainer"):
        logging.getLogger(logger).setLevel(logging.INFO)
        logging.getLogger(logger).addHandler(said)
    source = "data.source=moses" if name == "seq-vae" else "data.source=digits"
    config = vaekit.resolve_config(preset=name, overrides=[
        source, "data.max_samples=2000", "train.epochs=1", "train.device=cuda", "train.progress=false", "eval.k=5",
        "eval.max_samples=200"])
    try:
        vaekit.train(config, out=f"/tmp/smoke/{name}")
        test = json.loads(Path(f"/tmp/smoke/{name}/metrics.json").read_text())["test"]
        value = test.get("neg_elbo", test.get("recon", float("nan")))  # an autoencoder has no ELBO
        notes = "; ".join(line[:110] for line in said.lines) or "nothing said"
        print(f"{name:<18} ok      test -ELBO (ae: recon) {value:9.2f}  {notes}", flush=True)
    except Exception:
        print(f"{name:<18} FAILED  {'; '.join(said.lines)[:300]}\n{traceback.format_exc()[-1500:]}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
