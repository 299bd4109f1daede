"""Latent optimisation of QED on MOSES (Gómez-Bombarelli et al. 2018): the seq-vae preset with a
property head (``data.properties``) trained on a seeded subset of the MOSES training set, then, for
test molecules as seeds, gradient ascent of the head's QED in z (`vaekit optimize`), each decoded
molecule measured with RDKit. The control spends the same number of decodings on random neighbours
of the seed's code (z0 + sigma * eps), so the gain of following the gradient is visible.

    python bench/property_optimization.py --train 20000 --epochs 6 --out bench/results/property_opt.json

Needs the chem extra (RDKit, selfies) and the MOSES files (`pip install --no-deps molsets`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import vaekit
from vaekit.applications.generate import sample_sequences
from vaekit.applications.optimize import SEED_STEP, best, optimize_property
from vaekit.config import resolve_config
from vaekit.data import properties
from vaekit.data.sources.text import load_moses
from vaekit.evaluation.molecules import canonical


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", default="selfies")
    parser.add_argument("--train", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (1 on a machine shared with "
                        "other work: OpenMP teams stall when a core is taken)")
    parser.add_argument("--seeds", type=int, default=20, help="test molecules to start from")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--prior-weight", type=float, default=0.05)
    parser.add_argument("--sigma", type=float, default=0.5, help="the control's neighbourhood")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", default="bench/results/property_opt_run")
    parser.add_argument("--out", default="bench/results/property_opt.json")
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    folder = Path(args.run)
    if folder.exists():
        shutil.rmtree(folder)
    overrides = ["data.source=moses", f"data.tokens={args.tokens}", f"data.max_samples={args.train}",
                 "data.properties=[qed,logp]", f"train.epochs={args.epochs}", f"train.seed={args.seed}",
                 "train.progress=false", f"train.device={args.device}", "eval.k=20", "eval.max_samples=2000"]
    if args.max_minutes:
        overrides.append(f"train.max_minutes={args.max_minutes}")
    if args.threads:
        overrides.append(f"train.threads={args.threads}")
        torch.set_num_threads(args.threads)
    begin = time.time()
    run = vaekit.train(resolve_config(preset="seq-vae", overrides=overrides), out=folder)
    train_seconds = time.time() - begin
    metrics = json.loads((folder / "metrics.json").read_text())["test"]
    print(f"trained in {train_seconds:.0f} s; property R^2 {metrics['property_r2']}", flush=True)

    test = load_moses(None).test.x
    rng = np.random.default_rng(args.seed)
    seeds = rng.choice(test, args.seeds, replace=False).tolist()
    decodes = args.steps // args.every + 1
    rows = []
    for i, smiles in enumerate(seeds):
        start = float(properties.compute([smiles], ["qed"])[0, 0])
        path = optimize_property(run, smiles, "qed", args.steps, args.lr, args.prior_weight, args.every)
        path = [s for s in path if s.step != SEED_STEP]  # the decodings only, as many as the control's
        top = best(path)
        z0 = run.encode_all(np.array([smiles], dtype=object))[0]
        noise = torch.randn(decodes, z0.shape[1], generator=torch.Generator().manual_seed(args.seed + i))
        neighbours = sample_sequences(run, decodes, decoding="greedy", z=z0 + args.sigma * noise)
        measured = properties.compute(neighbours, ["qed"])[:, 0]
        rows.append({
            "seed": smiles, "seed_qed": start, "reconstruction": path[0].smiles,
            "written_back": canonical([path[0].smiles]) == canonical([smiles]),
            "gradient_best_qed": None if top is None else top.measured,
            "gradient_best": None if top is None else top.smiles,
            "gradient_valid_share": sum(s.valid for s in path) / len(path),
            "gradient_predicted": [round(s.predicted, 4) for s in path],
            "gradient_distinct": len({s.smiles for s in path}),
            "control_best_qed": None if np.isnan(measured).all() else float(np.nanmax(measured)),
            "control_valid_share": float(np.mean(~np.isnan(measured))),
        })
        print(f"{i + 1:>3}: QED {start:.3f} -> gradient {rows[-1]['gradient_best_qed']}, "
              f"control {rows[-1]['control_best_qed']}", flush=True)

    def gains(key: str) -> list[float]:
        return [(r[key] if r[key] is not None else 0.0) - r["seed_qed"] for r in rows]

    summary = {
        "seed_qed_mean": statistics.mean(r["seed_qed"] for r in rows),
        "gradient_best_qed_mean": statistics.mean(r["gradient_best_qed"] or 0.0 for r in rows),
        "control_best_qed_mean": statistics.mean(r["control_best_qed"] or 0.0 for r in rows),
        "gradient_improved_share": float(np.mean([g > 0 for g in gains("gradient_best_qed")])),
        "control_improved_share": float(np.mean([g > 0 for g in gains("control_best_qed")])),
        "gradient_gain_median": statistics.median(gains("gradient_best_qed")),
        "control_gain_median": statistics.median(gains("control_best_qed")),
        "predicted_rise_median": statistics.median(r["gradient_predicted"][-1] - r["gradient_predicted"][0]
                                                   for r in rows),
        "gradient_valid_share": statistics.mean(r["gradient_valid_share"] for r in rows),
        "written_back_share": statistics.mean(r["written_back"] for r in rows),
        "decodes_per_seed": decodes,
    }
    record = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
        "settings": vars(args), "train_seconds": round(train_seconds, 1),
        "test": {k: metrics[k] for k in ("nll", "perplexity", "kl", "active_units", "property_r2")},
        "summary": summary, "seeds": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
