"""``vaekit report``: one self-contained HTML page for a run (every image inlined as base64): the
config, training curves, metrics, samples, reconstructions, an interpolation, a traversal and a
latent map. Each figure is made by the same library functions as its own CLI command."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from vaekit import io as run_io
from vaekit.api import Run
from vaekit.applications import explore
from vaekit.applications.maps import project, save_map
from vaekit.applications.synthetic_report import REPORT, pairs_summary, shapes_worst_first
from vaekit.applications.visualize import (
    describe_items,
    display_scale,
    image_grid,
    pick_items,
    save_history_plot,
    to_unit,
)
from vaekit.data.sources import RawData
from vaekit.errors import DataError
from vaekit.files import atomic_write_text

log = logging.getLogger(__name__)

STYLE = """
body { font: 14px/1.5 system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
img { image-rendering: pixelated; max-width: 100%; border: 1px solid #eee; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
td, th { padding: 2px 10px; text-align: left; border-bottom: 1px solid #eee; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 12px; }
.note { color: #666; font-size: 0.9em; }
"""


def _png(picture: Image.Image) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _image_tag(picture: Image.Image, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{_png(picture)}">'


def _grid(run: Run, images: torch.Tensor, nrow: int) -> Image.Image:
    return image_grid(to_unit(run.spec, images.cpu().float()), nrow, scale=display_scale(run.spec))


def _rendered(save: Callable[[Path], Path]) -> Image.Image:
    """An image drawn by one of the library's PNG writers, read back from a temporary file."""
    with tempfile.TemporaryDirectory(prefix="vaekit-report-") as folder, \
            Image.open(save(Path(folder) / "figure.png")) as picture:
        return picture.copy()


def _metrics_table(table: dict[str, dict[str, object]]) -> str:
    """Metrics as HTML: a row per metric, a column per evaluation."""
    head = "".join(f"<th>{html.escape(name)}</th>" for name in table)
    body = "".join(f"<tr><th>{html.escape(key)}</th>{''.join(f'<td>{html.escape(v)}</td>' for v in values)}</tr>"
                   for key, values in metric_rows(table))
    return f"<table><tr><th>metric</th>{head}</tr>{body}</table>"


def _table(rows: dict[str, object]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows.items())
    return f"<table>{cells}</table>"


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return format_metric(value)


def format_metric(value: object) -> str:
    """A metric as text: a float to 4 significant digits, without an exponent from 0.001 to 100,000
    (40.28, 0.1365, 69383), with one outside it (3.142e-05); anything else as it is."""
    if not isinstance(value, float) or not math.isfinite(value) or value == 0:
        return str(value)
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:.{max(0, 3 - math.floor(math.log10(abs(value))))}f}"
    return f"{value:.3e}"


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def read_metrics(folder: Path) -> dict[str, dict[str, object]]:
    """A run's metrics.json by evaluation ("test" at the end of training, "evaluate" from ``vaekit
    evaluate``): {evaluation: {metric: value}}, nested metrics as dotted names. Left out: lists
    (``kl_per_dim``) and ``elbo``, which is ``neg_elbo`` with its sign flipped. Empty when the run has
    no metrics file; a DataError when it cannot be read."""
    path = folder / run_io.METRICS
    if not path.is_file():
        return {}
    try:
        tree = json.loads(path.read_text())
    except (OSError, ValueError) as error:  # unreadable, not UTF-8 or not JSON
        raise DataError(f"{path}: not readable as JSON ({error})") from error
    if not isinstance(tree, dict):
        raise DataError(f"{path}: expected a JSON object of evaluations")
    table = {}
    for name, metrics in tree.items():
        flat = _flatten(metrics) if isinstance(metrics, dict) else {"value": metrics}
        table[name] = {key: value for key, value in flat.items() if not isinstance(value, list)
                       and not (key == "elbo" and "neg_elbo" in flat)}
    return table


def metric_rows(table: dict[str, dict[str, object]]) -> list[tuple[str, list[str]]]:
    """Each metric once, with its value under each evaluation ("" where that one lacks it), in the
    order they first appear: the rows of a table whose columns are ``table``'s evaluations."""
    names = list(dict.fromkeys(key for metrics in table.values() for key in metrics))
    return [(key, [format_metric(metrics[key]) if key in metrics else "" for metrics in table.values()])
            for key in names]


def _rows(header: list[str], rows: list[list[object]]) -> str:
    """An HTML table with a header row; numbers formatted as metrics, None as "-"."""
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('-' if v is None else format_metric(v))}</td>" for v in row)
                   + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def synthetic_section(path: Path) -> str:
    """The synthetic-data report (``vaekit evaluate --synthetic``) as HTML: scores, column shapes worst
    first, pair trends, ML efficacy, privacy and what was not computed; a note when it is unreadable."""
    try:
        report = json.loads(path.read_text())
        tables, quality, privacy = report["tables"], report["quality"], report["privacy"]
        shapes, pairs = shapes_worst_first(report), pairs_summary(report)
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("report: synthetic data skipped (%s)", error)
        return f"<p class='note'>not shown: {html.escape(path.name)} is not readable ({html.escape(str(error))})</p>"
    parts = [f"<p class='note'>{html.escape(line)}</p>" for line in (
        f"Synthetic rows: {tables['synthetic'].get('source')} ({tables['synthetic']['rows']} rows), against the "
        f"training split ({tables['train']['rows']} rows) for quality and as the reference for privacy; "
        f"holdout: " + (f"{tables['holdout'].get('source')} ({tables['holdout']['rows']} rows)" if "holdout" in tables
                        else "none") + ".",)]
    parts.append(_table({"overall": quality["overall"], "column shapes": quality["column_shapes"],
                         "pair trends": quality["pair_trends"]}))
    parts.append("<h3>Column shapes, worst first</h3>" + _rows(
        ["column", "metric", "score", "missing (real)", "missing (synthetic)", "not computed"],
        [[s["what"], s["metric"], s["value"], *(s["missing"] or (None, None)), s["reason"] or None] for s in shapes]))
    parts.append(f"<h3>Pair trends</h3><p>{pairs['counted']} of {pairs['total']} pairs related in the real table "
                 "count; the worst of them:</p>" + _rows(["pair", "metric", "score", "real relation"],
                                                         [[p["what"], p["metric"], p["value"], p["real"]]
                                                          for p in pairs["worst"]]))
    efficacy = report.get("ml_efficacy")
    if efficacy:
        parts.append(f"<h3>ML efficacy</h3><p>A {html.escape(efficacy['model'])} predicting "
                     f"<b>{html.escape(efficacy['target'])}</b>, scored on the holdout:</p>" + _rows(
                         ["metric", "trained on the training split", "trained on synthetic rows", "ratio"],
                         [[m, v, efficacy["synthetic"].get(m), efficacy["ratio"].get(m)]
                          for m, v in efficacy["real"].items()]))
    parts.append("<h3>Privacy</h3><p>Distance to the closest training row (DCR, 0: a copy), and the share of "
                 "rows that are exact copies of a training row:</p>" + _rows(
                     ["", "synthetic rows", "holdout rows"],
                     [["median DCR", privacy["dcr_synthetic"], privacy["dcr_holdout"]],
                      ["exact copies", privacy["exact_copies"], privacy["holdout_exact_copies"]]]))
    if report.get("skipped"):
        parts.append("<h3>Not computed</h3>" + _table(report["skipped"]))
    return "".join(parts)


def build_report(run: Run, inputs: RawData, seed: int = 0, map_points: int = 2000) -> str:
    """The HTML text of the report; ``inputs`` are held-out samples (reconstructions, the path, the map)."""
    sections: list[str] = []
    name = run.path.name if run.path else "run"
    config = run.config.to_dict()
    sections.append(f"<h1>vaekit report: {html.escape(name)}</h1>"
                    f"<p>preset <b>{html.escape(str(config.get('preset')))}</b>, data "
                    f"<b>{html.escape(str(config['data']['source']))}</b> {run.spec.shape}, "
                    f"{run.model.latent_dim} latent dimensions, "
                    f"{sum(p.numel() for p in run.model.parameters()):,} parameters.</p>")
    if run.history:
        curve = _rendered(lambda path: save_history_plot(run.history, path))
        sections.append(f"<h2>Training</h2>{_image_tag(curve, 'training curves')}"
                        f"<p class='note'>Last epoch:</p>{_table(run.history[-1])}")
    try:
        table = read_metrics(run.path) if run.path else {}
    except DataError as error:  # a damaged metrics file loses its section, not the page
        log.warning("report: metrics skipped (%s)", error)
        sections.append(f"<h2>Metrics</h2><p class='note'>not shown: {html.escape(str(error))}</p>")
    else:
        if table:
            sections.append(f"<h2>Metrics</h2>{_metrics_table(table)}")
    if run.path and (run.path / REPORT).is_file():
        sections.append(f"<h2>Synthetic data</h2>{synthetic_section(run.path / REPORT)}")
    figures = _figures(run, inputs, seed, map_points)
    for title, (tag, note) in figures.items():
        sections.append(f"<h2>{html.escape(title)}</h2>{tag}<p class='note'>{html.escape(note)}</p>")
    sections.append(f"<h2>Config</h2><pre>{html.escape(json.dumps(config, indent=2))}</pre>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>vaekit report: {html.escape(name)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>\n")


def _figures(run: Run, inputs: RawData, seed: int, map_points: int) -> dict[str, tuple[str, str]]:
    """Title -> (HTML tag, caption), each figure guarded so one failure does not lose the page."""
    labels = None if inputs.y is None or not run.model.condition_dim else torch.as_tensor(inputs.y)
    names = inputs.class_names or run.spec.class_names

    def shown(indices) -> str:  # which held-out inputs a figure shows: a seeded choice, as files are often sorted
        return describe_items(indices, len(inputs), inputs.y, names)
    makers: dict[str, Callable[[], tuple[str, str]]] = {}
    if run.spec.data_kind.unsupported(run.spec, "figures") is None:  # image figures
        makers["Samples"] = lambda: (_image_tag(_grid(run, run.sample(64, seed=seed), 8), "samples"),
                                     f"64 draws z ~ p(z), decoded to the likelihood mean (seed {seed}).")

        def reconstructions() -> tuple[str, str]:
            chosen = pick_items(len(inputs), 16, seed)
            recon = run.reconstruct(inputs.x[chosen], condition=None if labels is None else labels[chosen])
            both = torch.cat([torch.as_tensor(inputs.x[chosen], dtype=torch.float32), recon.cpu()])
            return (_image_tag(_grid(run, both, len(chosen)), "reconstructions"),
                    f"Held-out inputs (top) and reconstructions: {shown(chosen)}.")

        def interpolation() -> tuple[str, str]:
            ends = pick_items(len(inputs), 2, seed)
            path = explore.interpolate(run, inputs.x[ends[0]], inputs.x[ends[-1]], 10, "spherical",
                                       labels=None if labels is None else labels[[ends[0], ends[-1]]])
            return (_image_tag(_grid(run, path, 10), "interpolation"),
                    f"Spherical path between two held-out inputs: {shown(ends)}.")

        def traversal() -> tuple[str, str]:
            reference = pick_items(len(inputs), 1000, seed)
            result = explore.traverse(run, inputs.x[reference], n_dims=min(8, run.model.latent_dim), steps=9,
                                      labels=None if labels is None else labels[reference])
            kls = ", ".join(f"z{d} {float(result.kl[d]):.2f}" for d in result.dims)
            return (_image_tag(_grid(run, result.images, 9), "traversal"),
                    f"One row per latent dimension, highest KL first (nats: {kls}); columns -3..+3 sd.")

        makers.update({"Reconstructions": reconstructions, "Interpolation": interpolation, "Traversal": traversal})

    def latent_map() -> tuple[str, str]:
        chosen = pick_items(len(inputs), map_points, seed)
        means, _ = run.encode_all(inputs.x[chosen], condition=None if labels is None else labels[chosen])
        points = project(means.numpy(), "pca", 2, seed)
        picture = _rendered(lambda path: save_map(points, path, None if inputs.y is None else inputs.y[chosen],
                                                  names))
        return _image_tag(picture, "latent map"), f"PCA of the latent means of {len(chosen)} held-out inputs."

    makers["Latent map"] = latent_map
    figures = {}
    for title, make in makers.items():
        try:
            figures[title] = make()
        except Exception as error:  # noqa: BLE001 (a report with one figure missing beats no report)
            log.warning("report: %s skipped (%s)", title.lower(), error)
            figures[title] = ("", f"not drawn: {error}")
    return figures


def write_report(run: Run, inputs: RawData, out: str | Path, seed: int = 0) -> Path:
    return atomic_write_text(out, build_report(run, inputs, seed))
