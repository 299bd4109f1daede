"""Training throughput of the latent-diffusion autoencoder presets, in images per second.

The full patch-gan step (reconstruction, KL, adaptive weight, discriminator from the first step:
model.disc_start=0) through vaekit's trainer on random 8-bit RGB images held in memory; the
throughput is the last epoch's samples_per_s from the run's history (the first epoch includes
warm-up). Stable Diffusion's kl-f8 network is ``--channels 128,256,512,512 --layers 2``.

    python bench/ldm_throughput.py --device cuda --side 256 --batch 8 --out bench/results/gpu/ldm_throughput.json
    python bench/ldm_throughput.py --side 32 --channels 32,64,128,128 --layers 1 --images 64  # a CPU check
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import vaekit
from vaekit.config import resolve_config
from vaekit.data.sources import RawData


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="kl-f8")
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--channels", default="128,256,512,512")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--groups", type=int, default=32, help="model.norm_groups (must divide every width)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", help="train.precision: auto (bf16 on CUDA), fp32, bf16")
    parser.add_argument("--out", type=Path, default=Path("bench/results/ldm_throughput.json"))
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 3, args.side, args.side), dtype=np.uint8)
    config = resolve_config(preset=args.preset, overrides=[
        f"model.conv_channels=[{args.channels}]", f"model.layers_per_block={args.layers}",
        f"model.norm_groups={args.groups}", "model.disc_start=0",
        "model.perceptual=none", f"train.batch_size={args.batch}", f"train.epochs={args.epochs}",
        f"train.device={args.device}", f"train.precision={args.precision}", "train.progress=false",
        "eval.enabled=false", "data.val_fraction=0", "data.test_fraction=0"])
    started = time.perf_counter()
    run = vaekit.train(config, data=RawData(x=x, y=None, kind="image", max_level=255.0))
    seconds = time.perf_counter() - started
    last = run.history[-1]
    device = next(run.model.parameters()).device
    result = {
        "preset": args.preset, "side": args.side, "channels": args.channels, "layers_per_block": args.layers,
        "batch": args.batch, "images": args.images, "epochs": args.epochs, "precision": args.precision,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "parameters": sum(p.numel() for p in run.model.parameters()),
        "images_per_second": last["samples_per_s"], "wall_seconds": round(seconds, 1),
        "last_loss": last["loss"], "disc_loss": last.get("disc_loss"),
    }
    print(json.dumps(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
