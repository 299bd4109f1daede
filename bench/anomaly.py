"""One-class anomaly detection on Fashion-MNIST: a VAE per class vs scikit-learn baselines.

For each class c: train on the training images of class c only (``data.classes=[c]``), score all
10,000 test images, and measure AUROC with "label != c" as the anomaly. The VAE's three scores
(reconstruction, -ELBO, importance-sampled NLL) are set against baselines fitted in the same run on
the same training images: PCA reconstruction error (as many components as the VAE has latents),
IsolationForest, and a one-class SVM (RBF kernel, on a seeded subsample of the class's images).

    python bench/anomaly.py --epochs 30 --k 100 --out bench/results/anomaly.json
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
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.svm import OneClassSVM

import vaekit
from vaekit.applications.anomaly import score_samples
from vaekit.data.loaders import prepare_data

VAE_SCORES = ("recon", "elbo", "nll")
BASELINES = ("pca", "iforest", "ocsvm")


def baseline_scores(train: np.ndarray, test: np.ndarray, components: int, svm_samples: int, seed: int) -> dict:
    """Anomaly scores (higher = more anomalous) of the test images under each baseline."""
    pca = PCA(components, random_state=seed).fit(train)
    pca_error = ((test - pca.inverse_transform(pca.transform(test))) ** 2).sum(1)
    forest = IsolationForest(n_estimators=200, random_state=seed).fit(train)
    subset = np.random.default_rng(seed).permutation(len(train))[:svm_samples]
    svm = OneClassSVM(kernel="rbf", gamma="scale", nu=0.1).fit(train[subset])
    return {"pca": pca_error, "iforest": -forest.score_samples(test), "ocsvm": -svm.decision_function(test)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    parser.add_argument("--preset", default="vae")
    parser.add_argument("--network", default="mlp")
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--svm-samples", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="an extra config override, e.g. model.likelihood=gaussian")
    parser.add_argument("--out", type=Path, default=Path("bench/results/anomaly.json"))
    args = parser.parse_args()
    rows = []
    for c in [int(v) for v in args.classes.split(",")]:
        config = vaekit.resolve_config(preset=args.preset, overrides=[
            "data.source=fashion-mnist", f"data.classes=[{c}]", f"model.network={args.network}",
            f"model.latent_dim={args.latent_dim}", f"train.epochs={args.epochs}", "train.batch_size=128",
            "train.lr=1e-3", f"train.seed={args.seed}", "train.progress=false", "eval.enabled=false",
            *args.overrides,
        ])
        started = time.perf_counter()
        run = vaekit.train(config)
        train_seconds = time.perf_counter() - started
        data = prepare_data(config.data)
        test_x = run.to_model_space(data.test.x)
        anomalous = data.test.y != c
        row = {"class": c, "name": (data.test.class_names or [str(c)])[c], "train_images": len(data.train),
               "train_seconds": round(train_seconds, 1)}
        for score in VAE_SCORES:
            started = time.perf_counter()
            values = score_samples(run.model, test_x, score, args.k, args.seed).numpy()
            row[score] = round(float(roc_auc_score(anomalous, values)), 4)
            row[f"{score}_seconds"] = round(time.perf_counter() - started, 1)
        train_flat = run.to_model_space(data.train.x).flatten(1).numpy()
        started = time.perf_counter()
        baselines = baseline_scores(train_flat, test_x.flatten(1).numpy(), args.latent_dim, args.svm_samples,
                                    args.seed)
        row["baseline_seconds"] = round(time.perf_counter() - started, 1)
        for name, values in baselines.items():
            row[name] = round(float(roc_auc_score(anomalous, values)), 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    columns = VAE_SCORES + BASELINES
    mean = {name: round(float(np.mean([r[name] for r in rows])), 4) for name in columns}
    best_vae, best_baseline = max(VAE_SCORES, key=mean.get), max(BASELINES, key=mean.get)
    report = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "torch": torch.__version__},
              "settings": vars(args) | {"out": str(args.out)}, "rows": rows, "mean": mean,
              "best_vae": best_vae, "best_baseline": best_baseline,
              "vae_beats_baselines": mean[best_vae] > mean[best_baseline]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print("\n" + f"{'class':<12}" + "".join(f"{name:>9}" for name in columns))
    for r in rows:
        print(f"{r['name'][:11]:<12}" + "".join(f"{r[name]:>9.4f}" for name in columns))
    print(f"{'mean':<12}" + "".join(f"{mean[name]:>9.4f}" for name in columns))
    print(f"best VAE score {best_vae} {mean[best_vae]:.4f} vs best baseline {best_baseline} "
          f"{mean[best_baseline]:.4f}; wrote {args.out}")


if __name__ == "__main__":
    main()
