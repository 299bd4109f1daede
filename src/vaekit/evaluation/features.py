"""Feature networks for sample quality (FID, KID, precision/recall).

FID is defined on Inception-v3 features (Heusel et al. 2017), whose weights cannot be fetched
offline. The default here is a small conv classifier that vaekit trains on the model's own data
set and saves like a run (``features.json`` + ``features.safetensors``): its penultimate layer
gives the features. Numbers from it compare models on one data set; they are not comparable with
published Inception FIDs, and every report names the network it used. A user who has a
TorchScript (``.pt``) or ONNX (``.onnx``, the ``[onnx]`` extra) extractor, Inception included,
passes it instead; it receives images in [0, 1], (N, C, H, W), and returns (N, D).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn

from vaekit.errors import ConfigError, DataError
from vaekit.files import atomic_save_tensors, atomic_write_json

FEATURES_JSON, FEATURES_WEIGHTS = "features.json", "features.safetensors"

log = logging.getLogger(__name__)


class FeatureClassifier(nn.Module):
    """Three conv blocks (32, 64, 128 channels; 3x3, batch norm, ReLU, 2x2 pooling where the image
    is large enough), global average pooling, a ``width``-wide feature layer, then class logits."""

    def __init__(self, channels: int, n_classes: int, width: int = 128) -> None:
        super().__init__()
        blocks, previous = [], channels
        for out in (32, 64, 128):
            blocks += [nn.Conv2d(previous, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            previous = out
        self.blocks = nn.ModuleList(blocks)
        self.feature = nn.Linear(128, width)
        self.head = nn.Linear(width, n_classes)

    def features(self, x: Tensor) -> Tensor:
        """Images (N, C, H, W) in [0, 1] -> features (N, width), after the ReLU of the feature layer."""
        h = self._blocks(x)[-1]
        if min(h.shape[-2:]) >= 4:
            h = F.max_pool2d(h, 2)
        return F.relu(self.feature(h.mean((-2, -1))))  # (N, width)

    def activations(self, x: Tensor) -> list[Tensor]:
        """Each conv block's output after its ReLU (before pooling): the maps a perceptual distance
        compares (models/objectives/patchgan.py)."""
        return self._blocks(x)

    def _blocks(self, x: Tensor) -> list[Tensor]:
        outputs, h = [], x
        for index, layer in enumerate(self.blocks):
            h = layer(h)
            if index % 3 == 2:  # a block's ReLU; pool before the next block where the image is large enough
                outputs.append(h)
                if index < len(self.blocks) - 1 and min(h.shape[-2:]) >= 4:
                    h = F.max_pool2d(h, 2)
        return outputs

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (N, K)


@dataclass
class FeatureNetwork:
    """Images (N, C, H, W) in [0, 1] -> features (N, D), and the one line that says what it is."""

    extract: Callable[[Tensor], Tensor]
    description: str

    @torch.no_grad()
    def __call__(self, images: Tensor, batch_size: int = 500) -> Tensor:
        return torch.cat([self.extract(part).float().reshape(len(part), -1).cpu()
                          for part in images.split(batch_size)])


def train_classifier(x: Tensor, y: Tensor, n_classes: int, epochs: int = 5, seed: int = 0,
                     batch_size: int = 128, lr: float = 1e-3) -> FeatureClassifier:
    """Fit a :class:`FeatureClassifier` on images (N, C, H, W) in [0, 1] with labels (N,)."""
    with torch.random.fork_rng(devices=[]):  # seed the initial weights without touching the caller's RNG
        torch.manual_seed(seed)
        net = FeatureClassifier(x.shape[1], n_classes)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        for index in torch.randperm(len(x), generator=order).split(batch_size):
            loss = F.cross_entropy(net(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: FeatureClassifier, x: Tensor, y: Tensor, batch_size: int = 1000) -> float:
    predicted = torch.cat([net(part).argmax(1) for part in x.split(batch_size)])
    return float((predicted == y).float().mean())


def save_classifier(net: FeatureClassifier, folder: str | Path, info: dict) -> Path:
    """``folder/features.json`` (architecture + what it was trained on) and the weights."""
    folder = Path(folder)
    header = {"kind": "vaekit-feature-classifier", "channels": net.blocks[0].in_channels,
              "n_classes": net.head.out_features, "width": net.feature.out_features, **info}
    atomic_save_tensors(folder / FEATURES_WEIGHTS, net.state_dict())
    atomic_write_json(folder / FEATURES_JSON, header)
    return folder


def load_classifier(folder: str | Path) -> tuple[FeatureClassifier, dict]:
    folder = Path(folder)
    try:
        header = json.loads((folder / FEATURES_JSON).read_text())
        net = FeatureClassifier(header["channels"], header["n_classes"], header["width"])
        net.load_state_dict(load_file(str(folder / FEATURES_WEIGHTS)))
    except (OSError, KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as error:
        raise DataError(f"feature network {str(folder)!r} is missing or unreadable ({error.__class__.__name__}); "
                        "delete it to train a new one") from None
    return net.eval(), header


def load_feature_network(path: str | Path) -> FeatureNetwork:
    """A vaekit classifier folder, a TorchScript file (.pt) or an ONNX file (.onnx)."""
    path = Path(path)
    if path.is_dir():
        net, header = load_classifier(path)
        return FeatureNetwork(net.features, f"vaekit classifier features ({header.get('width')}-d) trained on "
                              f"{header.get('data', 'unknown data')}, test accuracy {header.get('test_accuracy')}; "
                              "not comparable with Inception FID")
    if not path.is_file():
        raise DataError(f"feature network {str(path)!r} does not exist")
    if path.suffix.lower() == ".pt":
        try:
            module = torch.jit.load(str(path), map_location="cpu").eval()
        except RuntimeError:
            raise DataError(f"feature network {str(path)!r} is not a TorchScript file") from None
        return FeatureNetwork(module, f"TorchScript features from {path.name}")
    if path.suffix.lower() == ".onnx":
        try:
            import onnxruntime
        except ImportError:
            raise ConfigError("an ONNX feature network needs onnxruntime: pip install 'vaekit[onnx]'") from None
        try:
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001 (onnxruntime's errors share no base class below Exception)
            raise DataError(f"feature network {str(path)!r} is not a readable ONNX model") from None
        name = session.get_inputs()[0].name

        def run_onnx(images: Tensor) -> Tensor:
            return torch.from_numpy(session.run(None, {name: images.numpy().astype("float32")})[0])

        return FeatureNetwork(run_onnx, f"ONNX features from {path.name}")
    raise ConfigError(f"feature network {str(path)!r}: expected a vaekit classifier folder, a .pt or an .onnx file")


# The data settings that change the images themselves; loader settings (workers, in-memory) and the
# training-side subsetting (max_samples, val_fraction) do not get a classifier of their own.
IMAGE_KEYS = ("source", "binarize", "image_size", "grayscale", "test_fraction", "split_seed")


def classifier_folder(data_config) -> Path:
    """Where the default feature classifier for a data set is cached: one per data set (see
    ``IMAGE_KEYS``), shared by every run on it, so their FIDs are comparable."""
    import hashlib

    from vaekit.data.download import default_root

    tree = data_config.model_dump(mode="json")
    key = {name: tree.get(name) for name in IMAGE_KEYS}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    slug = "".join(c if c.isalnum() else "-" for c in str(key["source"]))[-40:]
    return default_root("feature-classifiers") / f"{slug}-{digest}"


def default_feature_network(data_config, unit: Callable[[np.ndarray], Tensor], epochs: int = 5,
                            seed: int = 0) -> FeatureNetwork:
    """The cached classifier for this data set, trained once on the full training split of its
    source (``unit`` maps raw images to [0, 1]) and scored on its test split."""
    from vaekit.data.sources import load_source

    folder = classifier_folder(data_config)
    if not (folder / FEATURES_JSON).is_file():
        splits = load_source(data_config.model_copy(update={"max_samples": None}))
        if splits.train.y is None:
            raise DataError("the default feature network is a classifier and needs labelled training images; "
                            "pass --features with your own extractor")
        log.info("training the feature classifier for FID (once per data set; cached in %s)", folder)
        train_y = torch.as_tensor(splits.train.y)
        net = train_classifier(unit(splits.train.x), train_y, int(train_y.max()) + 1, epochs, seed)
        test = splits.test
        score = None if test is None or test.y is None else accuracy(net, unit(test.x), torch.as_tensor(test.y))
        save_classifier(net, folder, {"data": str(data_config.source), "epochs": epochs, "seed": seed,
                                      "test_accuracy": None if score is None else round(score, 4)})
    return load_feature_network(folder)
