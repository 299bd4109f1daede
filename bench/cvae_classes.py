"""Does a conditional VAE generate the class it is asked for? A classifier trained on the real
training images labels 1,000 generated images per requested class (at a few prior temperatures);
its accuracy on them is set beside its accuracy on the real test set and on the cvae's
reconstructions of it (the ceiling for images as blurred as the model's).

    python bench/cvae_classes.py --epochs 10 --out bench/results/cvae_classes.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import vaekit
from vaekit.data.loaders import prepare_data, to_tensors


def train_classifier(x: torch.Tensor, y: torch.Tensor, n_classes: int, epochs: int, seed: int) -> nn.Module:
    """A small conv net (two conv layers, one hidden layer) trained with Adam on the real images."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(x.shape[1], 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.LazyLinear(128), nn.ReLU(), nn.Linear(128, n_classes),
    )
    net.to(x.device)(x[:2])  # materialise the lazy layer
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        for index in torch.randperm(len(x), device=x.device).split(128):
            loss = F.cross_entropy(net(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    predicted = torch.cat([net(part).argmax(1) for part in x.split(1000)])
    return float((predicted == y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=10, help="cvae training epochs")
    parser.add_argument("--classifier-epochs", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--temperatures", default="1.0,0.7,0.5",
                        help="prior temperatures to sample at (1.0 = the prior itself)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="an extra config override, e.g. model.prior=standard_normal")
    parser.add_argument("--out", type=Path, default=Path("bench/results/cvae_classes.json"))
    args = parser.parse_args()
    config = vaekit.resolve_config(preset="cvae", overrides=[
        f"data.source={args.data}", "data.val_fraction=0", f"train.epochs={args.epochs}", f"train.seed={args.seed}",
        "train.progress=false", "eval.enabled=false", "model.latent_dim=16", *args.overrides,
    ])
    data = prepare_data(config.data)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # where vaekit.train puts the model
    train, test = ({name: value.to(device) for name, value in to_tensors(part, data.spec).items()}
                   for part in (data.train, data.test))
    n_classes = data.spec.n_classes
    classifier = train_classifier(train["x"], train["y"], n_classes, args.classifier_epochs, args.seed)
    real_accuracy = accuracy(classifier, test["x"], test["y"])
    run = vaekit.train(config)
    by_temperature = {}
    for temperature in (float(t) for t in args.temperatures.split(",")):
        generator = torch.Generator(device=device).manual_seed(args.seed)
        per_class = {}
        for label in range(n_classes):
            images = run.model.sample(args.per_class, generator=generator, temperature=temperature,
                                      condition=torch.tensor(label)).mean
            target = torch.full((args.per_class,), label, device=device)
            per_class[data.spec.class_names[label]] = round(accuracy(classifier, images, target), 4)
        by_temperature[str(temperature)] = {"accuracy": round(sum(per_class.values()) / n_classes, 4),
                                            "per_class": per_class}
    # A ceiling for blurred images: the classifier on the cvae's reconstructions of the test set.
    with torch.no_grad():
        recon = torch.cat([run.model.reconstruct(x, y).mean for x, y in zip(test["x"].split(1000),
                                                                            test["y"].split(1000), strict=True)])
    report = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "prior": config.model.prior,
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "torch": torch.__version__},
              "classifier_test_accuracy": round(real_accuracy, 4),
              "reconstruction_accuracy": round(accuracy(classifier, recon, test["y"]), 4),
              "generated": by_temperature,
              "cvae_final_train_elbo": run.history[-1].get("elbo")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
