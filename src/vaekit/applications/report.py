"""``vaekit report``: one self-contained HTML page for a run (every image inlined as base64): the
config, training curves, metrics, samples, reconstructions, an interpolation, a traversal and a
latent map. Each figure is made by the same library functions as its own CLI command."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from vaekit import io as run_io
from vaekit.api import Run
from vaekit.applications import explore
from vaekit.applications.maps import project, save_map
from vaekit.applications.visualize import display_scale, image_grid, save_history_plot, to_unit
from vaekit.data.sources import RawData
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


def _table(rows: dict[str, object]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows.items())
    return f"<table>{cells}</table>"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


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
    metrics_path = Path(run.path or ".") / run_io.METRICS
    if run.path and metrics_path.is_file():
        try:
            tree = json.loads(metrics_path.read_text())
        except (OSError, ValueError):  # unreadable, not UTF-8 or not JSON
            tree = None
        if isinstance(tree, dict):
            shown = {k: v for k, v in _flatten(tree).items() if not isinstance(v, list)}
            sections.append(f"<h2>Metrics</h2>{_table(shown)}")
        else:  # a damaged metrics file loses its section, not the page
            log.warning("report: metrics skipped (%s is not a JSON object)", metrics_path)
            sections.append(f"<h2>Metrics</h2><p class='note'>not shown: {html.escape(run_io.METRICS)} is not "
                            "a JSON object</p>")
    figures = _figures(run, inputs, seed, map_points)
    for title, (tag, note) in figures.items():
        sections.append(f"<h2>{html.escape(title)}</h2>{tag}<p class='note'>{html.escape(note)}</p>")
    sections.append(f"<h2>Config</h2><pre>{html.escape(json.dumps(config, indent=2))}</pre>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>vaekit report: {html.escape(name)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>\n")


def _figures(run: Run, inputs: RawData, seed: int, map_points: int) -> dict[str, tuple[str, str]]:
    """Title -> (HTML tag, caption), each figure guarded so one failure does not lose the page."""
    labels = None if inputs.y is None or not run.model.condition_dim else torch.as_tensor(inputs.y)
    n = min(len(inputs), 16)
    makers: dict[str, Callable[[], tuple[str, str]]] = {}
    if run.spec.kind == "image":
        makers["Samples"] = lambda: (_image_tag(_grid(run, run.sample(64, seed=seed), 8), "samples"),
                                     f"64 draws z ~ p(z), decoded to the likelihood mean (seed {seed}).")

        def reconstructions() -> tuple[str, str]:
            recon = run.reconstruct(inputs.x[:n], condition=None if labels is None else labels[:n])
            both = torch.cat([torch.as_tensor(inputs.x[:n], dtype=torch.float32), recon.cpu()])
            return _image_tag(_grid(run, both, n), "reconstructions"), "Held-out inputs (top) and reconstructions."

        def interpolation() -> tuple[str, str]:
            path = explore.interpolate(run, inputs.x[0], inputs.x[1], 10, "spherical",
                                       labels=None if labels is None else labels[:2])
            return _image_tag(_grid(run, path, 10), "interpolation"), "Spherical path between two held-out inputs."

        def traversal() -> tuple[str, str]:
            result = explore.traverse(run, inputs.x[:1000], n_dims=min(8, run.model.latent_dim), steps=9,
                                      labels=None if labels is None else labels[:1000])
            kls = ", ".join(f"z{d} {float(result.kl[d]):.2f}" for d in result.dims)
            return (_image_tag(_grid(run, result.images, 9), "traversal"),
                    f"One row per latent dimension, highest KL first (nats: {kls}); columns -3..+3 sd.")

        makers.update({"Reconstructions": reconstructions, "Interpolation": interpolation, "Traversal": traversal})

    def latent_map() -> tuple[str, str]:
        count = min(len(inputs), map_points)
        means, _ = run.encode_all(inputs.x[:count], condition=None if labels is None else labels[:count])
        points = project(means.numpy(), "pca", 2, seed)
        picture = _rendered(lambda path: save_map(points, path, None if inputs.y is None else inputs.y[:count],
                                                  inputs.class_names or run.spec.class_names))
        return _image_tag(picture, "latent map"), f"PCA of the latent means of {count} held-out inputs."

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
