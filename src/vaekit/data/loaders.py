"""From a DataConfig to batches: seeded splits, a fitted DataSpec, and two batch iterators.

The fast path keeps a whole split as tensors on the training device and slices batches by index:
no DataLoader, no per-sample Python. The streaming path serves data that should not sit on the
device through a DataLoader whose workers gather and scale whole batches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vaekit.data.sources import RawData, Splits, load_source
from vaekit.data.spec import DataSpec
from vaekit.errors import ConfigError, DataError, VaekitError
from vaekit.sections import DataConfig

Batch = dict[str, Tensor]

# The fast path is taken when a split's scaled tensors stay under this many bytes.
IN_MEMORY_LIMIT = 4 * 2**30


@dataclass
class PreparedData:
    spec: DataSpec
    train: RawData
    val: RawData | None
    test: RawData | None
    train_full: RawData | None = None  # with data.crop: the uncropped training images (``train`` is centred)


def center_crop(data: RawData, size: tuple[int, int] | None, what: str = "images") -> RawData:
    """Images (N, C, H, W) cut to their central ``size`` (h, w); ``data`` itself without a size."""
    if size is None or data is None:
        return data
    if data.x.ndim != 4:
        raise ConfigError(f"data.crop={list(size)} cuts images (N, C, H, W); {what} have shape {data.x.shape[1:]}")
    return dataclasses.replace(data, x=centre_window(data.x, size, what))


def centre_window(x: np.ndarray, size: tuple[int, int], what: str = "images") -> np.ndarray:
    """The central (h, w) window of images x (..., H, W)."""
    (h, w), (height, width) = size, x.shape[-2:]
    if h > height or w > width:
        raise DataError(f"data.crop={list(size)} is larger than the {height}x{width} {what}: choose a smaller "
                        "data.crop (or enlarge the images with data.image_size)")
    top, left = (height - h) // 2, (width - w) // 2
    return x[..., top:top + h, left:left + w]


def random_crops(x: Tensor, size: tuple[int, int], generator: torch.Generator) -> Tensor:
    """A random (h, w) window of each image of x (B, C, H, W), offsets drawn from ``generator`` (CPU)."""
    (h, w), (b, c, height, width) = size, x.shape
    top = torch.randint(0, height - h + 1, (b, 1), generator=generator).to(x.device)
    left = torch.randint(0, width - w + 1, (b, 1), generator=generator).to(x.device)
    rows = (top + torch.arange(h, device=x.device)).view(b, 1, h, 1).expand(b, c, h, width)
    x = x.gather(2, rows)  # (B, C, h, W)
    cols = (left + torch.arange(w, device=x.device)).view(b, 1, 1, w).expand(b, c, h, w)
    return x.gather(3, cols)  # (B, C, h, w)


def _split(data: RawData, fraction: float, rng: np.random.Generator) -> tuple[RawData, RawData | None]:
    n_out = int(round(len(data) * fraction))
    if n_out == 0:
        return data, None
    order = rng.permutation(len(data))
    return data.subset(np.sort(order[n_out:])), data.subset(np.sort(order[:n_out]))


def class_index(item: int | str, names: Sequence[str] | None, n_classes: int, option: str,
                present: Sequence[int] | None = None, error: type[VaekitError] = ConfigError) -> int:
    """One class given by name or index -> its index, checked against ``n_classes`` (and, when
    given, the classes ``present`` in some inputs); anything else is one clear ``error`` naming
    ``option`` (a DataError where the data, not the option, lacks the class)."""
    names = list(names or [])
    allowed = range(n_classes) if present is None else sorted({int(v) for v in present})
    if isinstance(item, str) and item in names and names.index(item) in allowed:
        return names.index(item)
    if str(item).strip().lstrip("-").isdigit() and int(item) in allowed:
        return int(item)
    if present is None:
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        expected = f"an index 0..{n_classes - 1}" + (f" or a name ({shown})" if names else "")
    else:
        shown = ", ".join(names[v] if 0 <= v < len(names) else str(v) for v in allowed[:12])
        expected = f"a class index or name present in the inputs ({shown}{', ...' if len(allowed) > 12 else ''})"
    raise error(f"{option}: unknown class {item!r}; expected {expected}")


def class_indices(data: RawData, classes: list[int | str], option: str = "data.classes") -> list[int]:
    """Class indices for a list of indices or names, checked against the data's labels."""
    if data.y is None:
        raise DataError(f"{option}: the data have no labels to pick classes by")
    names = list(data.class_names or [])
    n_classes = max(len(names), int(data.y.max()) + 1)
    picked = [class_index(item, names, n_classes, option, error=DataError) for item in classes]
    if not picked:
        raise DataError(f"{option}: expected at least one class")
    return picked


MIN_TRAIN = 2  # samples: one sample has no spread to learn, and batch norm needs two


def prepare_data(config: DataConfig, raw: RawData | None = None) -> PreparedData:
    """Load the source (or take ``raw``, samples already in memory), split it with a seeded
    generator, and fit the spec on the training split."""
    splits = load_source(config) if raw is None else Splits(train=raw)
    rng = np.random.default_rng(config.split_seed)
    train, test = splits.train, splits.test
    if test is None:
        train, test = _split(train, config.test_fraction, rng)
    if config.classes is not None:
        train = train.subset(np.flatnonzero(np.isin(train.y, class_indices(train, config.classes))))
    train, val = _split(train, config.val_fraction, rng)
    if config.max_samples is not None and config.max_samples < len(train):
        train = train.subset(np.sort(rng.permutation(len(train))[: config.max_samples]))
        # validation keeps its share of what is trained on (MOSES: 2,000 of 20,000, not 158,466)
        keep = max(1, round(config.max_samples * config.val_fraction / (1.0 - config.val_fraction)))
        if val is not None and keep < len(val):
            val = val.subset(np.sort(rng.permutation(len(val))[:keep]))
    if len(train) < MIN_TRAIN:
        raise DataError(f"data {config.source!r}: only {len(train)} sample{'s' * (len(train) != 1)} to train on after "
                        f"the test and validation splits; a model needs at least {MIN_TRAIN} (more data, or smaller "
                        "data.test_fraction / data.val_fraction)")
    if config.crop is not None:  # the spec and every held-out image at the crop's size; training draws windows
        crop = tuple(config.crop)
        cropped = [center_crop(part, crop, f"data {config.source!r}") for part in (train, val, test)]
        return PreparedData(spec=DataSpec.fit(cropped[0], config, others=cropped[1:]), train=cropped[0],
                            val=cropped[1], test=cropped[2], train_full=train)
    return PreparedData(spec=DataSpec.fit(train, config, others=[val, test]), train=train, val=val, test=test)


def to_tensors(data: RawData, spec: DataSpec, device: torch.device | str = "cpu", name: str = "data") -> Batch:
    """Scale a split into model space: ``{"x": float32 (N, *shape), "y": int64 (N,)}``."""
    tensors = {"x": spec.transform(data.x, name=name).to(device)}
    if data.y is not None:
        tensors["y"] = torch.from_numpy(np.asarray(data.y, dtype=np.int64)).to(device)
    if spec.properties:  # a property head's targets, standardised (NaN: no target)
        tensors["t"] = spec.property_targets(data.x).to(device)
    return tensors


def fits_in_memory(data: RawData, config: DataConfig) -> bool:
    if config.in_memory != "auto":
        return config.in_memory == "yes"
    return data.x.size * 4 < IN_MEMORY_LIMIT


def epoch_order(n: int, seed: int, epoch: int, device: torch.device | str = "cpu") -> Tensor:
    """The sample order of one epoch, a pure function of (seed, epoch) so resume needs no state."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


class TensorBatches:
    """Batches sliced by index from tensors that already live on the device (the fast path).

    Under DDP each rank takes an interleaved shard of the same epoch order, so every rank sees
    a different part of the data and all ranks take the same number of steps.
    """

    on_device = True  # the trainer may gather batches itself from ``tensors`` and ``order``

    def __init__(
        self,
        tensors: Batch,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        crop: tuple[int, int] | None = None,
    ) -> None:
        self.tensors = tensors
        self.crop = crop
        if crop is not None:  # random crops are drawn per batch here: the trainer must not gather batches itself
            self.on_device = False
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.rank, self.world_size = rank, world_size
        self.n = len(next(iter(tensors.values())))
        self.device = next(iter(tensors.values())).device
        self.per_rank = self.n // world_size if world_size > 1 else self.n

    def __len__(self) -> int:
        full, rest = divmod(self.per_rank, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def order(self, epoch: int) -> Tensor:
        """This rank's sample order in ``epoch`` (N,), on the tensors' device."""
        if self.shuffle:
            order = epoch_order(self.n, self.seed, epoch, self.device)
        else:
            order = torch.arange(self.n, device=self.device)
        if self.world_size > 1:
            order = order[self.rank :: self.world_size][: self.per_rank]
        return order

    def iterate(self, epoch: int = 0, start: int = 0) -> Iterator[Batch]:
        """Yield the batches of ``epoch``, skipping the first ``start`` (a resumed epoch)."""
        order = self.order(epoch)
        for step in range(start, len(self)):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            batch = {key: value.index_select(0, index) for key, value in self.tensors.items()}
            if self.crop is not None:  # windows a pure function of (seed, epoch, step, rank): resumable
                key = ((self.seed * 1_000_003 + epoch) * 1_000_003 + step) * 64 + self.rank
                batch["x"] = random_crops(batch["x"], self.crop, torch.Generator().manual_seed(key))
            yield batch

    def __iter__(self) -> Iterator[Batch]:
        return self.iterate()


class _BatchDataset(torch.utils.data.Dataset):
    """Gathers and scales a whole batch per item, so workers do no per-sample Python."""

    def __init__(self, data: RawData, spec: DataSpec, batches: list[np.ndarray]) -> None:
        self.data, self.spec, self.batches = data, spec, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, item: int) -> Batch:
        index = self.batches[item]
        batch = {"x": self.spec.transform(self.data.x[index])}
        if self.data.y is not None:
            batch["y"] = torch.from_numpy(np.asarray(self.data.y[index], dtype=np.int64))
        return batch


class StreamingBatches(TensorBatches):
    """The same batches as :class:`TensorBatches`, read from host arrays through a DataLoader."""

    on_device = False

    def __init__(self, data: RawData, spec: DataSpec, batch_size: int, *, device: torch.device | str,
                 num_workers: int = 0, **kwargs) -> None:
        index = {"x": torch.zeros(len(data), 0)}  # only the length and device matter to the base
        super().__init__(index, batch_size, **kwargs)
        self.data, self.spec, self.num_workers = data, spec, num_workers
        self.device = torch.device("cpu")
        self.target = torch.device(device)

    def iterate(self, epoch: int = 0, start: int = 0) -> Iterator[Batch]:
        order = self.order(epoch).numpy()
        batches = [order[s * self.batch_size : (s + 1) * self.batch_size] for s in range(start, len(self))]
        loader = torch.utils.data.DataLoader(
            _BatchDataset(self.data, self.spec, batches),
            batch_size=None,
            num_workers=self.num_workers,
            pin_memory=self.target.type == "cuda",
        )
        for batch in loader:
            yield {key: value.to(self.target, non_blocking=True) for key, value in batch.items()}


def make_batches(data: RawData, spec: DataSpec, config: DataConfig, batch_size: int,
                 device: torch.device | str, name: str | None = None, **kwargs) -> TensorBatches:
    """The fast path when the split fits, else the streaming path; ``name`` (the source by default)
    is what messages about the data call it."""
    crop = kwargs.pop("crop", None)
    if crop is not None:  # full-size images, scaled as the spec scales its crops, cut per batch
        if not fits_in_memory(data, config):
            raise ConfigError("data.crop draws its windows from images held in memory; these do not fit "
                              "(data.in_memory): resize them smaller (data.image_size) or train on a part")
        full = dataclasses.replace(spec, shape=list(data.x.shape[1:]))
        return TensorBatches(to_tensors(data, full, device, name or config.source), batch_size, crop=crop, **kwargs)
    if fits_in_memory(data, config) or spec.properties:  # molecules with properties: a few MB of strings
        return TensorBatches(to_tensors(data, spec, device, name or config.source), batch_size, **kwargs)
    return StreamingBatches(data, spec, batch_size, device=device, num_workers=config.num_workers, **kwargs)
