"""Tabular anomaly detection: breast cancer, malignant tumours as the anomalies.

Each seed holds out 30% of the benign rows; the detectors are fitted on the other 70% (benign only,
standardised with their statistics) and rank the held-out benign rows against all 212 malignant
ones. AUROC of VAEOutlierDetector (importance-sampled log-likelihood) vs IsolationForest and
LocalOutlierFactor (novelty mode), in one run, mean and std over seeds. (bench/tables_peers.py
--task anomaly runs the same split on more tables against PyOD, with as many malignant rows as
held-out benign ones.)

    python bench/table_anomaly.py --seeds 5 --out bench/results/table_anomaly.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import LocalOutlierFactor

from vaekit.estimators import VAEOutlierDetector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers_anomaly import split_normal  # noqa: E402  (bench/tables_peers.py's split, every anomaly kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--latent-dim", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("bench/results/table_anomaly.json"))
    args = parser.parse_args()
    data = load_breast_cancer()
    benign, malignant = data.data[data.target == 1], data.data[data.target == 0]
    results: dict[str, list[float]] = {}
    for seed in range(args.seeds):
        train, test, is_anomaly = split_normal(benign, malignant, seed, match=False)  # all malignant rows
        detectors = {
            "vaekit": VAEOutlierDetector(args.latent_dim, hidden=(64, 64), max_epochs=args.epochs, random_state=seed),
            "isolation_forest": IsolationForest(n_estimators=200, random_state=seed),
            "local_outlier_factor": LocalOutlierFactor(n_neighbors=20, novelty=True),
        }
        for name, detector in detectors.items():
            detector.fit(train)
            results.setdefault(name, []).append(float(roc_auc_score(is_anomaly, -detector.score_samples(test))))
        print(json.dumps({"seed": seed, **{k: round(v[-1], 4) for k, v in results.items()}}), flush=True)
    summary = {k: {"mean": round(float(np.mean(v)), 4), "std": round(float(np.std(v)), 4)} for k, v in results.items()}
    report = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "torch": torch.__version__},
              "settings": vars(args) | {"out": str(args.out)}, "auroc": summary, "per_seed": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, value in summary.items():
        print(f"{name:<22} AUROC {value['mean']:.4f} ± {value['std']:.4f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
