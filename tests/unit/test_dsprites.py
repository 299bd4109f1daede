"""The dSprites simulator (factor grid, drawing geometry) and its registered source."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vaekit.config import DataConfig
from vaekit.data.loaders import prepare_data
from vaekit.data.sources import SOURCES, RawData
from vaekit.data.sources.dsprites import CANVAS, WINDOW, DSprites, _draw
from vaekit.errors import DataError

SPRITES = DSprites()
SIZES = np.array(DSprites.factor_sizes)


def draw(*factors: int) -> np.ndarray:
    """One sprite, (64, 64) uint8."""
    return SPRITES.render(np.array([factors]))[0, 0]


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(image)
    return float(rows.mean()), float(cols.mean())


# ------------------------------------------------------------------------------ factor grid


def test_factor_grid_matches_dsprites() -> None:
    assert DSprites.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert DSprites.factor_sizes == (3, 6, 40, 32, 32)
    assert len(SPRITES) == 737_280
    np.testing.assert_allclose(DSprites.scales, np.linspace(0.5, 1.0, 6))
    assert DSprites.orientations[10] == pytest.approx(np.pi / 2)
    assert DSprites.orientations[-1] < 2 * np.pi


def test_index_order_is_shape_slowest_pos_y_fastest() -> None:
    np.testing.assert_array_equal(SPRITES.index_to_factors(0), [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(SPRITES.index_to_factors(1), [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(SPRITES.index_to_factors(32), [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(SPRITES.index_to_factors(len(SPRITES) - 1), SIZES - 1)
    np.testing.assert_array_equal(SPRITES.index_to_factors(len(SPRITES) // 3), [1, 0, 0, 0, 0])


def test_index_factor_round_trip() -> None:
    corners = np.array(np.meshgrid(*[[0, size - 1] for size in SIZES], indexing="ij")).reshape(5, -1).T
    index = np.random.default_rng(0).integers(0, len(SPRITES), 1000)
    np.testing.assert_array_equal(SPRITES.factors_to_index(SPRITES.index_to_factors(index)), index)
    round_trip = SPRITES.index_to_factors(SPRITES.factors_to_index(corners))
    np.testing.assert_array_equal(round_trip, corners)
    assert round_trip.dtype == np.int64


def test_sample_factors_uniform_in_range_and_seeded() -> None:
    factors = SPRITES.sample_factors(5000, np.random.default_rng(1))
    assert factors.shape == (5000, 5) and factors.dtype == np.int64
    for column, size in enumerate(SIZES):
        assert set(np.unique(factors[:, column])) == set(range(size))
    np.testing.assert_array_equal(factors, SPRITES.sample_factors(5000, np.random.default_rng(1)))


@pytest.mark.parametrize(
    "factors", [np.array([[3, 0, 0, 0, 0]]), np.array([[0, 0, 0, 0, -1]]), np.zeros((2, 4), int), np.zeros((1, 5))]
)
def test_bad_factors_raise(factors: np.ndarray) -> None:
    with pytest.raises(DataError, match="dSprites factors"):
        SPRITES.render(factors)


def test_index_out_of_range_raises() -> None:
    with pytest.raises(DataError, match="out of range"):
        SPRITES.index_to_factors(np.array([len(SPRITES)]))


# ------------------------------------------------------------------------------ drawing


def test_render_gives_binary_uint8_images() -> None:
    images = SPRITES.render(SPRITES.sample_factors(50, np.random.default_rng(2)))
    assert images.shape == (50, 1, 64, 64) and images.dtype == np.uint8
    assert set(np.unique(images)) == {0, 1}
    assert (images.reshape(50, -1).sum(axis=1) > 0).all()


def test_render_is_deterministic_and_independent_of_batching() -> None:
    factors = SPRITES.sample_factors(1500, np.random.default_rng(3))  # crosses a chunk boundary
    images = SPRITES.render(factors)
    np.testing.assert_array_equal(images, SPRITES.render(factors))
    for i in (0, 1023, 1024, 1499):
        np.testing.assert_array_equal(images[i], SPRITES.render(factors[i : i + 1])[0])


@pytest.mark.parametrize("shape", range(3))
def test_area_grows_with_scale(shape: int) -> None:
    areas = [int(draw(shape, scale, 3, 16, 16).sum()) for scale in range(6)]
    assert np.all(np.diff(areas) > 0)
    assert areas[-1] / areas[0] == pytest.approx(4.0, rel=0.2)  # area ~ scale^2, scale 0.5 -> 1


def test_largest_square_is_a_quarter_of_the_canvas_wide() -> None:
    columns = np.flatnonzero(draw(0, 5, 0, 16, 16).any(axis=0))
    assert len(columns) == CANVAS // 4


def test_pos_x_moves_right_and_pos_y_moves_down() -> None:
    rows, cols = np.array([centre_of_mass(draw(1, 3, 7, pos, 12)) for pos in range(32)]).T
    assert np.all(np.diff(cols) > 0) and np.ptp(rows) < 1.0  # rows move by rasterising only
    assert cols[0] < 14 and cols[-1] > 50
    rows, cols = np.array([centre_of_mass(draw(1, 3, 7, 12, pos)) for pos in range(32)]).T
    assert np.all(np.diff(rows) > 0) and np.ptp(cols) < 1.0  # larger pos_y: lower in the image


def test_square_looks_the_same_after_a_quarter_turn_not_an_eighth() -> None:
    for scale, pos_x, pos_y in [(5, 16, 16), (2, 3, 29), (0, 31, 0)]:
        upright = draw(0, scale, 0, pos_x, pos_y)
        assert np.sum(upright != draw(0, scale, 10, pos_x, pos_y)) <= 2
        assert np.sum(upright != draw(0, scale, 5, pos_x, pos_y)) > 0.2 * upright.sum()


def test_ellipse_turns_counter_clockwise() -> None:
    quarter = draw(1, 5, 10, 16, 16)  # long axis vertical after 90 degrees
    assert np.flatnonzero(quarter.any(axis=0)).size < np.flatnonzero(quarter.any(axis=1)).size
    eighth = draw(1, 5, 5, 16, 16)  # long axis from lower left to upper right
    rows, cols = np.nonzero(eighth)
    assert np.corrcoef(rows, cols)[0, 1] < -0.5


def test_shapes_differ_in_area_at_equal_scale() -> None:
    square, ellipse, heart = (int(draw(shape, 5, 0, 16, 16).sum()) for shape in range(3))
    assert square > heart > ellipse
    assert square == 256  # 16 x 16 px
    assert ellipse == pytest.approx(np.pi * 8 * 4, rel=0.05)  # semi-axes 8 and 4 px
    assert heart == pytest.approx(180, rel=0.05)  # the implicit curve's area 3.66, scaled


def test_drawing_window_never_clips_a_sprite() -> None:
    """The fast path draws a 24 x 24 patch; the whole canvas must give the same pixels."""
    grid = np.array(np.meshgrid([0, 1, 2], [5], range(40), [0, 1, 16, 30, 31], [0, 2, 31], indexing="ij"))
    factors = grid.reshape(5, -1).T
    windowed = np.zeros((len(factors), CANVAS, CANVAS), dtype=np.uint8)
    whole = np.zeros_like(windowed)
    _draw(windowed, factors, WINDOW)
    _draw(whole, factors, CANVAS)
    np.testing.assert_array_equal(windowed, whole)


# ------------------------------------------------------------------------------ the source


def test_raw_data_subset_carries_factors() -> None:
    data = RawData(x=np.zeros((4, 2)), factors=np.arange(8).reshape(4, 2), factor_names=["a", "b"])
    part = data.subset(np.array([3, 1]))
    np.testing.assert_array_equal(part.factors, [[6, 7], [2, 3]])
    assert part.factor_names == ["a", "b"]
    assert RawData(x=np.zeros((2, 1))).subset(np.array([0])).factors is None


def test_source_with_max_samples_renders_a_seeded_part() -> None:
    config = DataConfig(source="dsprites", max_samples=500)
    source = SOURCES.get("dsprites")
    assert source.available_offline(config)
    splits = source.load(config)
    train = splits.train
    assert splits.test is None
    assert len(train) == len(train.y) == len(train.factors) == math.ceil(500 / (0.8 * 0.9)) + 2
    assert train.x.shape[1:] == (1, 64, 64) and train.x.dtype == np.uint8 and train.x.max() == 1
    assert train.kind == "image" and train.max_level == 1.0
    assert train.class_names == ["square", "ellipse", "heart"]
    assert train.factor_names == list(DSprites.factor_names)
    assert train.factors.dtype == np.int64
    assert (train.factors >= 0).all() and (train.factors < SIZES).all()
    np.testing.assert_array_equal(train.y, train.factors[:, 0])
    np.testing.assert_array_equal(train.x, SPRITES.render(train.factors))
    assert len(np.unique(SPRITES.factors_to_index(train.factors))) == len(train)
    np.testing.assert_array_equal(source.load(config).train.factors, train.factors)
    other = source.load(DataConfig(source="dsprites", max_samples=500, split_seed=1)).train
    assert not np.array_equal(other.factors, train.factors)


@pytest.mark.parametrize("val_fraction, test_fraction", [(0.1, 0.2), (0.0, 0.0), (0.3, 0.5)])
def test_prepare_data_keeps_max_samples_and_picks_bernoulli(val_fraction: float, test_fraction: float) -> None:
    config = DataConfig(source="dsprites", max_samples=301, val_fraction=val_fraction, test_fraction=test_fraction)
    prepared = prepare_data(config)
    assert len(prepared.train) == 301
    assert prepared.spec.shape == [1, 64, 64]
    assert prepared.spec.default_likelihood() == "bernoulli"
    assert prepared.spec.class_names == ["square", "ellipse", "heart"]
    for split in (prepared.train, prepared.val, prepared.test):
        if split is not None:
            np.testing.assert_array_equal(split.y, split.factors[:, 0])
            np.testing.assert_array_equal(split.x, SPRITES.render(split.factors))
