"""vaekit anomaly: score inputs by how unlikely the model finds them, flag the outliers."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from vaekit.cli.common import check_suffix, example, labels_of, load_inputs, load_run

log = logging.getLogger("vaekit")


def _threshold(run, score: str, k: int, seed: int, scores, contamination: float | None, quantile: float | None,
               saved):
    """The threshold to flag with: from --contamination (these scores), from --quantile (the run's
    held-out normal data), or ``saved`` with the run; a new one is saved with the run."""
    from vaekit.applications.anomaly import fit_threshold, run_scores, save_threshold
    from vaekit.data.loaders import prepare_data
    from vaekit.errors import DataError

    if saved is not None:
        log.info("threshold %.6g: the saved %s (%s %g of %d scores of %s)", saved.value, score, saved.method,
                 saved.level, saved.n, saved.source)
        return saved
    if contamination is not None:
        threshold = fit_threshold(scores, contamination=contamination, score=score, k=k, seed=seed,
                                  source="the scored inputs")
    else:
        quantile = 0.95 if quantile is None else quantile
        val = prepare_data(run.config.data).val
        if val is None:
            raise DataError("this run has no validation split of normal data to set a threshold on; give "
                            "--contamination")
        condition = labels_of(run, val, "validation split")
        normal = run_scores(run, val.x, score, k, seed, condition, name="validation split")
        threshold = fit_threshold(normal, quantile=quantile, score=score, k=k, seed=seed,
                                  source="the run's validation split")
    if run.path is not None:
        save_threshold(run.path, threshold)
    log.info("threshold %.6g: %s %g of %d scores of %s (saved with the run)", threshold.value, threshold.method,
             threshold.level, threshold.n, threshold.source)
    return threshold


def _normal_classes(run, inputs, normal: str | None) -> list[int] | None:
    """Indices of the normal classes: --normal, else the classes the run was trained on, else None."""
    from vaekit.data.loaders import class_indices

    if normal is not None:
        return class_indices(inputs, [part.strip() for part in normal.split(",") if part.strip()], "--normal")
    if run.config.data.classes is not None and inputs.y is not None:
        return class_indices(inputs, run.config.data.classes)
    return None


@example("vaekit anomaly runs/fm-sneakers --data fashion-mnist --score nll --k 100 --out scores.csv")
def anomaly(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    data: str = typer.Option(None, "--data", help="Inputs to score (dataset name or path); default the run's "
                             "test split."),
    out: Path = typer.Option(..., "--out", help="FILE.csv: index, score, flagged (and label), most anomalous first."),
    score: str = typer.Option("nll", "--score", help="recon (-log p(x|posterior mean)), elbo (-ELBO) or nll "
                              "(importance-sampled -log p(x)); higher = more anomalous."),
    k: int = typer.Option(100, "--k", min=1, max=5000, help="Importance samples for the elbo and nll scores."),
    contamination: float = typer.Option(None, "--contamination", help="Flag this fraction of the inputs (the "
                                        "highest scores)."),
    quantile: float = typer.Option(None, "--quantile", help="Flag scores above this quantile of the run's "
                                   "held-out normal data (its validation split); default 0.95 when no "
                                   "threshold is saved with the run."),
    normal: str = typer.Option(None, "--normal", help="Comma-separated classes that are normal (default: the "
                               "run's data.classes); with labelled inputs, AUROC and AUPRC are printed."),
    figure: Path = typer.Option(None, "--figure", help="PNG of the most and least anomalous images "
                                "(default: FILE.png beside the CSV; images only)."),
    split: str = typer.Option("test", "--split", help="train, test or all, for a named dataset."),
    seed: int = typer.Option(0, "--seed", help="Seeds the draws (each input's own, keyed by its values)."),
) -> None:
    """Score inputs for anomaly; write a ranked CSV, flag by a threshold saved with the run."""
    import numpy as np

    from vaekit.applications.anomaly import check_score, detection_scores, load_threshold, run_scores, save_extremes
    from vaekit.applications.visualize import save_array
    from vaekit.errors import ConfigError

    check_suffix(out, (".csv",))
    check_score(score, k)
    if contamination is not None and quantile is not None:
        raise ConfigError("--contamination and --quantile: give one of them")
    for option, value in (("--contamination", contamination), ("--quantile", quantile)):
        if value is not None and not 0.0 < value < 1.0:
            raise ConfigError(f"{option} {value}: expected a fraction between 0 and 1")
    if figure is not None:
        check_suffix(figure, (".png",), "--figure")
    if split not in ("train", "test", "all"):
        raise ConfigError(f"--split {split!r}: expected train, test or all")
    run = load_run(run_dir)
    use_saved = contamination is None and quantile is None and run.path is not None
    saved = load_threshold(run.path, score, k) if use_saved else None  # a damaged file fails before any work
    inputs = load_inputs(run, data, split)
    normal_classes = _normal_classes(run, inputs, normal)
    name = data or "test split"
    scores = run_scores(run, inputs.x, score, k, seed, labels_of(run, inputs, name), name=name)
    threshold = _threshold(run, score, k, seed, scores, contamination, quantile, saved)
    flagged = threshold.flags(scores)
    order = np.argsort(-scores, kind="stable")
    columns = [order, scores[order], flagged[order]]
    header = ["index", "score", "flagged"]
    if inputs.y is not None:
        columns.append(inputs.y[order])
        header.append("label")
    save_array(np.stack([np.asarray(c, dtype=np.float64) for c in columns], 1), out, header)
    typer.echo(f"{int(flagged.sum())} of {len(scores)} inputs flagged ({score} > {threshold.value:.6g}); "
               f"wrote {out}")
    if normal_classes is not None:
        metrics = detection_scores(scores, ~np.isin(inputs.y, normal_classes))
        typer.echo(f"AUROC {metrics['auroc']:.4f}  AUPRC {metrics['auprc']:.4f}  "
                   f"(anomalies: {metrics['anomaly_rate']:.1%} of the inputs, normal classes "
                   f"{','.join(str(c) for c in normal_classes)})")
    if run.spec.data_kind.unsupported(run.spec, "extremes") is None:
        figure = figure or out.with_suffix(".png")
        save_extremes(run.spec, inputs.x, scores, figure, score_name=f"{score} score")
        log.info("wrote %s", figure)
