"""VAEOutlierDetector (src/vaekit/estimators/outlier.py) on tables shaped like users' data: columns
constant in training (uint8 pixels that are always 0), two-valued columns meeting a third value,
wide tables; contamination="auto" and the refusal of unusable contamination values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaekit.applications.anomaly import conformal_offset, constant_departures, require_finite
from vaekit.data.columns import Column
from vaekit.errors import ConfigError, DataError
from vaekit.estimators import VAEOutlierDetector

QUICK = {"hidden": (16,), "max_epochs": 15, "k": 10, "random_state": 0}


def pixel_table(n: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 rows, 40 columns: 30 smooth "pixels", 6 always 0 (a border), 4 that are 0 or 255 only."""
    level = rng.normal(size=(n, 1))
    smooth = np.clip(128 + 40 * level + 10 * rng.normal(size=(n, 30)), 0, 255)
    flags = np.where(rng.random((n, 4)) < 0.5, 0, 255)
    return np.column_stack([smooth, np.zeros((n, 6)), flags]).astype(np.uint8)


@pytest.fixture(scope="module")
def pixels():
    rng = np.random.default_rng(0)
    train, test = pixel_table(200, rng), pixel_table(20, rng)
    return train, test, VAEOutlierDetector(2, **QUICK).fit(train)


def test_constant_and_two_valued_columns_give_finite_scores(pixels) -> None:
    train, test, detector = pixels
    assert np.isfinite(detector.score_samples(train)).all()
    assert np.isfinite(detector.score_samples(test)).all()
    odd = test.copy()
    odd[:, -1] = 128  # a two-valued column (0 / 255 in training) meets a third value: scored, not refused
    assert np.isfinite(detector.score_samples(odd)).all()


def test_a_row_that_breaks_a_constant_column_is_the_most_anomalous(pixels) -> None:
    train, test, detector = pixels
    broken = test.copy()
    broken[0, 31] = 1  # a border pixel, 0 in every training row, lit by one level
    scores = detector.score_samples(broken)
    assert np.isfinite(scores).all()
    assert scores[0] < detector.score_samples(train).min()
    assert scores[0] < np.delete(scores, 0).min()
    assert detector.predict(broken)[0] == -1


def test_departures_are_finite_and_grow_with_the_distance() -> None:
    columns = [Column("a", "continuous"), Column("b", "continuous", loc=3.0, constant=True)]
    values = torch.tensor([[0.5, 0.0], [0.5, 1e-3], [0.5, 2.0], [0.5, float("nan")], [0.5, 3e38]])
    penalty = constant_departures(columns, values).numpy()
    assert np.isfinite(penalty).all()
    assert penalty[0] == 0 and penalty[3] == 0  # kept, and missing
    assert 0 < penalty[1] < penalty[2] < penalty[4]


def test_a_non_finite_score_is_an_error_naming_row_and_column() -> None:
    columns = [Column("a", "continuous"), Column("b", "continuous")]
    values = torch.tensor([[0.1, 0.2], [0.3, 1e30]])
    with pytest.raises(DataError, match=r"row 1.*column 'b'") as error:
        require_finite(np.array([-1.0, np.nan]), values, columns)
    assert "\n" not in str(error.value)


def test_contamination_auto_sets_a_finite_threshold_that_flags_few_normal_rows() -> None:
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(3, 8))
    normal = lambda n: rng.normal(size=(n, 3)) @ mixing + 0.1 * rng.normal(size=(n, 8))  # noqa: E731
    detector = VAEOutlierDetector(3, contamination="auto", hidden=(32,), max_epochs=40, k=10,
                                  random_state=0).fit(normal(300))
    assert np.isfinite(detector.offset_)
    flagged = (detector.predict(normal(400)) == -1).mean()
    assert flagged < 0.15  # at most 5% expected; 0.15 leaves room for a small, short fit
    far = normal(50) + 6.0 * rng.choice([-1.0, 1.0], size=(50, 8))
    assert (detector.predict(far) == -1).mean() > 0.9
    decision = detector.decision_function(far)
    np.testing.assert_allclose(decision, detector.score_samples(far) - detector.offset_)


def test_conformal_offset_is_the_right_order_statistic() -> None:
    scores = np.arange(1.0, 40.0)  # 39 held-out rows: floor(40 * 0.05) = 2nd lowest
    assert conformal_offset(scores, 0.05) == 2.0
    with pytest.raises(DataError, match="at least 19"):
        conformal_offset(np.arange(10.0), 0.05)


@pytest.mark.parametrize("value", [0, 0.0, 0.7, -0.1, float("nan"), True, "sometimes", None, [0.1]])
def test_unusable_contamination_is_one_config_error_line(value) -> None:
    x = np.random.default_rng(0).normal(size=(30, 3))
    with pytest.raises(ConfigError, match=r"contamination=.*expected 'auto' or a fraction in \(0, 0.5\]") as error:
        VAEOutlierDetector(contamination=value, max_epochs=1).fit(x)
    assert "\n" not in str(error.value)


def test_contamination_auto_refuses_too_few_rows() -> None:
    x = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(DataError, match="contamination='auto'"):
        VAEOutlierDetector(contamination="auto", max_epochs=1).fit(x)
