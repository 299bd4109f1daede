"""kl-f4 against the conv VAE at equal training time, on a real image folder (issue 21's goal).

Fashion-MNIST (Debian's dataset-fashion-mnist IDX files) upscaled to 32x32 (CIFAR-10's size) and
written as PNGs in one subfolder per class; both models train from that folder for the same
wall-clock budget (train.max_minutes), then `vaekit evaluate --data TEST --fid` scores the
reconstructions of the same held-out images: PSNR, SSIM and rFID (FID between the test images and
their reconstructions, on vaekit's feature network: comparable between these runs, not with
published Inception numbers), and the FID of prior samples.

    OMP_NUM_THREADS=2 PYTHONPATH=src python bench/ldm_vs_conv.py --minutes 8 --out bench/results/ldm_vs_conv.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from safetensors.torch import load_file

IDX = Path("/usr/share/datasets/fashion-mnist")
CONTENDERS = {
    "conv-vae": ["--preset", "vae"],
    "kl-f4": ["--preset", "kl-f4"],
}


def read_idx(name: str) -> np.ndarray:
    with gzip.open(IDX / name) as handle:
        data = handle.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_folder(root: Path, images: np.ndarray, labels: np.ndarray, side: int) -> Path:
    """One PNG per image, upscaled (bicubic) to side x side, in a subfolder per class."""
    if root.exists():
        return root
    part = root.with_suffix(".partial")
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = part / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC).save(folder / f"{i:05d}.png")
    part.rename(root)
    return root


def vaekit(*args: str | Path) -> str:
    done = subprocess.run([sys.executable, "-m", "vaekit", *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"vaekit {' '.join(map(str, args))} failed:\n{done.stderr[-3000:]}")
    return done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget per model")
    parser.add_argument("--train", type=int, default=10000, help="training images")
    parser.add_argument("--test", type=int, default=1000, help="held-out images scored")
    parser.add_argument("--side", type=int, default=32)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ldm_vs_conv"))
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--set", action="append", default=[], help="NAME:KEY=VALUE override for one contender")
    parser.add_argument("--tag", default="", help="appended to the run folders' names (runs with other --set)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/ldm_vs_conv.json"))
    args = parser.parse_args()

    x, y = read_idx("train-images-idx3-ubyte.gz"), read_idx("train-labels-idx1-ubyte.gz")
    xt, yt = read_idx("t10k-images-idx3-ubyte.gz"), read_idx("t10k-labels-idx1-ubyte.gz")
    train = write_folder(args.work / f"train{args.train}_{args.side}", x[: args.train], y[: args.train], args.side)
    test = write_folder(args.work / f"test{args.test}_{args.side}", xt[: args.test], yt[: args.test], args.side)
    results = {"command": " ".join(sys.argv), "machine": platform.processor() or platform.machine(),
               "threads": os.environ.get("OMP_NUM_THREADS"),
               "minutes": args.minutes, "train_images": args.train, "test_images": args.test, "side": args.side,
               "runs": {}}
    for name in args.contenders.split(","):
        run = args.work / f"run-{name}-{args.minutes:g}min{args.tag}"
        extra = [f"--set={item.split(':', 1)[1]}" for item in args.set if item.split(":", 1)[0] == name]
        if not (run / "model.safetensors").exists():
            started = time.perf_counter()
            vaekit("train", "--data", train, *CONTENDERS[name], "--epochs", "1000", "--quiet", "--out", run,
                   f"--set=train.max_minutes={args.minutes}", "--set=eval.enabled=false", *extra)
            print(f"{name}: trained in {time.perf_counter() - started:.0f} s", flush=True)
        vaekit("evaluate", run, "--data", test, "--fid", "--k", "5")
        metrics = json.loads((run / "metrics.json").read_text())["evaluate"]
        history = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
        header, last = history[0], history[-1]
        results["runs"][name] = {
            "epochs": float(last[header.index("epoch")]),
            "train_seconds": sum(float(row[header.index("train_seconds")]) for row in history[1:]),
            "parameters": sum(t.numel() for t in load_file(str(run / "model.safetensors")).values()),
            **{key: metrics.get(key) for key in ("psnr", "ssim", "rfid", "neg_elbo", "latent_dim")},
            "sample_fid": (metrics.get("sample_quality") or {}).get("fid"),
        }
        print(name, json.dumps(results["runs"][name]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
