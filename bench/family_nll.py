"""Test NLL on Fashion-MNIST at equal epochs: vae vs iwae vs vamp vs hvae (and any other preset).

Every model has the same MLP widths (784-512-256 encoder, mirrored decoder), 32 latents per
stochastic layer, Bernoulli likelihood, Adam, batch size and epochs; each is scored on the official
10,000 test images by the importance-sampled bound with k samples (Burda et al. 2016), the
estimator of `vaekit evaluate`.

    python bench/family_nll.py --epochs 10 --k 1000 --out bench/results/family_nll.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

import vaekit
from vaekit.data.loaders import prepare_data, to_tensors
from vaekit.evaluation.report import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="vae,iwae,vamp,hvae")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="an extra config override for every preset, e.g. train.kl_warmup=linear")
    parser.add_argument("--out", type=Path, default=Path("bench/results/family_nll.json"))
    args = parser.parse_args()
    rows = []
    for preset in args.presets.split(","):
        config = vaekit.resolve_config(preset=preset, overrides=[
            f"data.source={args.data}", "model.network=mlp", "model.hidden=[512, 256]", "model.latent_dim=32",
            "model.likelihood=bernoulli", f"train.epochs={args.epochs}", "train.batch_size=128", "train.lr=1e-3",
            f"train.seed={args.seed}", "train.progress=false", "eval.enabled=false", *args.overrides,
        ])
        started = time.perf_counter()
        run = vaekit.train(config)
        seconds = time.perf_counter() - started
        data = prepare_data(config.data)
        test = to_tensors(data.test, data.spec)
        metrics = evaluate(run.model, test["x"], k=args.k, seed=args.seed, y=test.get("y"))
        row = {"preset": preset, "overrides": args.overrides, "epochs_trained": len(run.history),
               "parameters": sum(p.numel() for p in run.model.parameters()),
               "train_seconds": round(seconds, 1), "test_nll": round(metrics["nll"], 3),
               "test_neg_elbo": round(metrics["neg_elbo"], 3), "active_units": metrics["active_units"],
               "bits_per_dim": round(metrics.get("bits_per_dim", float("nan")), 4)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    report = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "torch": torch.__version__},
              "epochs": args.epochs, "k": args.k, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'preset':<10} {'test NLL':>10} {'-ELBO':>10} {'active':>7} {'train s':>8}")
    for r in rows:
        print(f"{r['preset']:<10} {r['test_nll']:>10.2f} {r['test_neg_elbo']:>10.2f} {r['active_units']:>7} "
              f"{r['train_seconds']:>8.0f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
