"""Anomalies, vaekit vs PyOD (VAE, IForest, ECOD): the anomaly task of bench/tables_peers.py.

Per labelled table, some classes are normal and the rest are the anomalies (peer_tables.ANOMALY).
Per seed: 70% of the normal rows fit each detector (standardised with their statistics:
StandardScaler, which leaves a column constant in training at scale 1); the other 30% of the
normal rows and as many anomalies (drawn with the seed; all of them when there are fewer) are
ranked; AUROC with the anomalies as positives. A detector whose scores are not all finite gets
AUROC NaN and the count of its non-finite scores; one that raises gets AUROC NaN and its error.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from peer_tables import ANOMALY, TABLES, numeric_features
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

DEFAULT_TABLES = "breast_cancer,wine,digits,iris,penguins"
CONTENDERS = ("vaekit", "pyod_vae", "pyod_iforest", "pyod_ecod")


def split_normal(normal: np.ndarray, anomalies: np.ndarray, seed: int, train_share: float = 0.7,
                 match: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train rows, test rows, test labels with 1 = anomaly), standardised with the train rows'
    statistics; ``match``: as many anomalies as held-out normal rows (else all of them)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(normal))
    cut = int(train_share * len(normal))
    held = len(normal) - cut
    if match and len(anomalies) > held:
        anomalies = anomalies[rng.choice(len(anomalies), held, replace=False)]
    scaler = StandardScaler().fit(normal[order[:cut]])
    test = scaler.transform(np.concatenate([normal[order[cut:]], anomalies]))
    return scaler.transform(normal[order[:cut]]), test, np.r_[np.zeros(held), np.ones(len(anomalies))]


def detector(name: str, seed: int, epochs: int):
    """A fitted-on-call detector: (fit, anomaly score where higher = more anomalous)."""
    if name == "vaekit":
        from vaekit.estimators import VAEOutlierDetector

        model = VAEOutlierDetector(max_epochs=epochs, random_state=seed)  # defaults: 8 latents, 128-128, batch 32
        return model, lambda x: -model.score_samples(x)
    if name == "pyod_vae":
        from pyod.models.vae import VAE

        model = VAE(epoch_num=epochs, random_state=seed, verbose=0, device="cpu")
    elif name == "pyod_iforest":
        from pyod.models.iforest import IForest

        model = IForest(random_state=seed)
    else:
        from pyod.models.ecod import ECOD

        model = ECOD()
    return model, model.decision_function


def run_anomaly(args, log=print) -> list[dict]:
    rows = []
    contenders = args.contenders.split(",") if args.contenders else list(CONTENDERS)
    for table_name in (args.tables or DEFAULT_TABLES).split(","):
        source, normal_classes, leave_out = ANOMALY[table_name]
        x, y = numeric_features(TABLES[source](), leave_out)
        is_normal = np.isin(y, normal_classes)
        row = {"table": table_name, "features": x.shape[1], "normal_classes": [str(c) for c in normal_classes],
               "normal_rows": int(is_normal.sum()), "anomaly_rows": int((~is_normal).sum()),
               "auroc": {}, "seconds": {}, "nonfinite_scores": {}}
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            train, test, truth = split_normal(x[is_normal], x[~is_normal], seed)
            row["test_rows"] = [int((truth == 0).sum()), int(truth.sum())]
            for name in contenders:
                model, score = detector(name, seed, args.epochs)
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        model.fit(train)
                        scores = np.asarray(score(test), dtype=np.float64)
                    except Exception as error:  # recorded (AUROC NaN), not fatal
                        row.setdefault("errors", {}).setdefault(name, []).append(
                            f"{type(error).__name__}: {error}"[:400])
                        scores = np.full(len(test), np.nan)
                row["seconds"].setdefault(name, []).append(round(time.perf_counter() - started, 2))
                bad = int((~np.isfinite(scores)).sum())
                row["nonfinite_scores"].setdefault(name, []).append(bad)
                auroc = float("nan") if bad else float(roc_auc_score(truth, scores))
                row["auroc"].setdefault(name, []).append(round(auroc, 4))
            log(f"  {table_name} seed {seed} " + " ".join(f"{n} {row['auroc'][n][-1]:.3f}" for n in contenders))
        row["summary"] = {n: {"auroc_mean": round(float(np.mean(v)), 4), "auroc_std": round(float(np.std(v)), 4),
                              "seconds_mean": round(float(np.mean(row["seconds"][n])), 2)}
                          for n, v in row["auroc"].items()}
        rows.append(row)
    return rows
