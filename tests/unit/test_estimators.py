"""The scikit-learn estimators: scikit-learn's own contract checks, Pipeline, GridSearchCV, pandas
output, and what each estimator is for (codes, outliers, imputation) on small real tables
(VAESynthesizer's rows: tests/unit/test_synthesize.py).

Every check that scikit-learn runs passes; the four it skips here are the array-API checks
(SCIPY_ARRAY_API is not set in this environment), not a limitation of the estimators.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from vaekit.estimators import VAEImputer, VAEOutlierDetector, VAESynthesizer, VAETransformer

# Small and short: scikit-learn's checks fit each estimator dozens of times.
QUICK = {"n_components": 2, "hidden": (16,), "max_epochs": 2, "batch_size": 32, "k": 5, "random_state": 0}


@parametrize_with_checks([VAETransformer(**QUICK), VAEOutlierDetector(**QUICK), VAEImputer(**QUICK),
                          VAESynthesizer(**QUICK)])
def test_scikit_learn_contract(estimator, check) -> None:
    check(estimator)


@pytest.fixture(scope="module")
def wine() -> tuple[np.ndarray, np.ndarray]:
    data = load_wine()
    return StandardScaler().fit_transform(data.data), data.target


def test_codes_feed_a_classifier_in_a_pipeline_and_grid_search_tunes_the_width(wine) -> None:
    x, y = wine
    pipeline = make_pipeline(VAETransformer(2, hidden=(32,), max_epochs=30, random_state=0),
                             LogisticRegression(max_iter=500))
    search = GridSearchCV(pipeline, {"vaetransformer__n_components": [2, 4]}, cv=2).fit(x, y)
    assert search.best_params_["vaetransformer__n_components"] in (2, 4)
    assert search.best_score_ > 0.8  # three wine cultivars separate well in a few latent dimensions
    assert search.predict(x[:5]).shape == (5,)


def test_transformer_outputs_codes_reconstructions_samples_and_pandas(wine) -> None:
    x, _ = wine
    model = VAETransformer(3, hidden=(32,), max_epochs=20, random_state=0).fit(x)
    codes = model.transform(x)
    assert codes.shape == (len(x), 3) and np.isfinite(codes).all()
    assert model.inverse_transform(codes).shape == x.shape
    assert model.sample(4, random_state=1).shape == (4, x.shape[1])
    assert list(model.get_feature_names_out()) == ["vaetransformer0", "vaetransformer1", "vaetransformer2"]
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    out = VAETransformer(3, hidden=(32,), max_epochs=5, random_state=0).set_output(transform="pandas").fit(frame)
    table = out.transform(frame)
    assert isinstance(table, pandas.DataFrame) and list(table.columns) == ["vaetransformer0", "vaetransformer1",
                                                                           "vaetransformer2"]


def test_same_random_state_same_model_and_a_different_one_differs(wine) -> None:
    x, _ = wine
    first = VAETransformer(2, hidden=(16,), max_epochs=5, random_state=7).fit(x).transform(x)
    again = VAETransformer(2, hidden=(16,), max_epochs=5, random_state=7).fit(x).transform(x)
    other = VAETransformer(2, hidden=(16,), max_epochs=5, random_state=8).fit(x).transform(x)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_outlier_detector_flags_its_contamination_and_ranks_malignant_tumours_lower() -> None:
    data = load_breast_cancer()
    x = StandardScaler().fit(data.data[data.target == 1]).transform(data.data)  # scaled on benign rows
    benign, malignant = x[data.target == 1], x[data.target == 0]
    detector = VAEOutlierDetector(4, contamination=0.1, hidden=(64,), max_epochs=40, random_state=0).fit(benign)
    assert abs((detector.predict(benign) == -1).mean() - 0.1) < 0.02
    from sklearn.metrics import roc_auc_score

    scores = detector.score_samples(np.concatenate([benign, malignant]))
    labels = np.r_[np.zeros(len(benign)), np.ones(len(malignant))]
    assert roc_auc_score(labels, -scores) > 0.9


def test_imputer_keeps_what_is_observed_and_beats_the_column_mean(wine) -> None:
    x, _ = wine
    rng = np.random.default_rng(0)
    missing = rng.random(x.shape) < 0.3
    holed = np.where(missing, np.nan, x)
    filled = VAEImputer(4, hidden=(64, 64), max_epochs=150, random_state=0).fit_transform(holed)
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~missing], x[~missing])
    vae_error = np.sqrt(np.mean((filled[missing] - x[missing]) ** 2))
    mean_error = np.sqrt(np.mean((np.nanmean(holed, 0)[np.nonzero(missing)[1]] - x[missing]) ** 2))
    assert vae_error < 0.9 * mean_error


def test_bad_parameters_are_refused_at_fit(wine) -> None:
    x, _ = wine
    with pytest.raises(ValueError, match="contamination"):
        VAEOutlierDetector(contamination=0.9, max_epochs=1).fit(x)
    with pytest.raises(ValueError, match="method"):
        VAEImputer(method="median", max_epochs=1).fit(x)


def test_an_all_empty_column_is_named(wine_frame) -> None:
    frame = wine_frame.copy()
    frame["empty"] = np.nan
    with pytest.raises(ValueError, match="every value of 'empty' is missing; .*drop it before fitting"):
        VAEImputer(max_epochs=1).fit(frame)
    x = frame.drop(columns="empty").select_dtypes("number").to_numpy(float)
    x[:, 2] = np.nan
    with pytest.raises(ValueError, match="every value of 'column 2' is missing"):
        VAEImputer(max_epochs=1).fit(x)


def test_imputed_binary_and_count_columns_hold_values_of_their_own_kind() -> None:
    """As ``vaekit impute`` writes them: a 0/1 column gets 0 or 1 (not a probability), a count a whole number."""
    rng = np.random.default_rng(0)
    n = 300
    level = rng.normal(size=n)
    x = np.column_stack([level, level + 0.3 * rng.normal(size=n), (level > 0).astype(float),
                         rng.poisson(np.exp(1.0 + 0.5 * level)).astype(float)])
    missing = rng.random(x.shape) < 0.25
    imputer = VAEImputer(2, hidden=(32,), max_epochs=40, k=20, random_state=0).fit(np.where(missing, np.nan, x))
    assert [c.kind for c in imputer.run_.spec.columns] == ["continuous", "continuous", "binary", "count"]
    filled = imputer.transform(np.where(missing, np.nan, x))
    assert set(np.unique(filled[:, 2])) <= {0.0, 1.0}
    assert (filled[:, 3] == np.round(filled[:, 3])).all() and (filled[:, 3] >= 0).all()
    hit = (filled[missing[:, 2], 2] == x[missing[:, 2], 2]).mean()
    assert hit > 0.75  # the sign of `level` is readable from the two continuous columns
    decoded = VAETransformer(2, hidden=(32,), max_epochs=5, random_state=0).fit(x).inverse_transform(np.zeros((3, 2)))
    assert set(np.unique(decoded[:, 2])) <= {0.0, 1.0}


@pytest.fixture(scope="module")
def wine_frame():
    pandas = pytest.importorskip("pandas")
    data = load_wine()
    frame = pandas.DataFrame(StandardScaler().fit_transform(data.data), columns=data.feature_names)
    frame["cultivar"] = pandas.Categorical(np.array(["barolo", "grignolino", "barbera"])[data.target])
    frame["strong"] = np.where(data.data[:, 0] > 13.0, "yes", "no")
    return frame


def test_a_dataframe_with_text_columns_needs_no_encoder(wine_frame) -> None:
    """Categorical and text columns get their own likelihoods; pandas' NA, None and NaN are holes."""
    pandas = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    holed = wine_frame.copy()
    gone = rng.random(len(holed)) < 0.2
    holed["cultivar"] = holed["cultivar"].astype(object).where(~gone, None)
    holed["strong"] = pandas.Series(holed["strong"], dtype="string").where(rng.random(len(holed)) > 0.1, pandas.NA)
    holed.iloc[rng.random(len(holed)) < 0.1, 0] = np.nan
    imputer = VAEImputer(4, hidden=(64,), max_epochs=60, k=20, random_state=0).fit(holed)
    kinds = {c.name: c.kind for c in imputer.run_.spec.columns}
    assert kinds["cultivar"] == "categorical" and kinds["strong"] == "binary"
    filled = imputer.transform(holed)
    assert filled.dtype == object and filled.shape == holed.shape
    assert set(filled[:, -2]) == {"barolo", "grignolino", "barbera"} and set(filled[:, -1]) == {"yes", "no"}
    accuracy = (filled[gone, -2] == wine_frame["cultivar"].to_numpy()[gone]).mean()
    assert accuracy > 0.8  # the chemistry names the cultivar; the commonest of three is 40%
    assert not any(v is None or v != v for v in filled.ravel())

    codes = VAETransformer(3, hidden=(32,), max_epochs=10, random_state=0).fit(holed)
    assert codes.transform(holed).shape == (len(holed), 3)
    assert set(codes.inverse_transform(codes.transform(holed[:5]))[:, -2]) <= {"barolo", "grignolino", "barbera"}
    assert set(codes.sample(6, random_state=0)[:, -1]) <= {"yes", "no"}
    detector = VAEOutlierDetector(3, hidden=(32,), max_epochs=10, random_state=0).fit(holed)
    assert np.isfinite(detector.score_samples(holed)).all()


def test_a_text_table_refuses_an_unknown_category_or_a_numeric_array(wine_frame) -> None:
    model = VAETransformer(2, hidden=(16,), max_epochs=2, random_state=0).fit(wine_frame)
    wrong = wine_frame.head(3).copy()
    wrong["cultivar"] = ["barolo", "chianti", "barbera"]
    with pytest.raises(ValueError, match="'cultivar'.*unknown category 'chianti'"):
        model.transform(wrong)
    with pytest.raises(ValueError), pytest.warns(UserWarning, match="feature names"):
        model.transform(wine_frame.to_numpy()[:, :-2].astype(float))


def test_pandas_output_of_a_table_with_text_keeps_each_column_s_type(wine_frame) -> None:
    """With a text column the completed table is an object array, and scikit-learn's pandas output
    made every column ``object``: numbers stay numbers, whole-number columns their integer dtype."""
    frame = wine_frame.copy()
    frame["rank"] = np.arange(len(frame)) % 5  # int64, no holes
    imputer = VAEImputer(**QUICK).set_output(transform="pandas").fit(frame)
    out = imputer.transform(frame)
    text = [name for name in frame.columns if frame[name].dtype.kind not in "biuf"]
    assert text and list(out.columns) == list(frame.columns) and out.index.equals(frame.index)
    for name in frame.columns:
        if name in text:
            assert out[name].dtype.kind not in "biuf" and out[name].notna().all()
        elif name == "rank":
            assert out[name].dtype == np.int64 and (out[name] == frame[name]).all()
        else:
            assert out[name].dtype == np.float64


@pytest.mark.parametrize(("estimator", "quantiles"), [(VAEImputer, False), (VAEOutlierDetector, False),
                                                      (VAESynthesizer, True), (VAETransformer, True)])
def test_each_estimator_reaches_continuous_columns_its_own_way(wine, estimator, quantiles) -> None:
    """The imputer and the detector standardise (RMSE and far-out values are judged in the column's
    units); synthetic rows and codes go through the quantile transform (data.continuous_transform auto)."""
    fitted = estimator(**{**QUICK, "max_epochs": 1}).fit(wine[0][:60])
    columns = fitted.run_.spec.columns
    assert all((c.quantiles is not None) == quantiles for c in columns if c.kind == "continuous")
    assert any(c.kind == "continuous" for c in columns)
    assert fitted.run_.config.train.schedule == ("cosine" if estimator is VAEImputer else "none")
