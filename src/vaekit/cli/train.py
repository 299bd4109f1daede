"""vaekit train"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from vaekit.cli.common import example

log = logging.getLogger("vaekit")


def _default_out(source: str, preset: str) -> Path:
    stem = Path(source).stem if ("/" in source or "." in source) else source
    base = Path("runs") / f"{stem}-{preset}"
    candidate, n = base, 2
    while candidate.exists():
        candidate, n = Path(f"{base}-{n}"), n + 1
    return candidate


@example("vaekit train --data fashion-mnist --preset beta-vae --set model.beta=4 --epochs 10 --out runs/fm")
def train(
    data: str = typer.Option(None, "--data", help="Dataset name (see `vaekit datasets`) or a path: "
                             ".npy/.npz, .csv/.parquet, or a folder of images."),
    preset: str = typer.Option(None, "--preset", help="Variant (see `vaekit presets`); default vae."),
    config: Path = typer.Option(None, "--config", help="YAML/JSON config file (e.g. configs/classic.yaml)."),
    overrides: list[str] = typer.Option([], "--set", help="Override one option, e.g. --set train.lr=3e-4; "
                                        "repeatable. `vaekit config --list` shows every key with its type, "
                                        "default and meaning."),
    epochs: int = typer.Option(None, "--epochs", help="Training epochs."),
    batch_size: int = typer.Option(None, "--batch-size", help="Mini-batch size."),
    lr: float = typer.Option(None, "--lr", help="Learning rate."),
    seed: int = typer.Option(None, "--seed", help="Seed for initialisation, batching and noise."),
    device: str = typer.Option(None, "--device", help="auto, cpu, cuda or mps."),
    out: Path = typer.Option(None, "--out", help="Run folder to write (default runs/<data>-<preset>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run folder given by --out from its "
                                "last checkpoint (only --epochs may change)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train a VAE and write a run folder (config, data spec, weights, history, metrics)."""
    import vaekit
    from vaekit.errors import ConfigError
    from vaekit.training.trainer import TrainingInterrupted

    try:
        if resume:
            if out is None:
                raise ConfigError("--resume needs --out RUN_DIR, the run folder to continue")
            given = {"--data": data, "--preset": preset, "--config": config, "--set": overrides or None,
                     "--batch-size": batch_size, "--lr": lr, "--seed": seed, "--device": device}
            extra = [flag for flag, value in given.items() if value is not None]
            if extra:
                raise ConfigError(f"--resume continues the saved configuration; only --epochs may change "
                                  f"(remove {', '.join(extra)})")
            run = vaekit.resume(out, epochs=epochs)
        else:
            flags = {"data.source": data, "train.epochs": epochs, "train.batch_size": batch_size,
                     "train.lr": lr, "train.seed": seed, "train.device": device}
            if quiet:
                flags["train.progress"] = False
            resolved = vaekit.resolve_config(preset=preset, config_file=config, overrides=overrides, flags=flags)
            out = out or _default_out(resolved.data.source, resolved.preset)
            run = vaekit.train(resolved, out=out)
    except TrainingInterrupted as stop:
        print(f"vaekit: {stop}; continue with: vaekit train --out {out} --resume", file=sys.stderr)
        raise typer.Exit(130) from None
    if run.path is not None:
        _report(run)


def _report(run) -> None:
    import json

    metrics_path = run.path / "metrics.json"
    if metrics_path.is_file():
        test = json.loads(metrics_path.read_text()).get("test", {})
        items = f"{test['n_samples']:,} of {test.get('n_available', test['n_samples']):,} items"
        if "nll" in test:
            log.info("test (%s): -ELBO %.3f, NLL (k=%d) %.3f nats, active units %d/%d", items, test["neg_elbo"],
                     test["k"], test["nll"], test["active_units"], test["latent_dim"])
        elif "recon" in test:
            log.info("test (%s): reconstruction %.3f nats", items, test["recon"])
    log.info("run folder: %s", run.path)
