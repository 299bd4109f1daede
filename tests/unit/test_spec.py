"""DataSpec: fitted scaling round-trips, bad input fails with the promised error, likelihood choice."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from vaekit.config import DataConfig, ModelConfig
from vaekit.data.loaders import prepare_data
from vaekit.data.sources.base import RawData
from vaekit.data.spec import DataSpec
from vaekit.errors import ConfigError, DataError
from vaekit.models import build_model


def uint8_images(n: int = 20, shape: tuple[int, ...] = (1, 6, 6), seed: int = 0) -> RawData:
    x = np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    x[0] = 255  # the full range is present
    x[1] = 0
    return RawData(x=x, kind="image", max_level=255.0)


def float_table(n: int = 50, seed: int = 0) -> RawData:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=[3.0, -10.0, 0.0], scale=[0.5, 4.0, 100.0], size=(n, 3))
    return RawData(x=x, kind="table")


def test_unit_scaling_round_trips_images() -> None:
    raw = uint8_images()
    spec = DataSpec.fit(raw, DataConfig(scale="auto"))
    assert spec.scale == "unit" and spec.max_level == 255.0
    x = spec.transform(raw.x)
    assert x.dtype == torch.float32 and x.shape == (20, 1, 6, 6)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert spec.value_range == [0.0, 1.0]
    torch.testing.assert_close(spec.inverse(x), torch.from_numpy(raw.x).float())


def test_standardize_round_trips_a_table() -> None:
    raw = float_table()
    spec = DataSpec.fit(raw, DataConfig(scale="standardize"))
    x = spec.transform(raw.x)
    torch.testing.assert_close(x.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std(0, unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(spec.inverse(x).double(), torch.from_numpy(raw.x), rtol=1e-5, atol=1e-4)


def test_standardize_images_per_channel() -> None:
    rng = np.random.default_rng(1)
    x = np.stack([rng.normal(5.0, 2.0, (30, 4, 4)), rng.normal(-1.0, 0.1, (30, 4, 4))], axis=1)  # (N, 2, 4, 4)
    spec = DataSpec.fit(RawData(x=x.astype(np.float32), kind="image"), DataConfig(scale="standardize"))
    assert len(spec.loc) == 2 and len(spec.std) == 2
    scaled = spec.transform(x.astype(np.float32))
    torch.testing.assert_close(scaled.mean((0, 2, 3)), torch.zeros(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(spec.inverse(scaled), torch.from_numpy(x).float(), atol=1e-4, rtol=1e-5)


def test_table_columns_are_standardised_by_default_and_left_alone_with_scale_none() -> None:
    raw = float_table()
    spec = DataSpec.fit(raw, DataConfig(scale="auto"))
    assert [c.kind for c in spec.columns] == ["continuous"] * raw.x.shape[1]
    scaled = spec.transform(raw.x).double()
    torch.testing.assert_close(scaled.mean(0), torch.zeros(raw.x.shape[1], dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(spec.inverse(spec.transform(raw.x)), torch.from_numpy(raw.x).float(), atol=1e-5,
                               rtol=1e-5)
    plain = DataSpec.fit(raw, DataConfig(scale="none"))
    torch.testing.assert_close(plain.transform(raw.x), torch.from_numpy(raw.x).float())
    unit = DataSpec.fit(raw, DataConfig(scale="unit")).transform(raw.x)
    torch.testing.assert_close(unit.min(0).values, torch.zeros(raw.x.shape[1]), atol=1e-6, rtol=0)
    torch.testing.assert_close(unit.max(0).values, torch.ones(raw.x.shape[1]), atol=1e-6, rtol=0)


def test_shape_mismatch_names_both_shapes() -> None:
    spec = DataSpec.fit(uint8_images(), DataConfig())
    with pytest.raises(DataError) as error:
        spec.transform(np.zeros((2, 1, 6, 7), dtype=np.uint8), name="new.npy")
    message = str(error.value)
    assert "(1, 6, 7)" in message and "(1, 6, 6)" in message and "new.npy" in message


@pytest.mark.parametrize("as_tensor", [False, True], ids=["numpy", "tensor"])
def test_a_missing_table_value_stays_missing_and_infinity_is_a_data_error(as_tensor: bool) -> None:
    spec = DataSpec.fit(float_table(), DataConfig())
    x = float_table(4, seed=3).x
    x[2, 1] = np.nan
    scaled = spec.transform(torch.from_numpy(x) if as_tensor else x)
    assert torch.isnan(scaled[2, 1]) and torch.isfinite(scaled[[0, 1, 3]]).all()
    x[2, 1] = np.inf
    with pytest.raises(DataError, match="infinite"):
        spec.transform(torch.from_numpy(x) if as_tensor else x)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_images_are_a_data_error(bad: float) -> None:
    spec = DataSpec.fit(uint8_images(), DataConfig())
    x = uint8_images().x.astype(np.float32)
    x[0, 0, 1, 1] = bad
    with pytest.raises(DataError, match="NaN or infinite"):
        spec.transform(x)


def test_text_in_a_numeric_column_is_a_data_error_and_text_columns_are_categorical() -> None:
    spec = DataSpec.fit(float_table(), DataConfig())
    width = len(spec.columns)
    with pytest.raises(DataError, match="column 'x0'.*not a number"):
        spec.transform(np.array([["a"] * width], dtype=object))
    text = DataSpec.fit(RawData(x=np.array([["a", "b"], ["c", "b"], ["e", "d"]], dtype=object), kind="table"),
                        DataConfig())
    assert [c.kind for c in text.columns] == ["categorical", "binary"]
    with pytest.raises(DataError, match="unknown category 'z'"):
        text.transform(np.array([["z", "b"]], dtype=object))


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli"])
def test_bernoulli_on_unscaled_pixels_points_to_unit_scaling(likelihood: str) -> None:
    spec = DataSpec.fit(uint8_images(), DataConfig(scale="none"))
    assert spec.value_range == [0.0, 255.0]
    with pytest.raises(ConfigError) as error:
        build_model(spec, ModelConfig(likelihood=likelihood, latent_dim=2, hidden=[8]))
    assert "data.scale=unit" in str(error.value)
    assert likelihood in str(error.value)


def test_bernoulli_is_accepted_once_scaled_to_unit() -> None:
    spec = DataSpec.fit(uint8_images(), DataConfig(scale="unit"))
    model = build_model(spec, ModelConfig(likelihood="bernoulli", latent_dim=2, hidden=[8]))
    assert model.decode(torch.zeros(1, 2)).mean.shape == (1, 1, 6, 6)


def test_default_likelihood_follows_the_value_range() -> None:
    assert DataSpec.fit(uint8_images(), DataConfig()).default_likelihood() == "bernoulli"
    assert DataSpec.fit(uint8_images(), DataConfig(scale="none")).default_likelihood() == "gaussian"
    assert DataSpec.fit(float_table(), DataConfig(scale="standardize")).default_likelihood() == "table"
    unit_table = RawData(x=np.random.default_rng(0).uniform(size=(10, 4)), kind="table")
    assert DataSpec.fit(unit_table, DataConfig()).default_likelihood() == "table"


def test_levels_are_recorded_for_integer_images() -> None:
    assert DataSpec.fit(uint8_images(), DataConfig()).n_levels == 256
    digits = DataSpec.fit(RawData(x=np.arange(17, dtype=np.uint8).reshape(17, 1, 1, 1), kind="image",
                                  max_level=16.0), DataConfig())
    assert digits.n_levels == 17
    assert DataSpec.fit(uint8_images(), DataConfig(binarize=True)).n_levels == 2
    assert DataSpec.fit(float_table(), DataConfig()).n_levels is None


def test_categorical_needs_levels() -> None:
    spec = DataSpec.fit(float_table(), DataConfig(scale="standardize"))
    with pytest.raises(ConfigError, match="levels"):
        build_model(spec, ModelConfig(likelihood="categorical", latent_dim=2, hidden=[8]))


def test_binarize_thresholds_scaled_values() -> None:
    raw = uint8_images()
    spec = DataSpec.fit(raw, DataConfig(binarize=True))
    x = spec.transform(raw.x)
    assert set(torch.unique(x).tolist()) == {0.0, 1.0}
    torch.testing.assert_close(x, (torch.from_numpy(raw.x).float() / 255 > 0.5).float())


@pytest.mark.parametrize("scale", ["unit", "standardize", "none"])
def test_to_dict_from_dict_round_trip(scale: str) -> None:
    raw = uint8_images()
    raw.class_names = ["a", "b"]
    spec = DataSpec.fit(raw, DataConfig(scale=scale))
    assert DataSpec.from_dict(spec.to_dict()) == spec
    restored = DataSpec.from_dict(json.loads(spec.dumps()))  # as saved in data_spec.json
    assert restored == spec
    torch.testing.assert_close(restored.transform(raw.x), spec.transform(raw.x))


def test_prepare_data_splits_are_seeded_and_disjoint() -> None:
    config = DataConfig(source="digits", val_fraction=0.1, test_fraction=0.2, split_seed=3)
    first, again = prepare_data(config), prepare_data(config)
    assert np.array_equal(first.train.x, again.train.x) and np.array_equal(first.test.x, again.test.x)
    parts = [row.tobytes() for split in (first.train, first.val, first.test) for row in split.x]
    everything = [row.tobytes() for row in load_digits().images.astype(np.uint8)[:, None]]
    assert sorted(parts) == sorted(everything)  # a partition: every sample once, none invented
    assert len(first.test) == round(1797 * 0.2)
    other = prepare_data(config.model_copy(update={"split_seed": 4}))
    assert not np.array_equal(first.test.x, other.test.x)
    assert first.spec.shape == [1, 8, 8] and first.spec.max_level == 16.0
