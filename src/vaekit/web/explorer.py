"""What the latent explorer can do with a run, as plain Python: each method takes checked values and
returns JSON-ready dicts. :mod:`vaekit.web.app` puts HTTP in front of it; this module knows nothing
of HTTP, and does no math of its own (that is :mod:`vaekit.applications`).

Items (inputs, samples, decodings) travel as the data's kind makes them
(:meth:`DataKind.items <vaekit.data.kinds.base.DataKind.items>`): ``{"png": "data:image/png;base64,..."}``
for image runs, ``{"row": {column: value}}`` for tables, ``{"text": ..., "svg": ...}`` for text and
molecules. Model calls are serialised by one lock: on a CPU two at once only share the same cores,
and a model is not re-entrant on every device.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from vaekit.api import Run
from vaekit.applications import explore, latent_ops
from vaekit.applications.anomaly import Threshold, fit_threshold, model_space_scores, preferred_threshold
from vaekit.applications.maps import LatentMap, fit_map
from vaekit.data.loaders import class_index
from vaekit.data.sources import RawData
from vaekit.errors import ConfigError, DataError

log = logging.getLogger("vaekit")

MAP_METHODS = ("pca", "tsne")

@dataclass(frozen=True)
class Limits:
    """Caps on what one request may ask for (also reported by ``/api/info``). The latent cap is on
    the codes a request sends; a spherical path between two capped codes may pass beyond it."""

    max_body_bytes: int = 2 * 1024 * 1024  # any request body, uploads included
    max_pixels: int = 4_000_000  # an uploaded image, before it is resized to the model's input
    max_items: int = 64  # samples, decoded codes, interpolation steps
    max_abs_latent: float = 10.0  # |z| per coordinate: a prior's mass lies within about 4
    map_points: int = 2000  # held-out inputs on the map (a seeded random subset of larger sets)
    neighbours: int = 8


class Explorer:
    """A run, its held-out inputs and what the page shows of them (maps and summaries are computed
    once, on first use)."""

    def __init__(self, run: Run, inputs: RawData, limits: Limits = Limits(), seed: int = 0) -> None:
        if len(inputs) < 3:
            raise DataError(f"explore: expected at least 3 held-out inputs to map, got {len(inputs)}")
        self.run, self.limits, self.seed = run, limits, seed
        if len(inputs) > limits.map_points:  # files are often sorted by class: a random subset keeps them all
            chosen = np.random.default_rng(seed).choice(len(inputs), limits.map_points, replace=False)
            inputs = inputs.subset(np.sort(chosen))
        self.conditional = bool(run.model.condition_dim)
        if self.conditional:
            if inputs.y is None:
                raise DataError("explore: this run is conditional and its held-out inputs have no labels")
            inputs = _in_run_classes(inputs, run.spec.class_names, run.model.condition_dim)
        self.inputs = inputs
        self.labels = None if inputs.y is None else torch.as_tensor(inputs.y)
        self.class_names = list((run.spec.class_names if self.conditional else None) or inputs.class_names
                                or run.spec.class_names or [])
        self.lock = threading.RLock()  # model calls (the server also takes it, never waiting, on its event loop)
        self._map_locks = {method: threading.Lock() for method in MAP_METHODS}
        self._summary: explore.LatentSummary | None = None
        self._maps: dict[str, LatentMap] = {}
        self._threshold: Threshold | None = None

    # ---------------------------------------------------------------- shared state, lazily
    @property
    def summary(self) -> explore.LatentSummary:
        with self.lock:
            if self._summary is None:
                self._summary = explore.summarize(self.run, self.inputs.x, self._condition_of(None))
            return self._summary

    def latent_map(self, method: str) -> LatentMap:
        """Fitted once per method, under that method's own lock: a t-SNE of 2,000 codes takes
        seconds, and the model and the other maps stay free meanwhile."""
        if method not in MAP_METHODS:
            raise ConfigError(f"method {method!r}: expected {' or '.join(MAP_METHODS)}")
        if method in self._maps:
            return self._maps[method]
        means = self.summary.means.numpy()
        with self._map_locks[method]:
            if method not in self._maps:
                self._maps[method] = fit_map(means, method, self.seed)
            return self._maps[method]

    @property
    def threshold(self) -> Threshold:
        """The run's saved threshold (``vaekit anomaly``), else the 99th percentile of the held-out
        inputs' reconstruction errors (not saved)."""
        with self.lock:
            if self._threshold is None:
                self._threshold = self._saved_threshold() or self._held_out_threshold()
            return self._threshold

    def _saved_threshold(self) -> Threshold | None:
        return None if self.run.path is None else preferred_threshold(self.run.path)

    def _held_out_threshold(self) -> Threshold:
        score, k = self.run.spec.data_kind.anomaly_score(self.run.spec)  # sequences: -ELBO, 8 draws
        scores = self._scores(self.run.to_model_space(self.inputs.x), self._condition_of(None), score, k, 0)
        return fit_threshold(scores, quantile=0.99, score=score, k=k, seed=0,
                             source="explore: held-out split, not saved")

    def _scores(self, values: torch.Tensor, condition: torch.Tensor | None, score: str, k: int,
                seed: int) -> np.ndarray:
        return model_space_scores(self.run, values, score, k, seed, condition)

    # ---------------------------------------------------------------- helpers
    def _condition_of(self, indices: np.ndarray | list[int] | None) -> torch.Tensor | None:
        if not self.conditional:
            return None
        return self.labels if indices is None else self.labels[torch.as_tensor(indices)]

    def label(self, label: int | str | None, required: bool = False) -> int | None:
        """A class by index or name for a conditional run; None for every class in turn, which
        only sampling allows (``required`` for decoding a given code)."""
        if label is None:
            if required and self.conditional:
                raise ConfigError("label: this run is conditional; give the class to decode under")
            return None
        if not self.conditional:
            raise ConfigError("label: this run is not conditional")
        return class_index(label, self.class_names, self.run.model.condition_dim, "label")

    def _label_tensor(self, label: int | None, n: int) -> torch.Tensor | None:
        return None if label is None else torch.full((n,), label, device=self.run.device)

    def check_index(self, index: int) -> int:
        if not 0 <= index < len(self.inputs):
            raise DataError(f"index {index}: expected 0..{len(self.inputs) - 1}")
        return index

    def render(self, values: torch.Tensor) -> list[dict[str, Any]]:
        """Data-unit values (N, *shape) -> items for the page, as the data's kind shows them."""
        return self.run.spec.data_kind.items(self.run.spec, values)

    def render_inputs(self, indices: list[int]) -> list[dict[str, Any]]:
        """Held-out inputs as items: a table's rows as given, images as the spec reads them."""
        return self.run.spec.data_kind.input_items(self.run.spec, self.inputs.x[indices])

    # ---------------------------------------------------------------- what the API serves
    def info(self) -> dict[str, Any]:
        summary = self.summary
        dims = [{"index": d, "kl": float(summary.kl[d]), "center": float(summary.means[:, d].mean()),
                 "spread": float(summary.spread[d])} for d in summary.order[:16]]
        threshold = self.threshold
        return {
            "kind": self.run.spec.kind,
            "shape": list(self.run.spec.shape),
            "latent_dim": int(self.run.model.latent_dim),
            "preset": self.run.config.preset,
            "conditional": self.conditional,
            "classes": self.class_names,
            "inputs": len(self.inputs),
            "labelled": self.inputs.y is not None,
            "dims": dims,
            "center": summary.means.mean(0).tolist(),
            "threshold": {"score": threshold.score, "value": threshold.value, "method": threshold.method,
                          "level": threshold.level, "source": threshold.source},
            "uploads": self._uploads_refused() is None,
            "limits": asdict(self.limits),
        }

    def sample(self, n: int, temperature: float, seed: int, label: int | str | None) -> dict[str, Any]:
        chosen = self.label(label)
        with self.lock:
            values = self.run.sample(n, seed=seed, temperature=temperature, condition=self._label_tensor(chosen, n))
        return {"items": self.render(values)}

    def decode(self, z: list[list[float]], label: int | str | None) -> dict[str, Any]:
        codes = self._codes(z)
        chosen = self.label(label, required=True)
        with self.lock:
            values = self.run.decode(codes, condition=self._label_tensor(chosen, len(codes)))
        return {"items": self.render(values)}

    def _codes(self, z: list[list[float]]) -> torch.Tensor:
        width = self.run.model.latent_dim
        if any(len(row) != width for row in z):
            raise DataError(f"z: expected rows of {width} numbers, got rows of {sorted({len(row) for row in z})}")
        return torch.tensor(z, dtype=torch.float32).reshape(len(z), width)

    def item(self, index: int) -> dict[str, Any]:
        """A held-out input: itself, its label, code, reconstruction, score and nearest neighbours."""
        index = self.check_index(index)
        values = self.run.to_model_space(self.inputs.x[[index]])
        analysis = self._analysis(values, self._condition_of([index]), exclude=index)
        return {**analysis, "index": index, "item": self.render_inputs([index])[0],
                "label": self._label_name_at(index), "label_index": self._label_at(index)}

    def input(self, index: int) -> dict[str, Any]:
        """A held-out input alone (for hovering over the map): the item and its label."""
        index = self.check_index(index)
        return {"index": index, "item": self.render_inputs([index])[0], "label": self._label_name_at(index),
                "label_index": self._label_at(index)}

    def _uploads_refused(self) -> str | None:
        """Why this run takes no uploads, or None."""
        refused = self.run.spec.data_kind.unsupported(self.run.spec, "upload")
        if refused:
            return refused
        if self.conditional:
            return "this run is conditional; analyse a held-out item instead"
        if not self.run.spec.max_level:
            return ("this run's images were not 8-bit (no max_level in its data spec), so a PNG's levels "
                    "cannot be mapped to them")
        return None

    def upload(self, data: bytes) -> dict[str, Any]:
        """An uploaded image (any size, grey or colour): as :meth:`item`, read at the model's size."""
        from vaekit.data.sources.image_folder import image_from_bytes

        refused = self._uploads_refused()
        if refused:
            raise DataError(f"upload: {refused}")
        channels, height, width = self.run.spec.shape
        pixels = image_from_bytes(data, channels, (height, width), self.limits.max_pixels)  # uint8 (C, H, W)
        x = pixels[None].astype(np.float32) * (self.run.spec.max_level / 255.0)  # in the data's levels
        return {**self._analysis(self.run.to_model_space(x, name="upload"), None, exclude=None), "index": None,
                "label_index": None}

    def _analysis(self, values: torch.Tensor, condition: torch.Tensor | None, exclude: int | None) -> dict[str, Any]:
        threshold = self.threshold
        with self.lock, torch.no_grad():
            code = self.run.model.encode(values, condition).mean.cpu()  # (1, L)
            reconstruction = self.run.spec.inverse(self.run.model.reconstruct(values, condition).mean)
            score = float(self._scores(values, condition, threshold.score, threshold.k, threshold.seed)[0])
        means = self.summary.means
        k = min(self.limits.neighbours + (exclude is not None), len(means))
        found, distances = latent_ops.nearest(means, code, k)
        pairs = [(int(i), float(d)) for i, d in zip(found[0], distances[0], strict=True) if int(i) != exclude]
        pairs = pairs[: self.limits.neighbours]
        neighbours = self.render_inputs([i for i, _ in pairs])
        return {
            "item": self.render(self.run.spec.inverse(values))[0],
            "label": None,
            "z": code[0].tolist(),
            "reconstruction": self.render(reconstruction)[0],
            "score": score,
            "threshold": threshold.value,
            "flagged": bool(score > threshold.value),
            "neighbours": [{"index": i, "distance": d, **item, "label": self._label_name_at(i)}
                           for (i, d), item in zip(pairs, neighbours, strict=True)],
        }

    def _label_at(self, index: int) -> int | None:
        return None if self.inputs.y is None else int(self.inputs.y[index])

    def _label_name_at(self, index: int) -> str | None:
        value = self._label_at(index)
        if value is None:
            return None
        return self.class_names[value] if value < len(self.class_names) else str(value)

    def interpolate(self, a: dict[str, Any], b: dict[str, Any], steps: int, path: str,
                    label: int | str | None) -> dict[str, Any]:
        """Decoded points from ``a`` to ``b`` (each ``{"index": i}`` or ``{"z": [...]}``), both ends included."""
        (za, la), (zb, _) = self._endpoint(a, "a"), self._endpoint(b, "b")
        codes = latent_ops.interpolation_path(za, zb, steps, path)  # (steps, L)
        chosen = self.label(label, required=la is None)
        chosen = la if chosen is None else chosen  # a conditional path is decoded under a's label
        with self.lock:
            values = self.run.decode(codes, condition=self._label_tensor(chosen, len(codes)))
        return {"items": self.render(values), "z": codes.tolist()}

    def _endpoint(self, end: dict[str, Any], name: str) -> tuple[torch.Tensor, int | None]:
        if end.get("index") is not None:
            index = self.check_index(int(end["index"]))
            label = None if not self.conditional else int(self.labels[index])
            return self.summary.means[index], label
        if end.get("z") is not None:
            return self._codes([end["z"]])[0], None
        raise DataError(f"{name}: expected an index into the held-out inputs or a code z")

    def map(self, method: str) -> dict[str, Any]:
        latent_map = self.latent_map(method)
        labels = None if self.inputs.y is None else [int(v) for v in self.inputs.y]
        return {"method": method, "points": np.round(latent_map.points, 5).tolist(), "labels": labels,
                "classes": self.class_names, "invertible": latent_map.components is not None}

    def map_decode(self, method: str, x: float, y: float, label: int | str | None) -> dict[str, Any]:
        """Decode the code at a map position (PCA's inverse, or the nearest points' blend for t-SNE)."""
        code = self.latent_map(method).to_latent(np.array([[x, y]]))
        z = np.clip(code, -self.limits.max_abs_latent, self.limits.max_abs_latent).tolist()
        return {**self.decode(z, label), "z": z[0]}


def _in_run_classes(inputs: RawData, names: list[str] | None, n_classes: int) -> RawData:
    """Inputs whose labels index the run's own classes: labels read from another source (``--data``)
    are matched to the run's classes by name; a class the run does not know is an error."""
    own = list(inputs.class_names or [])
    if not own or not names or own == list(names)[: len(own)]:
        if int(inputs.y.max()) >= n_classes:
            raise DataError(f"explore: labels up to {int(inputs.y.max())}; the run knows {n_classes} classes")
        return inputs
    unknown = sorted(set(own) - set(names))
    if unknown:
        raise DataError(f"explore: classes {', '.join(unknown[:5])} of the inputs are not the run's "
                        f"({', '.join(list(names)[:12])})")
    mapping = np.array([list(names).index(name) for name in own])
    return dataclasses.replace(inputs, y=mapping[inputs.y], class_names=list(names))

