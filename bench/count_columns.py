"""Counts vs continuous columns: the digits as a raw 64-column table of pixel levels 0..16.

Half the entries removed completely at random (seeded); a VAE (MIWAE bound, 8 latents, MLP
128-128, 300 epochs) trained on the table with holes, once with every column a count (negative
binomial, what vaekit infers for these columns) and once with every column continuous (Gaussian);
RMSE of the importance-sampled imputation on the removed entries, in standardised units.

    python bench/count_columns.py --out bench/results/count_columns.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

import vaekit
from vaekit.applications.impute import impute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("bench/results/count_columns.json"))
    args = parser.parse_args()
    x = load_digits().data.astype(np.float64)
    mean, std = x.mean(0), np.maximum(x.std(0), 1e-8)
    missing = np.random.default_rng(args.seed).random(x.shape) < args.rate
    missing[missing.all(1), 0] = False
    holed = np.where(missing, np.nan, x)
    rmse = {}
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "digits_holes.npy"
        np.save(source, holed.astype(np.float32))
        for kind in ("count", "continuous"):
            types = "{" + ", ".join(f"x{j}: {kind}" for j in range(x.shape[1])) + "}"
            config = vaekit.resolve_config(preset="iwae", overrides=[
                f"data.source={source}", "data.val_fraction=0", "data.test_fraction=0", f"data.column_types={types}",
                f"train.epochs={args.epochs}", "train.batch_size=64", f"train.seed={args.seed}", "model.latent_dim=8",
                "model.hidden=[128, 128]", "train.progress=false", "eval.enabled=false"])
            filled = impute(vaekit.train(config), holed, k=100).astype(np.float64)
            error = ((filled - mean) / std - (x - mean) / std)[missing]
            rmse[kind] = round(float(np.sqrt(np.mean(error**2))), 4)
            print(kind, rmse[kind], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": " ".join([Path(sys.executable).name, *sys.argv]),
                                    "settings": vars(args) | {"out": str(args.out)}, "rmse": rmse}, indent=2) + "\n")


if __name__ == "__main__":
    main()
