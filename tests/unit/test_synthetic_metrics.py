"""The synthetic-data report's metrics (vaekit.evaluation.synthetic, synthetic_holdout): how they behave,
and, where SDMetrics computes the same quantity, that they equal SDMetrics' numbers on real tables."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine

from vaekit.data.columns import Column
from vaekit.errors import ConfigError, DataError
from vaekit.evaluation.synthetic import (
    NUMBERS,
    Incomputable,
    code_tables,
    contingency_similarity,
    correlation_similarity,
    histogram_bins,
    ks_complement,
    quality_report,
    tv_complement,
)
from vaekit.evaluation.synthetic_holdout import closest_distances, ml_efficacy, privacy

TOLERANCE = 1e-9


def with_class(data, names: list[str], labels: np.ndarray, label: str, kind: str) -> tuple[list[Column], np.ndarray]:
    """A scikit-learn data set as one object table: its numbers and its class as text."""
    columns = [Column(name, "continuous") for name in names] + [Column(label, kind)]
    return columns, np.column_stack([data.astype(object), labels.astype(object)])


def wine() -> tuple[list[Column], np.ndarray]:
    bunch = load_wine()
    return with_class(bunch.data, list(bunch.feature_names), np.array([f"cultivar {t}" for t in bunch.target]),
                      "cultivar", "categorical")


def breast_cancer() -> tuple[list[Column], np.ndarray]:
    """Ten of its columns (the report's pairs grow as the square of the columns) and the diagnosis."""
    bunch = load_breast_cancer()
    return with_class(bunch.data[:, :10], list(bunch.feature_names[:10]), bunch.target_names[bunch.target],
                      "diagnosis", "binary")


def wine_with_holes() -> tuple[list[Column], np.ndarray]:
    """Wine with 25% of alcohol, 10% of proline and 10% of the cultivar missing."""
    columns, x = wine()
    rng = np.random.default_rng(7)
    for j, share in ((0, 0.25), (12, 0.10), (13, 0.10)):
        x[rng.random(len(x)) < share, j] = None if j == 13 else np.nan
    return columns, x


TABLES = {"wine": wine, "breast_cancer": breast_cancer, "wine_with_holes": wine_with_holes}


def perturbed(columns: list[Column], x: np.ndarray, seed: int = 0) -> np.ndarray:
    """A noisy copy of 80% of the rows: numbers plus 0.3 standard deviations of noise, 15% of each
    category column's values redrawn from the column (holes stay holes)."""
    rng = np.random.default_rng(seed)
    y = x.copy()
    for j, column in enumerate(columns):
        present = np.array([v is not None and v == v for v in y[:, j]])
        if column.kind in NUMBERS:
            numbers = y[:, j].astype(np.float64)
            y[:, j] = numbers + rng.normal(0.0, 0.3 * np.nanstd(numbers), len(y))
        else:
            redraw = present & (rng.random(len(y)) < 0.15)
            y[redraw, j] = rng.choice(y[present, j], redraw.sum())
    return y[rng.permutation(len(y))[: int(0.8 * len(y))]]


def shuffled_columns(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Every column permuted on its own: the same marginals, no relation between columns."""
    rng = np.random.default_rng(seed)
    return np.column_stack([x[rng.permutation(len(x)), j] for j in range(x.shape[1])])


# behaviour


@pytest.mark.parametrize("table", TABLES)
def test_a_table_against_itself_scores_one(table: str) -> None:
    columns, x = TABLES[table]()
    for threshold in (0.0, 0.5):
        quality = quality_report(columns, x, x, correlation_threshold=threshold, association_threshold=threshold)
        assert quality.column_shapes == quality.pair_trends == quality.overall == 1.0
        assert all(score.value == 1.0 for score in quality.shapes + quality.pairs if score.counted)


def test_shuffled_columns_keep_their_shapes_and_lose_their_pair_trends() -> None:
    columns, x = wine()
    quality = quality_report(columns, x, shuffled_columns(x))
    assert quality.column_shapes == 1.0
    assert quality.pair_trends is not None and quality.pair_trends < 0.7  # 0.67
    assert quality_report(columns, x, perturbed(columns, x)).pair_trends > 0.85  # 0.88: noise weakens them less


def test_only_pairs_related_in_the_real_table_count_in_the_report() -> None:
    columns, x = wine()
    pairs = {p.what: p for p in quality_report(columns, x, perturbed(columns, x)).pairs}
    weak = pairs["alcohol / ash"]  # r = 0.21
    assert not weak.counted and weak.value is not None and "threshold" in weak.reason
    assert pairs["total_phenols / flavanoids"].counted  # r = 0.86
    assert all(p.counted for p in quality_report(columns, x, x, 0.0, 0.0).pairs)


def test_missing_values_are_dropped_from_shapes_reported_beside_and_a_category_in_pair_trends() -> None:
    columns, x = wine_with_holes()
    y = x.copy()
    y[:, 0] = np.nan  # alcohol: no values left in the synthetic table
    y[:, 13] = "cultivar 0"
    quality = quality_report(columns, x, y, 0.0, 0.0)
    shapes = {s.what: s for s in quality.shapes}
    assert shapes["alcohol"].value is None and not shapes["alcohol"].counted
    assert shapes["alcohol"].reason == "no values in the synthetic table"
    assert quality.missing["alcohol"][1] == 1.0 and 0.15 < quality.missing["alcohol"][0] < 0.35
    assert shapes["proline"].value == 1.0  # its holes are dropped on both sides
    assert quality.column_shapes == pytest.approx(np.mean([s.value for s in quality.shapes if s.counted]))
    assert not np.isnan(quality.overall)
    # the holes of the cultivar are a category of their own: filled in, the joint frequencies differ
    hue = {p.what: p for p in quality.pairs}["hue / cultivar"]
    assert hue.value is not None and hue.value < 1.0


def test_constant_and_empty_columns_are_skipped_with_their_reason_never_a_nan() -> None:
    columns, x = wine()
    x = x.copy()
    x[:, 2] = 1.5  # ash constant in the real table
    quality = quality_report(columns, x, perturbed(columns, x), 0.0, 0.0)
    pairs = {p.what: p for p in quality.pairs}
    assert pairs["alcohol / ash"].value is None
    assert pairs["alcohol / ash"].reason == "a column is constant in the real table: no correlation"
    assert pairs["ash / cultivar"].value is not None  # a contingency table needs no spread
    assert {s.what: s for s in quality.shapes}["ash"].value is not None
    report = quality_report(columns, x, perturbed(columns, x))  # Cramér's V of a constant is undefined
    assert "one value" in {p.what: p for p in report.pairs}["ash / cultivar"].reason
    with pytest.raises(Incomputable, match="fewer than 2 rows"):
        correlation_similarity(np.array([[1.0, np.nan], [2.0, 3.0]]), np.ones((3, 2)))


def test_no_pair_counted_leaves_the_overall_score_to_the_shapes() -> None:
    columns, x = wine()
    quality = quality_report(columns[:2], x[:, :2], perturbed(columns, x)[:, :2])  # alcohol / malic acid: r 0.09
    assert quality.pair_trends is None and quality.notes == ["pair trends: no pair counted"]
    assert quality.overall == quality.column_shapes


def test_categories_are_named_as_the_table_kind_names_them() -> None:
    columns = [Column("grade", "categorical")]
    real = np.array([[1], [2.0], ["3"], [None]], dtype=object)
    synthetic = np.array([["1"], [2], [3.0], ["NA"]], dtype=object)
    coded = code_tables(columns, real, synthetic)
    np.testing.assert_array_equal(coded.tables[0], coded.tables[1])
    assert coded.levels == [3]


def test_ill_formed_tables_are_refused_by_name() -> None:
    columns, x = wine()
    with pytest.raises(DataError, match="14 columns, expected 13"):
        code_tables(columns[:13], x[:, :13], x)
    with pytest.raises(DataError, match="'alcohol' holds numbers"):
        code_tables(columns, x, np.where(np.arange(14) == 0, "high", x))


def test_histogram_bins_put_the_largest_value_and_holes_together_as_sdmetrics_does() -> None:
    np.testing.assert_array_equal(histogram_bins(np.array([0.0, 1.0, 2.5, 9.99, 10.0, np.nan])),
                                  [1, 2, 3, 10, 11, 11])


def test_exact_copies_of_training_rows_are_detected() -> None:
    columns, x = wine_with_holes()
    train, holdout = x[:120], x[120:]
    fresh = perturbed(columns, holdout, seed=3)
    synthetic = np.concatenate([train[:30], fresh])  # 30 copies (holes included) among 30 + 46 rows
    result = privacy(columns, train, synthetic, holdout)
    assert result.exact_copies == pytest.approx(30 / len(synthetic))
    assert result.holdout_exact_copies == 0.0 and result.dcr_holdout > 0
    coded = code_tables(columns, train, synthetic)
    distances = closest_distances(coded.tables[1], coded.tables[0], coded.numeric)
    assert (distances[:30] == 0).all() and (distances[30:] > 0).all() and (distances <= 1).all()


def test_ml_efficacy_of_a_copy_is_one_and_of_noise_less() -> None:
    columns, x = wine()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    train, holdout = x[order[:120]], x[order[120:]]
    same = ml_efficacy(columns, train, train, holdout, "cultivar")
    assert same.task == "classification" and same.real == same.synthetic and same.ratio == {"accuracy": 1.0, "f1": 1.0}
    noise = shuffled_columns(train)
    worse = ml_efficacy(columns, train, noise, holdout, "cultivar", model="linear")
    assert worse.ratio["accuracy"] < 0.7 and worse.skipped == {}
    regression = ml_efficacy(columns, train, perturbed(columns, train), holdout, "proline", model="linear")
    assert regression.task == "regression" and set(regression.ratio) == {"r2"} and regression.real["r2"] > 0.5


def test_ml_efficacy_skips_what_cannot_be_scored_and_says_why() -> None:
    columns, x = wine()
    train, holdout = x[::2], x[1::2]
    one_class = train.copy()
    one_class[:, 13] = "cultivar 1"
    result = ml_efficacy(columns, train, one_class, holdout, "cultivar")
    assert result.synthetic == {} and result.ratio == {} and "one class" in result.skipped["synthetic"]
    assert set(result.real) == {"accuracy", "f1"}
    flat = holdout.copy()
    flat[:, 0] = 13.0
    assert "constant" in ml_efficacy(columns, train, train, flat, "alcohol").skipped["holdout"]
    with pytest.raises(DataError, match="no such column"):
        ml_efficacy(columns, train, train, holdout, "colour")
    with pytest.raises(ConfigError, match="expected one of forest, linear"):
        ml_efficacy(columns, train, train, holdout, "cultivar", model="boosting")


# parity with SDMetrics


def frame(columns: list[Column], x: np.ndarray):
    """The table as SDMetrics takes it: numbers as float columns (NaN missing), categories as objects."""
    pd = pytest.importorskip("pandas")
    return pd.DataFrame({c.name: pd.to_numeric(pd.Series(x[:, j]), errors="coerce").astype(float)
                         if c.kind in NUMBERS else pd.Series(x[:, j], dtype=object) for j, c in enumerate(columns)})


def metadata(columns: list[Column]) -> dict:
    return {"columns": {c.name: {"sdtype": "numerical" if c.kind in NUMBERS else "categorical"} for c in columns}}


@pytest.fixture(scope="module")
def sdmetrics():
    module = pytest.importorskip("sdmetrics")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the single-table report's module is deprecated
        from sdmetrics.reports.single_table import QualityReport
    return module, QualityReport


@pytest.mark.parametrize("table", TABLES)
def test_quality_report_equals_sdmetrics(table: str, sdmetrics) -> None:
    module, SingleTableQualityReport = sdmetrics
    columns, x = TABLES[table]()
    y = perturbed(columns, x)
    ours = quality_report(columns, x, y)
    report = SingleTableQualityReport()
    report.generate(frame(columns, x), frame(columns, y), metadata(columns), verbose=False)
    properties = report.get_properties().set_index("Property")["Score"]
    assert ours.column_shapes == pytest.approx(properties["Column Shapes"], abs=TOLERANCE)
    assert ours.pair_trends == pytest.approx(properties["Column Pair Trends"], abs=TOLERANCE)
    assert ours.overall == pytest.approx(report.get_score(), abs=TOLERANCE)
    shapes = report.get_details("Column Shapes")
    assert [s.value for s in ours.shapes] == pytest.approx(list(shapes["Score"]), abs=TOLERANCE)
    details = report.get_details("Column Pair Trends")
    pairs = {p.what: p for p in ours.pairs}
    for row in details.itertuples():
        pair = pairs[f"{row[1]} / {row[2]}"]
        assert pair.metric == row.Metric
        assert pair.counted == (bool(row[8]) and not np.isnan(row.Score))  # row[8]: 'Meets Threshold?'
        if pair.counted:
            assert pair.value == pytest.approx(row.Score, abs=TOLERANCE)
    if table != "wine":
        return
    unified = module.reports.QualityReport()  # the report sdmetrics now recommends: the same numbers
    unified.generate({"t": frame(columns, x)}, {"t": frame(columns, y)}, {"tables": {"t": metadata(columns)}},
                     verbose=False)
    assert ours.overall == pytest.approx(unified.get_score(), abs=TOLERANCE)


def _theirs(metric, *args) -> float | None:
    """An SDMetrics metric's value, None where it gives NaN or raises (where ours raises Incomputable)."""
    try:
        value = float(metric.compute(*args))
    except Exception:  # noqa: BLE001 - SDMetrics raises ConstantInputError, ValueError, IncomputableMetricError
        return None
    return None if np.isnan(value) else value


def _ours(metric, *args) -> float | None:
    try:
        return metric(*args)
    except Incomputable:
        return None


def edge_cases() -> tuple[list[Column], np.ndarray, np.ndarray]:
    """Wine with holes against a perturbed copy in which ash is constant, alcalinity empty, and the
    cultivar missing throughout."""
    columns, x = wine_with_holes()
    y = perturbed(columns, x)
    y[:, 2], y[:, 3], y[:, 13] = 2.0, np.nan, None
    return columns, x, y


@pytest.mark.filterwarnings("ignore:One or more sample arguments is too small")  # scipy, on the empty column
def test_single_metrics_equal_sdmetrics(sdmetrics) -> None:
    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
    from sdmetrics.single_column import KSComplement, TVComplement

    columns, x, y = edge_cases()
    real, synthetic = frame(columns, x), frame(columns, y)
    coded = code_tables(columns, x, y)
    a, b = coded.tables
    for j, column in enumerate(columns):
        theirs, ours = (KSComplement, ks_complement) if column.kind in NUMBERS else (TVComplement, tv_complement)
        expected = _theirs(theirs, real[column.name], synthetic[column.name])
        assert _ours(ours, a[:, j], b[:, j]) == pytest.approx(expected, abs=TOLERANCE), column.name
    none = 0
    for i, j in [(0, 1), (0, 12), (1, 2), (2, 5), (3, 5), (5, 6), (9, 11)]:
        names = [columns[i].name, columns[j].name]
        expected = _theirs(CorrelationSimilarity, real[names], synthetic[names])
        none += expected is None
        assert _ours(correlation_similarity, a[:, [i, j]], b[:, [i, j]]) == pytest.approx(expected, abs=TOLERANCE)
    assert none == 3  # ash constant, alcalinity empty: both raise or give NaN on both sides
    columns, x = wine_with_holes()  # a category against itself and against a binned number
    y = perturbed(columns, x)
    real, synthetic = frame(columns, x), frame(columns, y)
    real["bins"], synthetic["bins"] = histogram_bins(real["alcohol"].to_numpy()), histogram_bins(
        synthetic["alcohol"].to_numpy())
    coded = code_tables(columns + [Column("bins", "categorical")], *(np.column_stack([t, f["bins"]]) for t, f in
                                                                    ((x, real), (y, synthetic))))
    for names, at in ((["cultivar", "bins"], [13, 14]), (["cultivar", "cultivar"], [13, 13])):
        theirs = ContingencySimilarity.compute(real[names].set_axis(["u", "v"], axis=1),
                                               synthetic[names].set_axis(["u", "v"], axis=1))
        assert contingency_similarity(coded.tables[0][:, at], coded.tables[1][:, at]) == pytest.approx(
            theirs, abs=TOLERANCE)


def test_distance_to_closest_record_equals_sdmetrics(sdmetrics) -> None:
    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    columns, x, y = edge_cases()
    train = x[:120]
    theirs = calculate_dcr(frame(columns, y), frame(columns, train), metadata(columns)).to_numpy()
    coded = code_tables(columns, train, y)
    ours = closest_distances(coded.tables[1], coded.tables[0], coded.numeric)
    np.testing.assert_allclose(ours, theirs, atol=TOLERANCE)


def test_a_wide_table_scores_a_seeded_sample_of_its_pairs() -> None:
    from vaekit.evaluation.synthetic import MAX_PAIRS, chosen_pairs, quality_report

    assert chosen_pairs(4) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    many = chosen_pairs(120)  # 7,140 pairs
    assert len(many) == MAX_PAIRS and many == sorted(set(many)) and many == chosen_pairs(120)
    rng = np.random.default_rng(0)
    real, synthetic = rng.normal(size=(60, 120)), rng.normal(size=(60, 120))
    report = quality_report(None, real, synthetic, correlation_threshold=0.0)
    assert len(report.pairs) == MAX_PAIRS
    assert "pair trends sampled: 5,000 of the 7,140 column pairs, drawn at random (seed 0)" in report.notes
    assert 0.0 < report.pair_trends <= 1.0
