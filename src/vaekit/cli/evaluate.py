"""vaekit evaluate"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import typer

from vaekit.cli.common import Device, check_suffix, example, load_inputs, load_run

log = logging.getLogger("vaekit")


@example("vaekit evaluate runs/fm --k 1000; vaekit evaluate runs/wine --synthetic synthetic.csv --data holdout.csv")
def evaluate(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    data: str = typer.Option(None, "--data", help="Inputs (dataset name or path); default the run's test split. "
                             "With --synthetic: the real holdout, rows the model never saw."),
    k: int = typer.Option(1000, "--k", min=1, max=5000, help="Importance samples for the NLL estimate."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Inputs per batch."),
    seed: int = typer.Option(0, "--seed", help="Seed for the importance samples."),
    device: Device = typer.Option(Device.auto, "--device", help="Where to evaluate."),
    fid: bool = typer.Option(False, "--fid", help="Also sample quality of generated images: FID, KID, precision "
                             "and recall against the test images; and rFID, FID between the test images and "
                             "their reconstructions."),
    features: Path = typer.Option(None, "--features", help="Feature network for --fid: a TorchScript .pt or an "
                                  ".onnx taking images in [0, 1] (e.g. Inception); default a small classifier "
                                  "vaekit trains once per data set (not comparable with published FIDs). The file "
                                  "is a program that runs with your rights: give only one you trust."),
    fid_samples: int = typer.Option(10_000, "--fid-samples", min=100, help="Generated and real images for --fid."),
    sampler: str = typer.Option("prior", "--sampler", help="Latent sampler for --fid: prior or gmm."),
    molecules: int = typer.Option(0, "--molecules", min=0, max=100_000, help="Molecule runs: sample this many "
                                  "(e.g. 10000) and report validity, uniqueness@1k/@10k, novelty, IntDiv and "
                                  "property distances to the test set (needs RDKit)."),
    synthetic: Path = typer.Option(None, "--synthetic", help="Table runs: judge these synthetic rows (.csv or "
                                   ".parquet, e.g. from vaekit synthesize) instead of the model: quality (column "
                                   "shapes, pair trends) against the training split, ML efficacy and privacy "
                                   "(distance to the closest training row) against --data -> RUN/"
                                   "synthetic_report.json."),
    target: str = typer.Option(None, "--target", help="--synthetic: the column ML efficacy predicts; default the "
                               "run's label column."),
    out: Path = typer.Option(None, "--out", help="--synthetic: FILE.json for the report; default "
                             "RUN/synthetic_report.json (which vaekit report shows)."),
) -> None:
    """Held-out -ELBO, importance-sampled NLL, KL per dimension, active units; for images PSNR and SSIM of
    the reconstructions (and with --fid sample quality and rFID) -> RUN/metrics.json. With --synthetic, a
    table's synthetic rows against real ones instead -> RUN/synthetic_report.json."""
    from vaekit import io
    from vaekit.errors import ConfigError
    from vaekit.training.distributed import select_device

    check_modes(synthetic, fid or bool(molecules) or features is not None, target, out)
    if synthetic is not None:
        evaluate_synthetic(run_dir, synthetic, data, target, out, seed)
        return
    if features is not None and not fid:
        raise ConfigError(f"--features {str(features)!r}: a feature network is for --fid; add --fid or drop it")
    if sampler not in ("prior", "gmm"):
        raise ConfigError(f"--sampler {sampler!r}: expected prior or gmm")
    run = load_run(run_dir, device=str(select_device(device.value)))
    refused = run.spec.data_kind.unsupported(run.spec, "molecules") if molecules else None
    if refused:
        raise ConfigError(f"--molecules: {refused}")
    inputs = load_inputs(run, data, "test")
    metrics = run.evaluate(inputs, k=k, batch_size=batch_size, seed=seed, what=data or "test split",
                           check_range=True, progress=sys.stderr.isatty())  # eval.max_samples: minutes at k = 1000
    metrics["data"] = data or f"{run.config.data.source} (test split)"
    images = run.spec.data_kind.unsupported(run.spec, "reconstruction") is None
    if fid:
        from vaekit.applications.generate import generated_quality, quality_features, reconstruction_fid

        network = quality_features(run, features)
        report = generated_quality(run, load_inputs(run, None, "train"), inputs, fid_samples, seed, network, sampler)
        metrics["sample_quality"] = {**report.to_dict(), "sampler": sampler}
        metrics["rfid"] = reconstruction_fid(run, inputs, fid_samples, seed, network)
    elif images:
        metrics.setdefault("not_computed", {})["rfid"] = "needs the feature network of FID: add --fid"
    if molecules:
        from vaekit.applications.generate import sample_sequences
        from vaekit.evaluation.molecules import evaluate_molecules

        drawn = sample_sequences(run, molecules, seed, decoding="sample")  # as MOSES samples its models
        report = evaluate_molecules(drawn, load_inputs(run, None, "train").x.tolist(), inputs.x.tolist(), seed)
        metrics["molecules"] = {**report.to_dict(), "decoding": "sample"}
    for name, why in metrics.get("not_computed", {}).items():
        log.info("not computed: %s: %s", name, why)
    print(json.dumps({key: value for key, value in metrics.items() if key != "kl_per_dim"}, indent=2))
    from vaekit.ldm_runs import is_diffusers_folder

    if is_diffusers_folder(run_dir):  # someone's model folder: left as it came
        log.info("%s is a diffusers model folder: the metrics above are not written into it", run_dir)
        return
    replaced = io.write_metrics(run_dir, {"evaluate": metrics})
    log.info("wrote %s%s", run_dir / io.METRICS, " (its earlier `evaluate` results replaced)" if replaced else "")


def check_modes(synthetic: Path | None, model_options: bool, target: str | None, out: Path | None) -> None:
    """--synthetic judges a table, not the model: refuse the options of the other mode, in one line."""
    from vaekit.errors import ConfigError

    if synthetic is not None and model_options:
        raise ConfigError("--synthetic judges a synthetic table, not the model: drop --fid, --features and "
                          "--molecules, or run them without --synthetic")
    if synthetic is None and (target is not None or out is not None):
        raise ConfigError(f"{'--target' if target is not None else '--out'}: for --synthetic's report; add "
                          "--synthetic FILE or drop it")


def evaluate_synthetic(run_dir: Path, synthetic: Path, data: str | None, target: str | None, out: Path | None,
                       seed: int) -> None:
    """``vaekit evaluate --synthetic``: the report as JSON, and its summary printed."""
    from vaekit.applications.synthetic_report import (
        REPORT,
        SUFFIXES,
        check_table_run,
        check_target,
        summary_lines,
        synthetic_report,
    )
    from vaekit.files import atomic_write_json

    check_suffix(synthetic, SUFFIXES, "--synthetic", role="inputs")
    if data is not None and Path(data).exists():
        check_suffix(Path(data), SUFFIXES, "--data", role="inputs")
    run = load_run(run_dir)
    out = out if out is not None else run_dir / REPORT
    check_suffix(out, (".json",))
    check_table_run(run, "--synthetic")
    check_target(run, target, "--target")
    report = synthetic_report(run, synthetic, holdout=data, target=target, seed=seed)
    atomic_write_json(out, report)
    for line in summary_lines(report):
        typer.echo(line)
    log.info("wrote %s", out)
