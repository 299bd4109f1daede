"""The captured training step against the eager one: same seed, same batches, same loss curve?

Trains each case twice with ``vaekit.train``, once with ``train.capture=off`` (the eager reference)
and once with ``train.capture=on`` (CUDA graphs on a GPU, the device-side epoch on the CPU), and
prints both curves (the training loss per epoch) and their largest relative difference. Objectives
with a discriminator (factor-vae, vae-gan) are trained captured only: they must finish with a finite
loss. Writes JSON.

    python bench/capture_check.py --device cuda --samples 53760 --out bench/results/capture_check.json
    python bench/capture_check.py --device cpu --data digits --quick --out /tmp/capture_check.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
import traceback
from pathlib import Path

import torch

import vaekit


class Lines(logging.Handler):
    """Keeps the training log's messages about capture (captured, or why not)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "captured" in message or "eagerly" in message:
            self.messages.append(message)


def train(preset: str, overrides: list[str], capture: str) -> dict:
    lines = Lines()
    logging.getLogger("vaekit").addHandler(lines)
    start = time.perf_counter()
    try:
        config = vaekit.resolve_config(preset=preset, overrides=[*overrides, f"train.capture={capture}",
                                                                 "train.progress=false", "eval.enabled=false"])
        run = vaekit.train(config)
        losses = [row["loss"] for row in run.history]
        return {"loss": losses, "samples_per_s": [row["samples_per_s"] for row in run.history],
                "finite": all(math.isfinite(v) for v in losses), "log": lines.messages,
                "seconds": round(time.perf_counter() - start, 2)}
    except Exception as error:  # a report, not a crash: the other cases still run
        traceback.print_exc()
        return {"error": f"{type(error).__name__}: {error}", "log": lines.messages, "finite": False}
    finally:
        logging.getLogger("vaekit").removeHandler(lines)


def max_relative_difference(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) / max(abs(x), 1e-12) for x, y in zip(a, b, strict=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=None,
                        help="train on this many samples; a multiple of the batch size (53760 = 420 x 128) gives "
                             "the eager loop the whole batches the captured one takes")
    parser.add_argument("--quick", action="store_true", help="a few hundred samples, one epoch (a test of the script)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/capture_check.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    common = [f"data.source={args.data}", f"train.device={args.device}", "train.seed=0"]
    epochs = 1 if args.quick else args.epochs
    if args.samples:
        common.append(f"data.max_samples={args.samples}")
    if args.quick:
        common += ["data.max_samples=320", "train.batch_size=64"]
    report: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "torch": torch.__version__,
                    "device": args.device, "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
                    "cases": {}}
    ok = True
    for network in ("mlp", "conv"):
        overrides = [*common, f"model.network={network}", f"train.epochs={epochs}"]
        eager, captured = train("vae", overrides, "off"), train("vae", overrides, "on")
        case = {"eager": eager, "captured": captured}
        if "loss" in eager and "loss" in captured:
            case["max_relative_difference"] = max_relative_difference(eager["loss"], captured["loss"])
        report["cases"][f"vae-{network}"] = case
        ok &= captured["finite"] and eager["finite"]
        print(f"vae {network}: eager {eager.get('loss')} captured {captured.get('loss')} "
              f"max rel diff {case.get('max_relative_difference')}", flush=True)
        print(f"  captured log: {captured['log']}", flush=True)
    for preset in ("factor-vae", "vae-gan"):
        network = "mlp" if preset == "factor-vae" else "conv"
        result = train(preset, [*common, f"model.network={network}", "train.epochs=1"], "on")
        report["cases"][preset] = {"captured": result}
        ok &= result["finite"]
        print(f"{preset}: captured {result.get('loss', result.get('error'))}  log: {result['log']}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
