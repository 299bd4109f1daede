"""vaekit embed, vaekit cluster: the latent space as a map, and how well it clusters by class."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import typer

from vaekit.cli.common import check_suffix, example, labels_of, load_inputs, load_run

log = logging.getLogger("vaekit")


def _subset(inputs, max_points: int, seed: int):
    """At most ``max_points`` inputs, a seeded random subset (in their order) when there are more."""
    from vaekit.applications.visualize import pick_items

    return inputs if len(inputs) <= max_points else inputs.subset(pick_items(len(inputs), max_points, seed))


@example("vaekit embed runs/fm --data fashion-mnist --method tsne --out map.png")
def embed(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    data: str = typer.Option(None, "--data", help="Inputs (dataset name or path); default the run's test split."),
    out: Path = typer.Option(..., "--out", help="FILE.png: a 2-D (or 3-D) map coloured by label; FILE.npy or "
                             ".csv: the latent means (N, L), and the label in the csv."),
    method: str = typer.Option("pca", "--method", help="pca, tsne or umap (the umap extra)."),
    dims: int = typer.Option(2, "--dims", min=2, max=3, help="2 or 3 map dimensions."),
    max_points: int = typer.Option(5000, "--max-points", min=3, help="Map at most this many inputs (a seeded "
                                   "subset; t-SNE is quadratic)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the subset and the projection."),
) -> None:
    """Embed inputs: latent means to .npy/.csv, or a 2-D/3-D map (PCA, t-SNE, UMAP) as PNG."""
    import numpy as np

    from vaekit.applications.maps import PROJECTIONS, project, save_map
    from vaekit.applications.visualize import save_array
    from vaekit.errors import ConfigError

    check_suffix(out, (".png", ".npy", ".csv"))
    if method not in PROJECTIONS:
        raise ConfigError(f"--method {method!r}: expected one of {', '.join(PROJECTIONS)}")
    run = load_run(run_dir)
    inputs = load_inputs(run, data, "test")
    if out.suffix.lower() == ".png":
        inputs = _subset(inputs, max_points, seed)
    x, y = inputs.x, inputs.y
    labels = labels_of(run, inputs, data or "test split")
    means, _ = run.encode_all(x, name=data or "test split", condition=labels)
    if out.suffix.lower() == ".png":
        points = project(means.numpy(), method, dims, seed)
        names = inputs.class_names or run.spec.class_names
        save_map(points, out, y, names, title=f"{run.path.name if run.path else 'run'}: {method.upper()} of "
                 f"{len(x)} latent means ({means.shape[1]}-d)")
    elif out.suffix.lower() == ".csv" and y is not None:
        header = [f"mean_{i}" for i in range(means.shape[1])] + ["label"]
        save_array(np.concatenate([means.numpy(), y[:, None].astype(np.float32)], 1), out, header)
    else:
        save_array(means, out, [f"mean_{i}" for i in range(means.shape[1])])
    log.info("wrote %s", out)


@example("vaekit cluster runs/fm --data fashion-mnist --method kmeans")
def cluster(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    data: str = typer.Option(None, "--data", help="Labelled inputs (dataset name or path); default the run's "
                             "test split."),
    method: str = typer.Option("kmeans", "--method", help="kmeans or gmm."),
    clusters: int = typer.Option(None, "--clusters", min=2, help="Number of clusters (default: number of classes)."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Also score raw inputs and PCA "
                                   "with the latent dimension."),
    max_points: int = typer.Option(10_000, "--max-points", min=10, help="Cluster (and probe-train on) at most "
                                   "this many inputs."),
    probe: bool = typer.Option(False, "--probe", help="Also the accuracy of a linear probe (logistic regression) "
                               "trained on the training split's codes, scored on the test inputs."),
    seed: int = typer.Option(0, "--seed", help="Seed for the subset and the clustering."),
) -> None:
    """Cluster latent means (k-means or a Gaussian mixture): NMI, ARI and accuracy against labels.
    The latent row uses the active units only (dim shows how many)."""
    from vaekit.errors import ConfigError, DataError
    from vaekit.evaluation.clustering import cluster_scores, linear_probe, pca_baseline
    from vaekit.evaluation.latent import active_dims

    if method not in ("kmeans", "gmm"):
        raise ConfigError(f"--method {method!r}: expected kmeans or gmm")
    run = load_run(run_dir)
    splits = {"test": load_inputs(run, data, "test")}
    if probe:
        splits["train"] = load_inputs(run, data, "train")
        if splits["train"] is splits["test"]:
            log.warning("these inputs have no separate test split: the probe is scored on its own training inputs")
    codes, targets = {}, {}
    for split, inputs in splits.items():
        if inputs.y is None:
            raise DataError(f"{data or 'the run data'}: cluster scores need labelled inputs; these have none")
        inputs = _subset(inputs, max_points, seed)
        means, _ = run.encode_all(inputs.x, name=data or f"{split} split",
                                  condition=labels_of(run, inputs, data or f"{split} split"))
        if split == "test":  # cluster and probe the units that carry information (Burda et al. 2016)
            active = active_dims(means)
        flat = _numbers(run, inputs.x, data or f"{split} split").reshape(len(inputs), -1).astype("float32")
        latent = means[:, active].numpy()
        codes[split] = {"latent": latent, "raw": flat} if baselines else {"latent": latent}
        targets[split] = inputs.y
    for split, labels in targets.items():  # checked before the table's first line is printed
        if len(set(labels.tolist())) < 2:
            raise DataError(f"{data or f'the {split} split'}: cluster scores need at least 2 classes in the "
                            f"{split} inputs, got {len(set(labels.tolist()))}")
    if clusters is not None and clusters > len(targets["test"]):
        raise ConfigError(f"--clusters {clusters}: expected at most the number of inputs clustered, "
                          f"{len(targets['test'])}")
    if baselines:
        train_flat = codes.get("train", codes["test"])["raw"]
        width = min(run.model.latent_dim, *train_flat.shape)  # PCA has at most min(rows, features) components
        fitted = pca_baseline(train_flat, codes["test"]["raw"], width, seed)
        codes["test"]["pca"] = fitted[1]
        if probe:
            codes["train"]["pca"] = fitted[0]
    header = f"{'representation':<15} {'dim':>5} {'NMI':>7} {'ARI':>7} {'ACC':>7}"
    typer.echo(header + (f" {'probe':>7}" if probe else ""))
    for name, test_codes in codes["test"].items():
        scores = cluster_scores(test_codes, targets["test"], clusters, method, seed)
        line = f"{name:<15} {test_codes.shape[1]:>5} {scores['nmi']:>7.4f} {scores['ari']:>7.4f} {scores['acc']:>7.4f}"
        if probe:
            line += f" {linear_probe(codes['train'][name], targets['train'], test_codes, targets['test'], seed):>7.4f}"
        typer.echo(line)


def _numbers(run, x: np.ndarray, name: str) -> np.ndarray:
    """The raw baselines' input: x itself, or, where it holds text or holes (a table), its values in
    the model's space with holes at 0 (the column mean), which PCA and k-means can take."""
    x = np.asarray(x)
    if x.dtype == object or (np.issubdtype(x.dtype, np.floating) and np.isnan(x).any()):
        return run.to_model_space(x, name=name).nan_to_num(0.0).numpy()
    return x
