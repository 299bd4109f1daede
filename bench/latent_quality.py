"""What a trained VAE's latent space is worth, on Fashion-MNIST: sample quality (FID, KID,
precision/recall in vaekit's classifier features) of prior samples vs the post-hoc Gaussian-mixture
sampler, and clustering (NMI, ARI, ACC) and linear-probe accuracy of the latent means vs PCA with the
same dimension vs raw pixels.

Two models with the same epochs: the classic MLP VAE (configs/classic.yaml: 784-400-20, Bernoulli) and
vaekit's conv VAE (default conv net for 28x28, 20 latents, Bernoulli). The feature classifier is the
one `vaekit evaluate --fid` trains once per data set (evaluation/features.py); its FIDs compare models
on this data set and are not comparable with published Inception FIDs.

    python bench/latent_quality.py --epochs 10 --out bench/results/latent_quality.json
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
from vaekit.applications.generate import generated_quality
from vaekit.data.loaders import prepare_data
from vaekit.evaluation.clustering import pca_baseline, representation_table
from vaekit.evaluation.latent import active_dims

MODELS = {
    "mlp (classic)": ["model.network=mlp", "model.hidden=[400]", "model.activation=relu"],
    "conv": ["model.network=conv"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--fid-samples", type=int, default=10_000)
    parser.add_argument("--cluster-points", type=int, default=10_000, help="test images clustered")
    parser.add_argument("--probe-train", type=int, default=60_000, help="training images for the linear probe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/latent_quality.json"))
    args = parser.parse_args()
    rows, representation_rows = [], {}
    baselines_done = False
    for name in args.models.split(","):
        config = vaekit.resolve_config(preset="vae", overrides=[
            "data.source=fashion-mnist", "data.val_fraction=0", "data.scale=unit", "model.latent_dim=20",
            "model.likelihood=bernoulli", "model.reduction=sum", *MODELS[name], f"train.epochs={args.epochs}",
            "train.batch_size=128", "train.lr=1e-3", f"train.seed={args.seed}", "train.progress=false",
            "eval.enabled=false",
        ])
        started = time.perf_counter()
        run = vaekit.train(config)
        train_seconds = time.perf_counter() - started
        data = prepare_data(config.data)
        for sampler in ("prior", "gmm"):
            started = time.perf_counter()
            report = generated_quality(run, data.train, data.test, args.fid_samples, args.seed, sampler=sampler)
            row = {"model": name, "sampler": sampler, **report.to_dict(), "train_seconds": round(train_seconds, 1),
                   "quality_seconds": round(time.perf_counter() - started, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
        rng = np.random.default_rng(args.seed)
        train_index = np.sort(rng.permutation(len(data.train))[: args.probe_train])
        test_index = np.sort(rng.permutation(len(data.test))[: args.cluster_points])
        train_x, test_x = data.train.x[train_index], data.test.x[test_index]
        train_y, test_y = data.train.y[train_index], data.test.y[test_index]
        train_codes, test_codes = run.encode_all(train_x)[0], run.encode_all(test_x)[0]
        active = active_dims(test_codes)  # inactive units carry no information; a mixture would fit their noise
        representations = {f"latent: {name}": (train_codes[:, active].numpy(), test_codes[:, active].numpy())}
        if not baselines_done:
            raw_train = train_x.reshape(len(train_x), -1).astype(np.float32) / 255
            raw_test = test_x.reshape(len(test_x), -1).astype(np.float32) / 255
            representations["pca (20-d)"] = pca_baseline(raw_train, raw_test, run.model.latent_dim, args.seed)
            representations["raw pixels (784-d)"] = (raw_train, raw_test)
            baselines_done = True
        for entry in representation_table(representations, train_y, test_y, methods=("kmeans", "gmm"),
                                          seed=args.seed):
            representation_rows[entry["representation"]] = entry
            print(json.dumps(entry), flush=True)
    report = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "torch": torch.__version__},
              "epochs": args.epochs, "sample_quality": rows, "representations": list(representation_rows.values())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'model':<16} {'sampler':<7} {'FID':>8} {'KID':>9} {'prec':>6} {'recall':>6}")
    for r in rows:
        print(f"{r['model']:<16} {r['sampler']:<7} {r['fid']:>8.2f} {r['kid_mean']:>9.4f} {r['precision']:>6.3f} "
              f"{r['recall']:>6.3f}")
    print(f"\n{'representation':<22} {'dim':>4} {'NMI':>6} {'ACC':>6} {'GMM NMI':>8} {'probe':>6}")
    for r in representation_rows.values():
        print(f"{r['representation']:<22} {r['dim']:>4} {r['kmeans_nmi']:>6.3f} {r['kmeans_acc']:>6.3f} "
              f"{r['gmm_nmi']:>8.3f} {r['probe_acc']:>6.3f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
