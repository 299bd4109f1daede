"""vaekit synthesize"""

from __future__ import annotations

from pathlib import Path

import typer

from vaekit.cli.common import check_suffix, example, finite, labels_of, load_inputs, load_run


@example("vaekit synthesize runs/wine --n 1000 --seed 1 --out synthetic.csv")
def synthesize(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="A run trained on a table (CSV, Parquet)."),
    n: int = typer.Option(..., "--n", min=1, max=10_000_000, help="How many rows."),
    out: Path = typer.Option(..., "--out", help="FILE.csv or FILE.parquet: the training table's columns, in "
                             "its order (a conditional run's label column last)."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed writes the same file."),
    label: str = typer.Option(None, "--label", help="Conditional runs: every row of this class (name or index); "
                              "default: classes drawn in their training shares."),
    temperature: float = typer.Option(1.0, "--temperature", min=0.0, max=100.0, callback=finite,
                                      help="Scale of z's spread (1: the prior itself)."),
    sampler: str = typer.Option("prior", "--sampler", help="prior: z ~ p(z), needs only the run folder; gmm: z "
                                "from a Gaussian mixture fitted to the training rows' codes (reads the training "
                                "data again; higher SDMetrics quality on 4 of 5 tables in BENCHMARKS.md, lower on "
                                "diabetes, and lower ML efficacy there)."),
    components: int = typer.Option(10, "--components", min=1, max=1000, help="Mixture components (--sampler gmm)."),
    clip: bool = typer.Option(True, "--clip/--no-clip", help="Keep numbers within their training range."),
    missing: bool = typer.Option(True, "--missing/--no-missing", help="Leave each column empty as often as it "
                                 "was in training (--no-missing: every cell filled)."),
) -> None:
    """Synthetic rows of a table: the training table's columns, kinds, ranges and share of empty cells."""
    from vaekit.applications.synthesize import SUFFIXES, check_output

    check_suffix(out, SUFFIXES)
    check_output(out)
    run = load_run(run_dir)
    write_synthetic(run, out, n, seed=seed, label=label, temperature=temperature, sampler=sampler,
                    components=components, clip=clip, missing=missing)
    typer.echo(f"wrote {n} synthetic rows to {out}")


def write_synthetic(run, out: Path, n: int, *, seed: int, label: str | None, temperature: float, sampler: str,
                    components: int, clip: bool = True, missing: bool = True) -> None:
    """Draw ``n`` rows of a table run (refused, before any work, for a run that is not one) and write
    them to ``out``: .csv or .parquet, or for ``vaekit sample`` .npy (the model's columns, numbers only)."""
    import torch

    from vaekit.applications.generate import fit_aggregate_posterior
    from vaekit.applications.synthesize import check_numbers, check_synthesis, class_draws, numbers, save_table
    from vaekit.applications.synthesize import synthesize as draw_rows
    from vaekit.errors import ConfigError
    from vaekit.files import save_array

    check_synthesis(run)
    if sampler not in ("prior", "gmm"):
        raise ConfigError(f"--sampler {sampler!r}: expected prior or gmm")
    class_draws(run, 1, label, torch.Generator(device=run.device), "--label")  # a bad --label before any work
    if out.suffix.lower() == ".npy":
        check_numbers(run, f"--out {str(out)!r}")
    mixture = None
    if sampler == "gmm":
        train = load_inputs(run, None, "train")
        mixture = fit_aggregate_posterior(run, train.x, labels_of(run, train, "training split"), components, seed)
    table = draw_rows(run, n, seed=seed, label=label, temperature=temperature, clip=clip, missing=missing,
                      mixture=mixture, option="--label")
    if out.suffix.lower() == ".npy":
        save_array(numbers(table, len(run.spec.columns)), out)  # the model's columns, as vaekit impute's .npy
    else:
        save_table(table, out)
