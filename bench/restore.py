"""Restoration on the Fashion-MNIST test set: inpainting, denoising and 2x super-resolution by a
VAE (posterior inference) vs simple baselines, PSNR on the unknown pixels, all in one run.

One VAE is trained on the training images; every method sees the same degraded test images (the
first ``--n`` of the official test split, degraded with a fixed seed). Tasks and baselines:

- half: the bottom half missing; random: each pixel missing with probability 0.5. Baselines: the
  training set's mean image, and (random) a normalised 3x3 box filter of the observed pixels.
- denoise: y = x + 0.3 eps. Baselines: the noisy image, a 3x3 median filter, a Gaussian filter
  (sigma 1 px), all clipped to [0, 1].
- sr2: y = 2x2 block means. Baselines: nearest and bicubic upsampling (clipped).

    python bench/restore.py --epochs 20 --n 10000 --out bench/results/restore.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from scipy import ndimage

import vaekit
from vaekit.applications.restore import AddedNoise, Downsample, parse_mask, psnr, restore
from vaekit.data.loaders import prepare_data


def box_fill(y: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Each missing pixel gets the mean of the observed pixels in its 3x3 (then 5x5) window."""
    estimate = y.clone()
    known = observed.float().expand_as(y)
    for size in (3, 5, 9):
        kernel = torch.ones(1, 1, size, size)
        total = F.conv2d(y * known, kernel, padding=size // 2)
        count = F.conv2d(known, kernel, padding=size // 2)
        fill = total / count.clamp_min(1)
        estimate = torch.where(known.bool(), estimate, torch.where(count > 0, fill, estimate))
        known = torch.maximum(known, (count > 0).float())
    return estimate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="mlp")
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--n", type=int, default=10000, help="test images restored")
    parser.add_argument("--steps", type=int, default=100, help="chain iterations / optimisation steps")
    parser.add_argument("--k", type=int, default=100, help="importance samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, default=Path("bench/results/restore.json"))
    args = parser.parse_args()
    config = vaekit.resolve_config(preset="vae", overrides=[
        "data.source=fashion-mnist", f"model.network={args.network}", f"model.latent_dim={args.latent_dim}",
        f"train.epochs={args.epochs}", "train.batch_size=128", "train.lr=1e-3", f"train.seed={args.seed}",
        "train.progress=false", "eval.enabled=false", *args.overrides])
    started = time.perf_counter()
    run = vaekit.train(config)
    train_seconds = time.perf_counter() - started
    data = prepare_data(config.data)
    x = run.to_model_space(data.test.x[: args.n]).cpu()  # (N, 1, 28, 28) in [0, 1]
    mean_image = run.to_model_space(data.train.x).mean(0, keepdim=True).cpu()
    generator = torch.Generator().manual_seed(args.seed)
    results: dict[str, dict[str, float]] = {}

    def record(task: str, method: str, estimate: torch.Tensor, where: torch.Tensor | None, seconds: float) -> None:
        value = float(psnr(estimate, x, where).mean())
        results.setdefault(task, {})[method] = round(value, 3)
        print(json.dumps({"task": task, "method": method, "psnr": round(value, 3), "seconds": round(seconds, 1)}),
              flush=True)

    def vae(task: str, y: torch.Tensor, operator, methods: tuple[str, ...], where, suffix: str = "") -> None:
        for method in methods:
            started = time.perf_counter()
            estimate = restore(run.model, y, operator, method, steps=args.steps, k=args.k, seed=args.seed)
            record(task, f"vae:{method}{suffix}", estimate, where, time.perf_counter() - started)

    for task, text in (("half", "half"), ("random", "random:0.5")):
        mask = parse_mask(text, tuple(x.shape[1:]), len(x), args.seed)
        y, where = mask.observe(x), mask.unknown(x.shape)
        record(task, "mean fill", torch.where(mask.observed, y, mean_image), where, 0.0)
        if task == "random":
            record(task, "box fill", box_fill(y, mask.observed), where, 0.0)
        vae(task, y, mask, ("pseudo-gibbs", "mwg", "importance", "optimize"), where)

    noise = AddedNoise(0.3)
    y = noise.observe(x, generator)
    record("denoise", "noisy", y.clamp(0, 1), None, 0.0)
    array = y.numpy()
    record("denoise", "median 3x3", torch.from_numpy(ndimage.median_filter(array, size=(1, 1, 3, 3))).clamp(0, 1),
           None, 0.0)
    record("denoise", "gaussian 1px",
           torch.from_numpy(ndimage.gaussian_filter(array, sigma=(0, 0, 1, 1))).clamp(0, 1), None, 0.0)
    vae("denoise", y, noise, ("optimize",), None)

    down = Downsample(2)
    y = down.observe(x)
    record("sr2", "nearest", down.upsample(y), None, 0.0)
    record("sr2", "bicubic", F.interpolate(y, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1),
           None, 0.0)
    vae("sr2", y, down, ("optimize",), None)
    vae("sr2", y, Downsample(2, consistent=False), ("optimize",), None, suffix=" (no consistency step)")

    report = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "torch": torch.__version__},
              "settings": vars(args) | {"out": str(args.out)}, "train_seconds": round(train_seconds, 1),
              "psnr_db": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for task, methods in results.items():
        best = max(methods, key=methods.get)
        print(f"{task:<8} " + "  ".join(f"{m} {v:.2f}" for m, v in methods.items()) + f"   best: {best}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
