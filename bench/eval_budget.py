"""How long the end-of-training evaluation takes, with its default budget and without one.

A model is trained briefly (``--train-samples`` images, ``--epochs``, evaluation off), then the
evaluation that `vaekit train` runs at the end is timed: once as it runs by default (within
``eval.max_seconds``, which picks how many test items and importance samples fit) and, with
``--full``, once on the whole test split at ``eval.k`` (what every run paid before the budget, and
what `vaekit evaluate` still does). One CPU thread unless ``--threads`` says otherwise.

    python bench/eval_budget.py --data fashion-mnist --full --out bench/results/eval_budget_fashion.json
    python bench/eval_budget.py --data digits --full --out bench/results/eval_budget_digits.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import vaekit
from vaekit.api import evaluation_budget
from vaekit.config import resolve_config
from vaekit.data.loaders import prepare_data, to_tensors
from vaekit.evaluation.report import evaluate


def timed(run: vaekit.Run, x: torch.Tensor, k: int, batch_size: int, max_seconds: float | None) -> dict:
    started = time.perf_counter()
    metrics = evaluate(run.model, x, k=k, batch_size=batch_size, seed=0, max_seconds=max_seconds)
    return {"seconds": round(time.perf_counter() - started, 2), "budget_seconds": max_seconds,
            "k": metrics["k"], "items": metrics["n_samples"], "of": metrics["n_available"],
            "nll": round(metrics["nll"], 3), "neg_elbo": round(metrics["neg_elbo"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override, repeatable")
    parser.add_argument("--train-samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--full", action="store_true", help="also time the whole test split at eval.k")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = resolve_config(overrides=[f"data.source={args.data}", f"data.max_samples={args.train_samples}",
                                       f"train.epochs={args.epochs}", "train.progress=false", "eval.enabled=false",
                                       f"train.threads={args.threads}", "train.device=cpu", *args.overrides])
    run = vaekit.train(config)
    data = prepare_data(config.data)
    x = to_tensors(data.test, data.spec)["x"]
    result = {"data": args.data, "network": str(type(run.model.encoder).__name__), "threads": args.threads,
              "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
              "default": timed(run, x, config.eval.k, config.eval.batch_size, evaluation_budget(config))}
    if args.full:
        result["full"] = timed(run, x, config.eval.k, config.eval.batch_size, None)
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
