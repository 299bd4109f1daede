"""Does the default image VAE use its latents on real 28x28 digits? scikit-learn's 1,797 handwritten
digits, upscaled to 28x28 uint8 (how MNIST-shaped data arrives) and saved as an .npz, trained with
the default config (conv network, 16 latents); active units and validation loss after every epoch.

    python bench/conv_collapse.py --epochs 20 --out bench/results/conv_collapse.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

import vaekit


def upscaled_digits(path: Path, size: int = 28) -> Path:
    digits = load_digits()
    images = np.stack([np.asarray(Image.fromarray((image * 255 / 16).astype(np.uint8)).resize((size, size),
                                                                                            Image.BILINEAR))
                       for image in digits.images])  # (1797, 28, 28) uint8
    np.savez(path, x=images, y=digits.target)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--network", default="auto", help="auto (conv for 28x28), conv or mlp")
    parser.add_argument("--out", type=Path, default=Path("bench/results/conv_collapse.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = upscaled_digits(Path(folder) / "digits28.npz")
        config = vaekit.resolve_config(overrides=[f"data.source={data}", f"train.epochs={args.epochs}",
                                                  f"model.network={args.network}", "train.progress=false"])
        run = vaekit.train(config, out=Path(folder) / "run")
        test = json.loads((Path(folder) / "run" / "metrics.json").read_text())["test"]
    report = {"network": args.network, "epochs": args.epochs,
              "active_units": [row["active_units"] for row in run.history],
              "val_loss": [round(row["val_loss"], 2) for row in run.history],
              "test_neg_elbo": round(test["neg_elbo"], 2), "test_active_units": test["active_units"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
