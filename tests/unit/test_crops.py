"""data.crop: random windows of the training images, centred ones everywhere else."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vaekit
from vaekit.config import resolve_config
from vaekit.data.loaders import TensorBatches, center_crop, prepare_data, random_crops
from vaekit.data.sources import RawData
from vaekit.errors import ConfigError, DataError


def images(n: int = 40, side: int = 12) -> RawData:
    x = (np.arange(n * side * side) % 251).reshape(n, 1, side, side).astype(np.uint8)
    return RawData(x=x, y=np.arange(n) % 2, kind="image", max_level=255.0, class_names=["a", "b"])


def test_random_crops_are_windows_of_each_image() -> None:
    x = torch.arange(2 * 3 * 6 * 7, dtype=torch.float32).view(2, 3, 6, 7)
    crops = random_crops(x, (4, 3), torch.Generator().manual_seed(0))
    assert crops.shape == (2, 3, 4, 3)
    for b in range(2):  # some window (top, left) of image b, every channel alike
        found = [(t, left) for t in range(3) for left in range(5)
                 if torch.equal(crops[b], x[b, :, t:t + 4, left:left + 3])]
        assert len(found) == 1
    again = random_crops(x, (4, 3), torch.Generator().manual_seed(0))
    assert torch.equal(crops, again)


def test_the_spec_and_held_out_images_are_centre_crops() -> None:
    raw = images()
    config = resolve_config(overrides=["data.source=array", "data.crop=[8, 6]"]).data
    data = prepare_data(config, raw=raw)
    assert data.spec.shape == [1, 8, 6]
    assert data.test.x.shape[1:] == (1, 8, 6) and data.train.x.shape[1:] == (1, 8, 6)
    assert data.train_full.x.shape[1:] == (1, 12, 12)
    np.testing.assert_array_equal(data.train.x, data.train_full.x[:, :, 2:10, 3:9])
    with pytest.raises(DataError, match="is larger than the 12x12"):
        center_crop(raw, (13, 4))
    with pytest.raises(ConfigError, match="cuts images"):
        center_crop(RawData(x=np.zeros((4, 3)), kind="table"), (2, 2))


def test_each_epoch_draws_new_windows_and_a_resume_draws_the_same() -> None:
    x = torch.rand(10, 1, 12, 12)
    batches = TensorBatches({"x": x}, 5, seed=3, crop=(8, 8))
    assert not batches.on_device  # the trainer must not gather uncropped batches itself
    first = [b["x"] for b in batches.iterate(0)]
    assert all(b.shape == (5, 1, 8, 8) for b in first)
    assert not torch.equal(torch.cat(first), torch.cat([b["x"] for b in batches.iterate(1)]))
    assert torch.equal(first[1], next(batches.iterate(0, start=1))["x"])


def test_a_run_trains_on_crops_and_reads_new_images_centred(tmp_path) -> None:
    config = resolve_config(overrides=["data.crop=[8, 8]", "model.network=conv", "model.conv_channels=[8, 16]",
                                       "train.epochs=1", "train.progress=false", "train.device=cpu",
                                       "eval.enabled=false"])
    run = vaekit.train(config, out=tmp_path / "run", data=images())
    assert run.spec.shape == [1, 8, 8] and run.model.encode(torch.rand(2, 1, 8, 8)).mean.shape == (2, 16)
    np.savez(tmp_path / "new.npz", x=images(6).x)
    inputs = vaekit.load(tmp_path / "run").inputs(str(tmp_path / "new.npz"))
    assert inputs.x.shape[1:] == (1, 8, 8)
