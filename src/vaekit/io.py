"""The run folder, the only artefact format: JSON + safetensors, never pickle.

::

    RUN/config.json        resolved RunConfig + versions
    RUN/data_spec.json     what input the model accepts and how it is scaled
    RUN/model.safetensors  weights (loading never executes code)
    RUN/checkpoint/        last.safetensors for --resume
    RUN/history.csv        one row per epoch
    RUN/metrics.json       final evaluation
    RUN/figures/           loss.png (written with the weights) and PNGs written by commands
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from vaekit.config import RunConfig, config_from_dict
from vaekit.data.spec import DataSpec
from vaekit.errors import RunFolderError
from vaekit.files import atomic_save_tensors, atomic_write_bytes, atomic_write_json
from vaekit.models import VAE, build_model
from vaekit.version import __version__

CONFIG, SPEC, WEIGHTS = "config.json", "data_spec.json", "model.safetensors"
METRICS, HISTORY = "metrics.json", "history.csv"


def versions() -> dict[str, str]:
    return {"vaekit": __version__, "torch": torch.__version__}


def write_header(folder: Path, config: RunConfig, spec: DataSpec) -> None:
    """config.json and data_spec.json: written when training starts, so --resume can rebuild."""
    atomic_write_json(folder / CONFIG, {**config.to_dict(), "versions": versions()})
    atomic_write_json(folder / SPEC, spec.to_dict())


def save_weights(folder: Path, model: VAE) -> None:
    atomic_save_tensors(folder / WEIGHTS, model.state_dict(), metadata={"format": "vaekit-model-1"})


def write_history(folder: Path, rows: list[dict[str, float]]) -> None:
    """history.csv: one row per epoch (what training rewrites after every epoch)."""
    from vaekit.training.callbacks import write_history as write_rows

    write_rows(folder / HISTORY, rows)


def write_loss_figure(history: list[dict[str, float]], path: str | Path) -> Path:
    """Training (and validation) loss per epoch: the run folder's figures/loss.png."""
    import math
    from io import BytesIO

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.2), dpi=120)
    epochs = [row["epoch"] for row in history]
    for key, label in (("loss", "train -ELBO"), ("val_loss", "validation -ELBO")):
        if any(key in row for row in history):
            axis.plot(epochs, [row.get(key, math.nan) for row in history], label=label)
    axis.set_xlabel("epoch")
    axis.set_ylabel("nats per sample")
    axis.legend()
    figure.tight_layout()
    buffer = BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return atomic_write_bytes(Path(path), buffer.getvalue())


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RunFolderError(f"run folder {str(path.parent)!r} has no {path.name}; is it a vaekit run?")
    try:
        tree = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunFolderError(f"{str(path)!r} is not valid JSON") from None
    if not isinstance(tree, dict):
        raise RunFolderError(f"{str(path)!r}: expected a JSON object")
    return tree


def read_config(folder: str | Path) -> RunConfig:
    tree = _read_json(Path(folder) / CONFIG)
    tree.pop("versions", None)
    return config_from_dict(tree, f"run config {str(Path(folder) / CONFIG)!r}")


def read_spec(folder: str | Path) -> DataSpec:
    path = Path(folder) / SPEC
    try:
        return DataSpec.from_dict(_read_json(path))
    except TypeError:
        raise RunFolderError(f"{str(path)!r} does not describe a data spec") from None


def load_model(folder: str | Path, config: RunConfig, spec: DataSpec, device: str | torch.device = "cpu") -> VAE:
    """Rebuild the model from config + spec, then load weights (no code is executed)."""
    path = Path(folder) / WEIGHTS
    if not path.is_file():
        raise RunFolderError(f"run folder {str(folder)!r} has no {WEIGHTS}; did training finish?")
    model = build_model(spec, config.model)
    try:
        state = load_file(str(path), device=str(device))
    except Exception as error:
        raise RunFolderError(f"{str(path)!r} is unreadable ({error.__class__.__name__})") from None
    shapes = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    wrong = [f"{name} is {tuple(state[name].shape)} there, {shape} by the config"
             for name, shape in shapes.items() if name in state and tuple(state[name].shape) != shape]
    if wrong:
        raise RunFolderError(f"{str(path)!r} does not match its config.json: {len(wrong)} tensors of another shape "
                             f"({wrong[0]})")
    broken = [name for name, tensor in state.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if broken:
        raise RunFolderError(f"{str(path)!r} holds NaN or infinite weights ({len(broken)} tensors, e.g. {broken[0]}): "
                             "the run diverged or the file is damaged; retrain or resume from a checkpoint")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RunFolderError(f"{str(path)!r} does not match its config.json (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
    return model.to(device).eval()


def write_metrics(folder: Path, metrics: dict[str, Any]) -> list[str]:
    """Merge ``metrics``' sections into metrics.json; returns the sections that replaced earlier ones."""
    path = folder / METRICS
    existing = _read_json(path) if path.is_file() else {}
    atomic_write_json(path, {**existing, **metrics})
    return [key for key in metrics if key in existing]


class _EncoderGraph(torch.nn.Module):
    """x (model space) [, condition (B, C) float] -> posterior mean and log-variance (zeros for a
    deterministic code)."""

    def __init__(self, model: VAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        qz = self.model.encode(x, condition)
        logvar = getattr(qz, "logvar", torch.zeros_like(qz.mean))
        return qz.mean, logvar


class _DecoderGraph(torch.nn.Module):
    """z [, condition (B, C) float] -> the likelihood's mean, in model space."""

    def __init__(self, model: VAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.decode(z, condition).mean


def export_onnx(model: VAE, spec: DataSpec, folder: str | Path) -> list[Path]:
    """Write ``encoder.onnx`` (x -> mean, logvar) and ``decoder.onnx`` (z -> mean), dynamic batch.

    Inputs and outputs are in model space; ``data_spec.json`` (copied beside them) says how to scale.
    A conditional model's graphs take a second input, ``condition``: (B, C) one-hot class vectors.
    """
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise RunFolderError("ONNX export needs the onnx packages: pip install 'vaekit[onnx]'") from None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    x = torch.zeros(2, *spec.shape)
    z = torch.zeros(2, model.latent_dim)
    extra = [torch.zeros(2, model.condition_dim)] if model.condition_dim else []
    extra_names = ["condition"] if model.condition_dim else []
    written = []
    for graph, example, names, outputs, filename in (
        (_EncoderGraph(model), x, ["x", *extra_names], ["mean", "logvar"], "encoder.onnx"),
        (_DecoderGraph(model), z, ["z", *extra_names], ["x_mean"], "decoder.onnx"),
    ):
        tmp = folder / f".{filename}.tmp"
        axes = {name: {0: "batch"} for name in names + outputs}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(graph, (example, *extra), str(tmp), input_names=names, output_names=outputs,
                              dynamic_axes=axes, dynamo=False)
        tmp.replace(folder / filename)
        written.append(folder / filename)
    atomic_write_json(folder / SPEC, spec.to_dict())
    return written + [folder / SPEC]
