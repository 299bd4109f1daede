"""Molecule generation on MOSES (Polykovskiy et al. 2020): a SMILES-VAE and a SELFIES-VAE (the seq-vae
preset) trained on a seeded subset of the MOSES training set, then 10,000 molecules sampled (z ~ N(0, I),
tokens drawn from the decoder) and measured as MOSES measures them: validity, uniqueness@1k and @10k,
novelty against the whole MOSES training set, IntDiv (Morgan fingerprints), and the Wasserstein
distances of QED, logP and molecular weight to 10,000 test molecules. Needs the chem extra (RDKit,
selfies) and the MOSES files (`pip install --no-deps molsets`; read, never imported).

    python bench/molecules.py --train 50000 --epochs 8 --out bench/results/moses.json

The MOSES VAE baseline (full set, GPU): validity 0.977, unique@10k 0.998, novelty 0.695, IntDiv 0.856.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import vaekit
from vaekit.applications.generate import sample_sequences
from vaekit.config import resolve_config
from vaekit.data.sources.text import load_moses
from vaekit.evaluation.molecules import canonical, evaluate_molecules

BASELINE = {"validity": 0.977, "unique_at_10k": 0.998, "novelty": 0.695, "int_div": 0.856}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", default="smiles,selfies", help="comma-separated: smiles, selfies")
    parser.add_argument("--train", type=int, default=50_000, help="training molecules (a seeded subset)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default="bench/results/moses_runs", help="folder for the run folders")
    parser.add_argument("--out", default="bench/results/moses.json")
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    started = time.time()
    splits = load_moses(None)
    known = set(splits.train.x.tolist())  # MOSES stores canonical SMILES: novelty against all 1.58 M
    rng = np.random.default_rng(args.seed)
    reference = [s for s in canonical(rng.choice(splits.test.x, 10_000, replace=False).tolist()) if s]
    print(f"MOSES read in {time.time() - started:.0f} s: {len(splits.train):,} train, {len(splits.test):,} test",
          flush=True)

    results = {}
    for tokens in args.tokens.split(","):
        folder = Path(args.runs) / tokens
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        config = resolve_config(preset="seq-vae", overrides=[
            "data.source=moses", f"data.tokens={tokens}", f"data.max_samples={args.train}",
            f"train.epochs={args.epochs}", f"train.seed={args.seed}", "train.progress=false",
            "eval.k=20", "eval.max_samples=2000"])
        begin = time.time()
        run = vaekit.train(config, out=folder)
        train_seconds = time.time() - begin
        begin = time.time()
        drawn = sample_sequences(run, args.samples, seed=args.seed, decoding="sample")
        sample_seconds = time.time() - begin
        report = evaluate_molecules(drawn, train=known, reference=reference, seed=args.seed)
        metrics = json.loads((folder / "metrics.json").read_text())["test"]
        results[tokens] = {
            **report.to_dict(), "train_seconds": round(train_seconds, 1), "sample_seconds": round(sample_seconds, 1),
            "test_nll": metrics["nll"], "test_perplexity": metrics["perplexity"], "test_kl": metrics["kl"],
            "active_units": metrics["active_units"], "mutual_information": metrics["mutual_information"],
            "vocabulary": len(run.spec.vocabulary), "examples": drawn[:10],
        }
        shown = {k: round(v, 3) for k, v in report.to_dict().items() if isinstance(v, float)}
        print(f"{tokens}: {shown} (training {train_seconds:.0f} s)", flush=True)

    record = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
        "settings": vars(args), "baseline_moses_vae": BASELINE, "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
