"""vaekit interpolate, traverse, arithmetic, swap: figures of what a model's latent space does."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from vaekit.cli.common import (
    check_suffix,
    choose_items,
    example,
    figure_path,
    finite,
    item_captions,
    labels_of,
    load_inputs,
    load_run,
    output_for,
    parse_indices,
    say_items,
    write_output,
)

log = logging.getLogger("vaekit")

DATA_HELP = "Inputs (dataset name or path); default the run's test split."
SEED_HELP = "Seed for the inputs chosen when none are given."
MAX_STRENGTH = 100.0  # multiples of an attribute vector; far beyond a few the decoder only extrapolates


def _class(inputs, run, label: str, option: str) -> int:
    """A class given by name or index, checked against the inputs' labels."""
    import numpy as np

    from vaekit.data.loaders import class_index
    from vaekit.errors import DataError

    if inputs.y is None:
        raise DataError(f"{option}: these inputs have no labels; pick groups with --from-indices/--to-indices")
    names = inputs.class_names or run.spec.class_names
    present = np.unique(inputs.y).tolist()
    return class_index(label, names, max(present) + 1, option, present=present)


@example("vaekit interpolate runs/fm --a 0 --b 1 --steps 10 --path spherical --out morph.gif")
def interpolate(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    data: str = typer.Option(None, "--data", help=DATA_HELP),
    a: int = typer.Option(None, "--a", min=0, help="Index of the first input (default: a seeded random one)."),
    b: int = typer.Option(None, "--b", min=0, help="Index of the second input (default: a seeded random one)."),
    steps: int = typer.Option(10, "--steps", min=2, max=200, help="Points on the path, both ends included."),
    path: str = typer.Option("linear", "--path", help="linear or spherical (slerp)."),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    out: Path = typer.Option(None, "--out", help="FILE.png (a strip), .gif (animated) or .npy; "
                             "default RUN/figures/interpolation.png."),
) -> None:
    """Decode the path between the codes of two inputs: a strip PNG or an animated GIF; for text or
    molecules, the two inputs and the path, one a line."""
    import numpy as np

    from vaekit.applications.explore import interpolate as run_interpolate
    from vaekit.applications.visualize import pick_items
    from vaekit.errors import ConfigError

    if path not in ("linear", "spherical"):
        raise ConfigError(f"--path {path!r}: expected linear or spherical")
    run = load_run(run_dir)
    out = output_for(run, out, "interpolation", (".png", ".gif", ".npy"))
    inputs = load_inputs(run, data, "test")
    given = [v for v in (a, b) if v is not None]
    if given:
        parse_indices(",".join(map(str, given)), len(inputs), "--a/--b")
    spare = [int(i) for i in pick_items(len(inputs), 3, seed) if i not in given]  # for the ends not given
    if a is None:
        a = spare.pop(0) if spare else b
    if b is None:
        b = spare.pop(0) if spare else a
    labels = labels_of(run, inputs, data or "test split")
    decoded = run_interpolate(run, inputs.x[a], inputs.x[b], steps, path,
                              labels=None if labels is None else labels[[a, b]])
    if run.spec.data_kind.prints(run.spec):  # the two inputs framing the path, so it can be read against them
        typer.echo(f"a: {inputs.x[a]}")
        write_output(run, decoded, out)
        typer.echo(f"b: {inputs.x[b]}")
    else:
        write_output(run, decoded, out, nrow=steps)
    say_items(run, inputs, np.array([a, b]), "from a to b:")


@example("vaekit traverse runs/fm --dims 8 --span 3 --steps 9 --out traverse.png")
def traverse(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    data: str = typer.Option(None, "--data", help=DATA_HELP + " Orders the dimensions by KL and sets their spread."),
    dims: int = typer.Option(10, "--dims", min=1, help="Rows: this many dimensions, highest KL first."),
    span: float = typer.Option(3.0, "--span", min=0.1, max=20.0, callback=finite,
                              help="Each row spans +-SPAN standard deviations."),
    steps: int = typer.Option(9, "--steps", min=2, max=64, help="Columns per row."),
    center: int = typer.Option(None, "--center", min=0, help="Traverse around this input's code (default: the "
                               "mean code)."),
    seed: int = typer.Option(0, "--seed", help="Without --center, a conditional run draws the rows under the "
                             "label of an input chosen with this seed."),
    out: Path = typer.Option(None, "--out", help="FILE.png (each row captioned with its dimension and KL) or "
                             ".npy; default RUN/figures/traversal.png."),
) -> None:
    """One row per latent dimension, ordered by KL, values across +-k sigma: a grid PNG."""
    from vaekit.applications.explore import traverse as run_traverse
    from vaekit.applications.visualize import pick_items

    run = load_run(run_dir)
    out = figure_path(run, out, "traversal.png")
    check_suffix(out, (".png", ".npy"))
    inputs = load_inputs(run, data, "test")
    labels = labels_of(run, inputs, data or "test split")
    chosen = None  # the input whose code (--center) or, in a conditional run, label the rows use
    if center is not None:
        chosen = parse_indices(str(center), len(inputs), "--center")
    elif labels is not None:
        chosen = pick_items(len(inputs), 1, seed)
    result = run_traverse(run, inputs.x, None if center is None else inputs.x[center], dims, span, steps,
                          labels=labels, center_label=None if labels is None else int(labels[chosen[0]]))
    captions = [f"z{d} ({float(result.kl[d]):.2f} nats)" for d in result.dims]
    write_output(run, result.images, out, nrow=steps, row_captions=captions)
    log.info("rows: latent dimensions %s (mean KL %s nats)", result.dims,
             ", ".join(f"{float(result.kl[d]):.2f}" for d in result.dims))
    if chosen is not None:
        say_items(run, inputs, chosen, "around the code of" if center is not None else "drawn under the label of")


@example("vaekit arithmetic runs/fm --from Sneaker --to Sandal --apply 0,1,2 --out shift.png")
def arithmetic(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    data: str = typer.Option(None, "--data", help=DATA_HELP),
    source: str = typer.Option(None, "--from", help="Group B by label (name or index): the vector points away "
                               "from it..."),
    target: str = typer.Option(None, "--to", help="...and towards group A (a label)."),
    from_indices: str = typer.Option(None, "--from-indices", help="Group B as comma-separated indices instead."),
    to_indices: str = typer.Option(None, "--to-indices", help="Group A as comma-separated indices instead."),
    apply: str = typer.Option(None, "--apply", help="Inputs to move, comma-separated indices (default: 4 "
                              "chosen at random with --seed)."),
    strengths: str = typer.Option("0,0.5,1,1.5,2", "--strengths", help="Multiples of the vector, one column each."),
    analogy: str = typer.Option(None, "--analogy", help="A,B,C indices: decode C + (B - A) for 'A is to B as C "
                                "is to ?' instead of an attribute vector."),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    out: Path = typer.Option(None, "--out", help="FILE.png (one captioned row per input) or .npy; default "
                             "RUN/figures/arithmetic.png."),
) -> None:
    """Latent arithmetic: move inputs along "mean code of A minus mean code of B", or analogies."""
    import math

    import numpy as np
    import torch

    from vaekit.applications import explore
    from vaekit.errors import ConfigError

    run = load_run(run_dir)
    out = figure_path(run, out, "arithmetic.png")
    check_suffix(out, (".png", ".npy"))
    if run.model.condition_dim:
        raise ConfigError("arithmetic works on unconditional runs; for a cvae use `vaekit swap`")
    inputs = load_inputs(run, data, "test")
    if analogy is not None and any(v is not None for v in (source, target, from_indices, to_indices)):
        raise ConfigError("--analogy and --from/--to: give one of them")
    if analogy is not None:
        picks = parse_indices(analogy, len(inputs), "--analogy")
        if len(picks) != 3:
            raise ConfigError(f"--analogy {analogy!r}: expected three indices A,B,C")
        a, b, c = picks
        images = explore.analogy(run, inputs.x[a], inputs.x[b], inputs.x[c]).cpu()
        if out.suffix.lower() == ".png":  # one row: a, b, c, then the answer
            images = torch.cat([torch.as_tensor(inputs.x[[a, b, c]], dtype=images.dtype), images])
        write_output(run, images, out, nrow=4)
        say_items(run, inputs, np.array(picks), "A, B, C:")
        return
    if from_indices is not None or to_indices is not None:
        if from_indices is None or to_indices is None:
            raise ConfigError("--from-indices and --to-indices: give both groups")
        group_b = parse_indices(from_indices, len(inputs), "--from-indices")
        group_a = parse_indices(to_indices, len(inputs), "--to-indices")
    elif source is not None and target is not None:
        group_b = np.flatnonzero(inputs.y == _class(inputs, run, source, "--from")).tolist()
        group_a = np.flatnonzero(inputs.y == _class(inputs, run, target, "--to")).tolist()
    else:
        raise ConfigError("give --from and --to (labels), --from-indices and --to-indices, or --analogy")
    try:
        factors = [float(v) for v in strengths.split(",")]
    except ValueError:
        factors = []
    if not factors or not all(math.isfinite(v) and abs(v) <= MAX_STRENGTH for v in factors):
        raise ConfigError(f"--strengths {strengths!r}: expected comma-separated numbers within +-{MAX_STRENGTH:g}")
    chosen = choose_items(inputs, None, 4, seed, apply, "--apply")
    images = explore.shift_attribute(run, inputs.x, group_a, group_b, inputs.x[chosen], factors)
    write_output(run, images, out, nrow=len(factors), row_captions=item_captions(run, inputs, chosen))
    say_items(run, inputs, chosen, "moving")


@example("vaekit swap runs/cvae --apply 0,1,2,3 --out swap.png")
def swap(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder of a conditional model (cvae)."),
    data: str = typer.Option(None, "--data", help=DATA_HELP),
    apply: str = typer.Option(None, "--apply", help="Inputs, comma-separated indices: one row each (default: 4 "
                              "chosen at random with --seed)."),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    out: Path = typer.Option(None, "--out", help="FILE.png (one captioned row per input) or .npy; default "
                             "RUN/figures/swap.png."),
) -> None:
    """Style and content: each input encoded under its own label, drawn as every class."""
    from vaekit.applications.explore import swap_labels

    run = load_run(run_dir)
    out = figure_path(run, out, "swap.png")
    check_suffix(out, (".png", ".npy"))
    inputs = load_inputs(run, data, "test")
    chosen = choose_items(inputs, None, 4, seed, apply, "--apply")
    labels = labels_of(run, inputs, data or "test split")
    if labels is None:
        from vaekit.errors import ConfigError

        raise ConfigError(f"run {str(run_dir)!r} is not conditional; swap needs a cvae (model.condition=label)")
    images = swap_labels(run, inputs.x[chosen], labels[chosen])
    write_output(run, images, out, nrow=run.model.condition_dim, row_captions=item_captions(run, inputs, chosen))
    say_items(run, inputs, chosen)
