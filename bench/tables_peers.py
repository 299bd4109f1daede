"""Tables side by side with the tools people use for them (issue 20): synthesis vs SDV, anomalies vs
PyOD, imputation vs HyperImpute. Same tables, same splits, same seeds, every contender in one run.

- synth (bench/peers_synth.py): vaekit vs SDV's TVAESynthesizer, CTGANSynthesizer and
  GaussianCopulaSynthesizer; SDMetrics QualityReport (column shapes + pair trends), ML efficacy
  (train on synthetic, test on the real holdout, vs train on real), missing share per column kept,
  values outside the training range, whole numbers kept, fit / sample wall time.
- anomaly (bench/peers_anomaly.py): VAEOutlierDetector vs PyOD's VAE, IForest and ECOD; AUROC with
  a class held out as the anomaly, mean and std over seeds.
- impute (bench/peers_impute.py): VAEImputer vs HyperImpute's MIWAE and MissForest, scikit-learn's
  IterativeImputer (BayesianRidge), KNN and the mean; 20% / 50% missing, MCAR / MNAR, RMSE on the
  removed entries.

Tables (bench/peer_tables.py, all offline): scikit-learn's breast cancer, wine (class as a number,
as text, and as text with 25% of alcohol and 10% of magnesium emptied), diabetes (raw units),
iris, digits; palmerpenguins (text columns, holes).

The peers live in the ``bench`` extra, in a virtual environment of their own so the project's is
untouched (torch stays pinned by the constraints file)::

    python3 -m venv /work/benchenv
    /work/benchenv/bin/pip install -c constraints.txt torch==2.13.0
    /work/benchenv/bin/pip install -c constraints.txt -e '.[dev,bench]'

Commands that wrote bench/results/tables_peers_*.json (2 cores; synth on 1 thread, the machine busy)::

    OMP_NUM_THREADS=1 /work/benchenv/bin/python bench/tables_peers.py --task synth --seeds 2 --epochs 300
    OMP_NUM_THREADS=2 /work/benchenv/bin/python bench/tables_peers.py --task anomaly --seeds 5 --epochs 100
    OMP_NUM_THREADS=2 /work/benchenv/bin/python bench/tables_peers.py --task impute --seeds 2 --epochs 300
    (impute: run as one seed, per table; see BENCHMARKS.md, "Imputation vs HyperImpute")

(``--out`` defaults to bench/results/tables_peers_{task}.json; ``{task}`` in a given path is
replaced by each task's name, so ``--task all`` writes three files.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

PACKAGES = ("vaekit", "torch", "numpy", "pandas", "scikit-learn", "scipy", "sdv", "sdmetrics", "rdt", "ctgan",
            "copulas", "pyod", "hyperimpute", "palmerpenguins")


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}


def versions() -> dict:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def print_synth(summary: dict) -> None:
    for table, entries in summary.items():
        real = entries["ml_efficacy_real"]["mean"]
        holes = " ".join(f"{k[13:-1]}={v['mean']:.1%}" for k, v in entries.items() if k.startswith("missing_real["))
        print(f"\n{table}  (ML efficacy trained on real: {real:.3f}{'; real missing ' + holes if holes else ''})")
        print(f"  {'contender':<22}{'quality':>9}{'shapes':>8}{'pairs':>8}{'ML eff.':>9}{'outside':>9}"
              f"{'fit s':>8}  missing kept")
        for name, e in entries.items():
            if name == "ml_efficacy_real" or name.startswith("missing_real["):
                continue
            if "error" in e:
                print(f"  {name:<22}FAILED {e['error'][:80]}")
                continue
            holes = " ".join(f"{k[8:-1]}={v['mean']:.1%}" for k, v in e.items() if k.startswith("missing["))
            print(f"  {name:<22}{e['quality']['mean']:>9.3f}{e['column_shapes']['mean']:>8.3f}"
                  f"{e['pair_trends']['mean']:>8.3f}{e['ml_efficacy']['mean']:>9.3f}{e['outside_range']['mean']:>9.1%}"
                  f"{e['fit_seconds']['mean']:>8.1f}  {holes}")


def print_anomaly(rows: list[dict]) -> None:
    names = list(rows[0]["summary"])
    print("\n" + f"{'table':<15}" + "".join(f"{n:>22}" for n in names))
    for r in rows:
        print(f"{r['table']:<15}" + "".join(
            f"{s['auroc_mean']:>9.3f}±{s['auroc_std']:.3f} {s['seconds_mean']:>5.1f}s" for s in r["summary"].values()))


def print_impute(rows: list[dict]) -> None:
    names = list(rows[0]["rmse"])
    print("\n" + f"{'setting':<24}" + "".join(f"{n[:18]:>20}" for n in names))
    for r in rows:
        best = min(r["rmse"].values())
        setting = f"{r['table']} {r['mechanism']} {r['rate']:.0%}"
        print(f"{setting:<24}" + "".join(
            f"{('*' if r['rmse'][n] == best else ' ') + format(r['rmse'][n], '.3f'):>12} {r['seconds'][n]:>5.1f}s"
            for n in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("synth", "anomaly", "impute", "all"), default="all")
    parser.add_argument("--tables", default=None, help="comma-separated; default: the task's own list")
    parser.add_argument("--contenders", default=None, help="comma-separated subset; default: all of the task's")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1 "
                        "(to add seeds to an earlier run)")
    parser.add_argument("--epochs", type=int, default=300, help="epochs of every neural contender (vaekit, "
                        "TVAE, CTGAN, PyOD's VAE); HyperImpute's MIWAE keeps its 500")
    parser.add_argument("--rows", type=int, default=1000, help="synth: rows sampled (0: as many as the train split)")
    parser.add_argument("--rates", type=lambda s: [float(r) for r in s.split(",")], default=[0.2, 0.5])
    # impute: vaekit's VAEImputer settings, as bench/impute.py
    parser.add_argument("--preset", default="iwae")
    parser.add_argument("--method", default="importance")
    parser.add_argument("--latent-dim", type=int, default=8)
    parser.add_argument("--width", type=int, default=256, help="impute: hidden units, VAEImputer's default")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--out", default="bench/results/tables_peers_{task}.json")
    args = parser.parse_args()
    tasks = ("synth", "anomaly", "impute") if args.task == "all" else (args.task,)
    for task in tasks:
        started = time.perf_counter()
        print(f"== {task}", flush=True)
        report = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "task": task,
                  "machine": machine(), "versions": versions(), "settings": vars(args)}
        if task == "synth":
            from peers_synth import run_synth, summarise

            report["rows"] = run_synth(args, lambda line: print(line, flush=True))
            report["summary"] = summarise(report["rows"])
            print_synth(report["summary"])
        elif task == "anomaly":
            from peers_anomaly import run_anomaly

            report["rows"] = run_anomaly(args, lambda line: print(line, flush=True))
            print_anomaly(report["rows"])
        else:
            from peers_impute import run_impute

            report["rows"] = run_impute(args, lambda line: print(line, flush=True))
            print_impute(report["rows"])
        report["total_seconds"] = round(time.perf_counter() - started, 1)
        out = Path(args.out.format(task=task))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=_plain) + "\n")
        print(f"wrote {out} ({report['total_seconds']:.0f} s)", flush=True)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


if __name__ == "__main__":
    main()
