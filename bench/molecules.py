"""Molecule generation on MOSES (Polykovskiy et al. 2020): a SMILES-VAE and a SELFIES-VAE (the seq-vae
preset) trained on a seeded subset of the MOSES training set, then 10,000 molecules sampled (z ~ N(0, I),
tokens drawn from the decoder) and measured as MOSES measures them: validity, uniqueness@1k and @10k,
novelty against the whole MOSES training set, IntDiv (Morgan fingerprints), FCD (ChemNet, fcd_torch)
and the Wasserstein distances of QED, logP and molecular weight, both against 10,000 test molecules.
Needs the chem extra (RDKit, selfies, fcd_torch) and the MOSES files (`pip install --no-deps molsets`;
read, never imported).

    python bench/molecules.py --train 50000 --epochs 8 --out bench/results/moses.json

On a GPU, the whole training set under a time budget (samples and the trained runs are written beside
the JSON; where RDKit is missing the measuring is left for ``--evaluate``, on any machine with it):

    python bench/molecules.py --train 0 --epochs 50 --max-minutes 6 --batch-size 512 --device cuda \
        --kl-warmup-epochs 1 --tokens smiles --out bench/results/moses_gpu_smiles.json
    python bench/molecules.py --evaluate bench/results/moses_gpu_smiles.json

The MOSES VAE baseline (full set, GPU): validity 0.977, unique@10k 0.998, novelty 0.695, IntDiv 0.856.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import torch

import vaekit
from vaekit.applications.generate import sample_sequences
from vaekit.config import resolve_config
from vaekit.data.sources.text import load_moses

BASELINE = {"validity": 0.977, "unique_at_10k": 0.998, "novelty": 0.695, "int_div": 0.856, "fcd_test": 0.099}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", default="smiles,selfies", help="comma-separated: smiles, selfies")
    parser.add_argument("--train", type=int, default=50_000, help="training molecules (a seeded subset; 0: all)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--max-minutes", type=float, default=None, help="training time budget per model")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    parser.add_argument("--lr", type=float, default=None, help="default: the preset's")
    parser.add_argument("--kl-warmup-epochs", type=int, default=None, help="default: the preset's (10)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--evaluate", type=Path, default=None,
                        help="measure the samples of an earlier run's JSON (needs RDKit) and update it")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default="bench/results/moses_runs", help="folder for the run folders")
    parser.add_argument("--out", default="bench/results/moses.json")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="an extra config override, e.g. model.beta=0.05 (repeatable)")
    parser.add_argument("--no-measure", action="store_true",
                        help="leave the measuring to --evaluate even where RDKit is installed")
    args = parser.parse_args()
    if args.evaluate is not None:
        return evaluate_record(args.evaluate)
    torch.manual_seed(args.seed)
    measure = importlib.util.find_spec("rdkit") is not None and not args.no_measure
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    started = time.time()
    splits = load_moses(None)
    print(f"MOSES read in {time.time() - started:.0f} s: {len(splits.train):,} train, {len(splits.test):,} test",
          flush=True)
    known, reference = moses_references(splits, args.seed) if measure else (None, None)

    results = {}
    for tokens in args.tokens.split(","):
        folder = Path(args.runs) / tokens
        if folder.exists():
            shutil.rmtree(folder)
        overrides = [
            "data.source=moses", f"data.tokens={tokens}", f"train.epochs={args.epochs}", f"train.seed={args.seed}",
            "train.progress=false", f"train.device={args.device}", "eval.k=20", "eval.max_samples=2000"]
        if args.train:
            overrides.append(f"data.max_samples={args.train}")
        for key, value in (("train.max_minutes", args.max_minutes), ("train.batch_size", args.batch_size),
                           ("train.lr", args.lr), ("train.kl_warmup_epochs", args.kl_warmup_epochs)):
            if value is not None:
                overrides.append(f"{key}={value}")
        config = resolve_config(preset="seq-vae", overrides=[*overrides, *args.overrides])
        begin = time.time()
        run = vaekit.train(config, out=folder)
        train_seconds = time.time() - begin
        begin = time.time()
        drawn = sample_sequences(run, args.samples, seed=args.seed, decoding="sample")
        sample_seconds = time.time() - begin
        samples_file = out.with_name(f"{out.stem}_{tokens}_samples.txt")
        samples_file.write_text("\n".join(drawn) + "\n")
        with tarfile.open(out.with_name(f"{out.stem}_{tokens}_run.tar.gz"), "w:gz") as tar:  # the run, no checkpoint
            tar.add(folder, arcname=tokens, filter=lambda m: None if "/checkpoint" in m.name else m)
        metrics = json.loads((folder / "metrics.json").read_text())["test"]
        rows = (folder / "history.csv").read_text().strip().splitlines()
        results[tokens] = {
            "train_seconds": round(train_seconds, 1), "sample_seconds": round(sample_seconds, 1),
            "epochs_run": len(rows) - 1, "history_last": rows[-1], "history_header": rows[0],
            "training_molecules": args.train or len(splits.train),
            "test_nll": metrics["nll"], "test_perplexity": metrics["perplexity"], "test_kl": metrics["kl"],
            "active_units": metrics["active_units"], "mutual_information": metrics["mutual_information"],
            "vocabulary": len(run.spec.vocabulary), "samples_file": samples_file.name, "examples": drawn[:10],
        }
        if measure:
            results[tokens].update(measured(drawn, known, reference, args.seed))
        print(f"{tokens}: NLL {metrics['nll']:.2f}, KL {metrics['kl']:.2f}, training {train_seconds:.0f} s, "
              f"{results[tokens]['epochs_run']} epochs", flush=True)

    record = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
        "settings": vars(args), "baseline_moses_vae": BASELINE, "results": results,
    }
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


def moses_references(splits, seed: int) -> tuple[set[str], list[str]]:
    """The whole training set (MOSES stores canonical SMILES: novelty against all 1.58 M) and 10,000
    canonical test molecules for the property distances."""
    from vaekit.evaluation.molecules import canonical

    rng = np.random.default_rng(seed)
    reference = [s for s in canonical(rng.choice(splits.test.x, 10_000, replace=False).tolist()) if s]
    return set(splits.train.x.tolist()), reference


def measured(drawn: list[str], known: set[str], reference: list[str], seed: int) -> dict:
    from vaekit.evaluation.molecules import evaluate_molecules

    report = evaluate_molecules(drawn, train=known, reference=reference, seed=seed).to_dict()
    print({k: round(v, 3) for k, v in report.items() if isinstance(v, float)}, flush=True)
    return report


def evaluate_record(path: Path) -> None:
    """Measure the samples an earlier run wrote beside ``path`` (trained where RDKit was missing)."""
    record = json.loads(path.read_text())
    known, reference = moses_references(load_moses(None), record["settings"]["seed"])
    for tokens, result in record["results"].items():
        drawn = (path.parent / result["samples_file"]).read_text().splitlines()
        print(tokens, end=": ")
        result.update(measured(drawn, known, reference, record["settings"]["seed"]))
    path.write_text(json.dumps(record, indent=2))
    print(f"updated {path}")


if __name__ == "__main__":
    main()
