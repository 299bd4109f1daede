"""Anomaly detection with a trained VAE: per-item keyed noise, per-sample scores (recon / elbo / nll),
thresholds saved with the run, AUROC/AUPRC, the figure of extremes, and ``data.classes`` (a model
trained on some classes only, tested on all of them).

One VAE on the bundled 8x8 digits is trained once for the module (40 short epochs, a few seconds);
the autoencoder and the CVAE need no training for what is asserted of them and are built untrained.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor

from vaekit.api import Run
from vaekit.applications.anomaly import (
    THRESHOLDS_FILE,
    Threshold,
    detection_scores,
    fit_threshold,
    load_threshold,
    run_scores,
    save_extremes,
    save_threshold,
    score_samples,
)
from vaekit.config import DataConfig, resolve_config
from vaekit.data.loaders import PreparedData, class_indices, prepare_data
from vaekit.data.spec import DataSpec
from vaekit.distributions.posteriors import DiagonalGaussian, KeyedNoise, content_keys, randn
from vaekit.errors import ConfigError, DataError
from vaekit.evaluation.likelihood import log_weights
from vaekit.models import build_model

TINY = ["data.source=digits", "model.hidden=[128]", "model.latent_dim=8", "train.batch_size=64",
        "train.device=cpu", "train.progress=false", "eval.enabled=false"]
SCORES = ["recon", "elbo", "nll"]
TABLE = DataSpec(kind="table", shape=[6], scale="unit", value_range=[0.0, 1.0])


@pytest.fixture(scope="module")
def vae(digits_vae: Run) -> Run:
    """The session's digits VAE (tests/conftest.py)."""
    return digits_vae


@pytest.fixture(scope="module")
def data(vae: Run) -> PreparedData:
    """The digits splits the run was trained on: ``x`` (N, 1, 8, 8) levels 0..16, ``y`` (N,)."""
    return prepare_data(vae.config.data)


@pytest.fixture(scope="module")
def test_x(vae: Run, data: PreparedData) -> Tensor:
    """The held-out digits in model space, [0, 1]: (N, 1, 8, 8)."""
    return vae.to_model_space(data.test.x)


def untrained(preset: str) -> Run:
    config = resolve_config(preset=preset, overrides=TINY)
    spec = prepare_data(config.data).spec
    torch.manual_seed(0)
    return Run(model=build_model(spec, config.model).eval(), spec=spec, config=config)


# --------------------------------------------------------------------------------- KeyedNoise


def keyed(keys: list[int], shape: tuple[int, ...], seed: int = 0) -> Tensor:
    return KeyedNoise(torch.tensor(keys), seed).normal(shape, torch.empty(0))


@pytest.mark.parametrize("lead", [(), (3,)], ids=["B-L", "S-B-L"])
def test_keyed_noise_of_an_item_does_not_depend_on_its_batch(lead: tuple[int, ...]) -> None:
    whole = keyed([0, 1, 2, 3, 4, 5], (*lead, 6, 5))  # (*S, 6, L)
    assert whole.shape == (*lead, 6, 5)
    picked = [4, 1, 5]  # a subset, in another order
    part = keyed(picked, (*lead, 3, 5))
    assert torch.equal(part, whole[..., picked, :])
    alone = keyed([2], (*lead, 1, 5))
    assert torch.equal(alone, whole[..., [2], :])


def test_keyed_noise_differs_between_seeds_keys_and_successive_draws() -> None:
    noise = KeyedNoise(torch.tensor([7, 8]), seed=0)
    first, second = noise.normal((2, 16), torch.empty(0)), noise.normal((2, 16), torch.empty(0))
    assert not torch.allclose(first, second), "successive draws (e.g. the layers of a hierarchy) differ"
    assert not torch.allclose(first[0], first[1]), "two keys give two streams"
    assert not torch.allclose(first, keyed([7, 8], (2, 16), seed=1)), "the seed changes the draws"
    again = KeyedNoise(torch.tensor([7, 8]), seed=0)
    assert torch.equal(again.normal((2, 16), torch.empty(0)), first), "the same calls reproduce the noise"
    assert torch.equal(again.normal((2, 16), torch.empty(0)), second)


def test_keyed_noise_is_standard_normal_and_uncorrelated() -> None:
    draws = keyed(list(range(1000)), (4, 1000, 250))  # 1e6 values, (S, B, L)
    flat = draws.double().flatten()
    assert abs(float(flat.mean())) < 0.005
    assert abs(float(flat.std()) - 1.0) < 0.005
    assert abs(float((flat**3).mean())) < 0.02  # no skew
    assert abs(float((flat**4).mean()) - 3.0) < 0.05  # normal kurtosis
    assert abs(float((flat.abs() < 1.96).double().mean()) - 0.95) < 0.002  # the tails of a normal
    neighbours = torch.corrcoef(torch.stack([draws[:, :-1].flatten(), draws[:, 1:].flatten()]).double())
    assert abs(float(neighbours[0, 1])) < 0.01, "adjacent keys give independent noise"
    positions = torch.corrcoef(torch.stack([draws[..., :-1].flatten(), draws[..., 1:].flatten()]).double())
    assert abs(float(positions[0, 1])) < 0.01, "adjacent positions of one item are independent"


def test_keyed_noise_follows_the_dtype_and_refuses_a_shape_without_its_batch() -> None:
    noise = KeyedNoise(torch.arange(3))
    assert noise.normal((3, 4), torch.empty(0, dtype=torch.float64)).dtype == torch.float64
    for shape in [(4, 4), (3,), (3, 4, 2)]:
        with pytest.raises(ValueError, match="3 items"):
            KeyedNoise(torch.arange(3)).normal(shape, torch.empty(0))


def test_randn_dispatches_on_the_generator() -> None:
    like = torch.empty(0)
    assert torch.equal(randn((2, 3), like, KeyedNoise(torch.tensor([5, 6]), 2)), keyed([5, 6], (2, 3), seed=2))
    a = randn((2, 3), like, torch.Generator().manual_seed(1))
    assert torch.equal(a, torch.randn((2, 3), generator=torch.Generator().manual_seed(1)))
    assert randn((2, 3), like).shape == (2, 3)


def test_a_posterior_sample_with_keyed_noise_is_per_item() -> None:
    loc, logvar = torch.randn(5, 3, generator=torch.Generator().manual_seed(0)), torch.zeros(5, 3)
    q = DiagonalGaussian(loc, logvar)
    whole = q.rsample((2,), generator=KeyedNoise(torch.arange(5), 3))  # (2, 5, 3)
    sub = DiagonalGaussian(loc[[3, 0]], logvar[[3, 0]]).rsample((2,), generator=KeyedNoise(torch.tensor([3, 0]), 3))
    torch.testing.assert_close(sub, whole[:, [3, 0]])


# ------------------------------------------------------------------------------------ scores


@pytest.mark.parametrize("score", SCORES)
def test_out_of_distribution_inputs_score_higher(vae: Run, test_x: Tensor, score: str) -> None:
    normal = score_samples(vae.model, test_x, score, k=20)  # (N,)
    assert normal.shape == (len(test_x),) and torch.isfinite(normal).all()
    noise = torch.rand(test_x.shape, generator=torch.Generator().manual_seed(0))  # uniform in [0, 1]
    for outlier in (noise, 1.0 - test_x):
        odd = score_samples(vae.model, outlier, score, k=20)
        assert float(odd.median()) > float(normal.quantile(0.95))
        both = torch.cat([normal, odd]).numpy()
        is_anomaly = np.r_[np.zeros(len(normal)), np.ones(len(odd))]
        assert detection_scores(both, is_anomaly)["auroc"] > 0.95


@pytest.mark.parametrize("score,k", [("recon", 1), ("elbo", 20), ("nll", 20), ("nll", 130)])
def test_a_samples_score_does_not_depend_on_its_batch(vae: Run, test_x: Tensor, score: str, k: int) -> None:
    x = test_x[:150]
    whole = score_samples(vae.model, x, score, k=k, seed=3)
    picked = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))[:40]
    part = score_samples(vae.model, x[picked], score, k=k, seed=3)  # keyed by content: no keys needed
    torch.testing.assert_close(part, whole[picked], rtol=1e-5, atol=1e-4)
    explicit = score_samples(vae.model, x[picked], score, k=k, seed=3, keys=picked)
    torch.testing.assert_close(explicit, score_samples(vae.model, x, score, k=k, seed=3,
                                                       keys=torch.arange(len(x)))[picked], rtol=1e-5, atol=1e-4)
    if score != "recon":  # the control: keyed by their place instead of their content, the draws differ
        assert not torch.allclose(explicit, whole[picked], rtol=1e-5, atol=1e-4)


def test_sampled_scores_are_seeded(vae: Run, test_x: Tensor) -> None:
    x = test_x[:50]
    first = score_samples(vae.model, x, "nll", k=10, seed=5)
    assert torch.equal(first, score_samples(vae.model, x, "nll", k=10, seed=5))
    assert not torch.equal(first, score_samples(vae.model, x, "nll", k=10, seed=6))
    recon = score_samples(vae.model, x, "recon", seed=5)
    assert torch.equal(recon, score_samples(vae.model, x, "recon", seed=6)), "recon draws nothing"


def test_nll_is_never_above_the_negative_elbo_from_the_same_draws(vae: Run, test_x: Tensor) -> None:
    x = test_x[:100]
    elbo = score_samples(vae.model, x, "elbo", k=30, seed=2)
    nll = score_samples(vae.model, x, "nll", k=30, seed=2)
    assert (nll <= elbo + 1e-4).all(), "-logmeanexp(w) <= -mean(w) for the same w"
    assert (nll < elbo - 1e-3).float().mean() > 0.9, "the IWAE bound is strictly tighter almost everywhere"
    weights = log_weights(vae.model, x, 30, KeyedNoise(content_keys(x), 2), chunk=30)  # (k, B)
    torch.testing.assert_close(elbo, -weights.mean(0), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(nll, -(torch.logsumexp(weights, 0) - math.log(30)), rtol=1e-5, atol=1e-4)


def test_recon_score_is_the_squared_error_of_the_usual_reconstruction(vae: Run, test_x: Tensor) -> None:
    x = test_x[:20]
    with torch.no_grad():
        expected = (vae.model.reconstruct(x).mean - x).square().flatten(1).sum(1)  # (N,)
    torch.testing.assert_close(score_samples(vae.model, x, "recon"), expected)


def test_run_scores_takes_data_units_and_refuses_bad_input(vae: Run, data: PreparedData, test_x: Tensor) -> None:
    raw = data.test.x[:30]  # levels 0..16
    np.testing.assert_allclose(run_scores(vae, raw, "elbo", k=5), score_samples(vae.model, test_x[:30], "elbo", k=5))
    with pytest.raises(DataError):
        run_scores(vae, np.zeros((3, 5)), "recon")
    with pytest.raises(ConfigError, match="score"):
        run_scores(vae, raw, "likelihood")


def test_bad_score_arguments_are_config_errors(vae: Run, test_x: Tensor) -> None:
    with pytest.raises(ConfigError, match="foo"):
        score_samples(vae.model, test_x[:3], "foo")
    with pytest.raises(ConfigError, match="k = 0"):
        score_samples(vae.model, test_x[:3], "nll", k=0)
    with pytest.raises(DataError, match="keys"):
        score_samples(vae.model, test_x[:3], "nll", k=2, keys=torch.arange(2))


def test_a_deterministic_code_has_a_recon_score_but_no_elbo_or_nll() -> None:
    ae = untrained("ae")
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    recon = score_samples(ae.model, x, "recon")
    assert recon.shape == (6,) and torch.isfinite(recon).all()
    for score in ("elbo", "nll"):
        with pytest.raises(ConfigError, match="recon"):
            score_samples(ae.model, x, score, k=3)


def test_a_conditional_model_scores_with_the_labels(data: PreparedData) -> None:
    cvae = untrained("cvae")
    x, y = cvae.to_model_space(data.test.x[:20]), torch.as_tensor(data.test.y[:20])
    for score in SCORES:
        given = score_samples(cvae.model, x, score, k=5, condition=y)
        assert given.shape == (20,) and torch.isfinite(given).all()
        assert not torch.allclose(given, score_samples(cvae.model, x, score, k=5, condition=(y + 1) % 10))
    keys = torch.tensor([4, 9])
    part = score_samples(cvae.model, x[keys], "nll", k=5, condition=y[keys], keys=keys)
    torch.testing.assert_close(part, score_samples(cvae.model, x, "nll", k=5, condition=y, keys=torch.arange(20))[keys])
    torch.testing.assert_close(score_samples(cvae.model, x[keys], "nll", k=5, condition=y[keys]),
                               score_samples(cvae.model, x, "nll", k=5, condition=y)[keys])
    with pytest.raises(DataError, match="conditional"):
        score_samples(cvae.model, x, "recon")


# -------------------------------------------------------------------------------- thresholds


def distinct_scores(n: int = 1000) -> np.ndarray:
    return np.random.default_rng(0).permutation(n).astype(np.float64) * 0.37 + 2.0


def test_contamination_flags_that_fraction_of_the_scores() -> None:
    scores = distinct_scores()
    threshold = fit_threshold(scores, contamination=0.1, score="elbo", k=7, seed=3, source="unit")
    assert abs(int(threshold.flags(scores).sum()) - 100) <= 1
    assert threshold.flags(scores)[np.argsort(scores)[-100:]].all(), "the flagged are the highest scores"
    assert (threshold.method, threshold.level, threshold.n) == ("contamination", 0.1, 1000)
    assert (threshold.score, threshold.k, threshold.seed, threshold.source) == ("elbo", 7, 3, "unit")


def test_a_quantile_of_normal_scores_flags_new_data_above_it() -> None:
    normal = distinct_scores()
    threshold = fit_threshold(normal, quantile=0.95)
    assert threshold.method == "quantile" and threshold.level == 0.95
    assert abs(threshold.flags(normal).mean() - 0.05) <= 0.002
    assert threshold.value == pytest.approx(np.quantile(normal, 0.95))
    assert threshold.flags(np.array([normal.max() + 1.0, normal.min()])).tolist() == [True, False]


@pytest.mark.parametrize("arguments", [{}, {"contamination": 0.1, "quantile": 0.9}, {"contamination": 0.0},
                                       {"contamination": 1.0}, {"contamination": -0.2}, {"quantile": 1.5},
                                       {"quantile": 0.0}])
def test_bad_threshold_arguments_are_config_errors(arguments: dict) -> None:
    with pytest.raises(ConfigError):
        fit_threshold(distinct_scores(10), **arguments)


@pytest.mark.parametrize("scores", [np.array([]), np.array([1.0, np.nan]), np.array([1.0, np.inf])])
def test_thresholds_need_finite_scores(scores: np.ndarray) -> None:
    with pytest.raises(DataError, match="finite"):
        fit_threshold(scores, contamination=0.1)


def test_thresholds_are_saved_per_score_and_k(tmp_path: Path) -> None:
    assert load_threshold(tmp_path, "nll", 10) is None, "no file: nothing saved yet"
    saved = [fit_threshold(distinct_scores(), contamination=0.1, score="recon", k=1),
             fit_threshold(distinct_scores() + 5, quantile=0.9, score="nll", k=10, seed=2, source="val"),
             fit_threshold(distinct_scores() + 9, contamination=0.3, score="nll", k=100),
             fit_threshold(distinct_scores() - 1, quantile=0.5, score="elbo", k=10)]
    for threshold in saved:
        save_threshold(tmp_path, threshold)
    assert sorted(json.loads((tmp_path / THRESHOLDS_FILE).read_text())) == ["elbo@k10", "nll@k10", "nll@k100", "recon"]
    for threshold in saved:
        assert load_threshold(tmp_path, threshold.score, threshold.k) == threshold
    assert load_threshold(tmp_path, "recon", 55) == saved[0], "recon draws nothing: one threshold for every k"
    assert load_threshold(tmp_path, "elbo", 100) is None
    replaced = fit_threshold(distinct_scores(), contamination=0.5, score="nll", k=10)
    save_threshold(tmp_path, replaced)
    assert load_threshold(tmp_path, "nll", 10) == replaced
    assert load_threshold(tmp_path, "nll", 100) == saved[2], "saving one score keeps the others"


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"recon": {"value": 1.0}}', '{"recon": "high"}'])
def test_a_corrupt_threshold_file_is_a_data_error(tmp_path: Path, text: str) -> None:
    (tmp_path / THRESHOLDS_FILE).write_text(text)
    with pytest.raises(DataError, match=THRESHOLDS_FILE):
        load_threshold(tmp_path, "recon", 1)


def test_saving_beside_a_corrupt_threshold_file_replaces_it(tmp_path: Path) -> None:
    (tmp_path / THRESHOLDS_FILE).write_text("{not json")
    threshold = fit_threshold(distinct_scores(), contamination=0.1, score="recon")
    save_threshold(tmp_path, threshold)
    assert load_threshold(tmp_path, "recon", 1) == threshold


# ------------------------------------------------------------------------- detection scores


def test_detection_scores_of_a_perfect_and_a_reversed_ranking() -> None:
    scores = np.arange(10.0)
    is_anomaly = scores >= 7
    perfect = detection_scores(scores, is_anomaly)
    assert perfect["auroc"] == 1.0 and perfect["auprc"] == 1.0
    assert perfect["anomaly_rate"] == pytest.approx(0.3)
    assert detection_scores(-scores, is_anomaly)["auroc"] == 0.0
    tied = detection_scores(np.zeros(10), is_anomaly)
    assert tied["auroc"] == 0.5


@pytest.mark.parametrize("labels", [np.ones(5, bool), np.zeros(5, bool)], ids=["all-anomalies", "none"])
def test_detection_scores_need_both_classes(labels: np.ndarray) -> None:
    with pytest.raises(DataError, match="both"):
        detection_scores(np.arange(5.0), labels)


# --------------------------------------------------------------------------- the figure


def test_the_figure_shows_the_most_and_least_anomalous(vae: Run, data: PreparedData, tmp_path: Path) -> None:
    x = data.test.x[:20]
    scores = np.arange(20.0)
    path = save_extremes(vae.spec, x, scores, tmp_path / "extremes.png", n=4)
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        grey = np.asarray(picture.convert("L"), dtype=np.float64)
    assert grey.std() > 1.0, "not blank"
    with pytest.raises(DataError, match="tables"):
        save_extremes(TABLE, np.zeros((4, 6)), np.arange(4.0), tmp_path / "table.png")
    assert not (tmp_path / "table.png").exists()


# --------------------------------------------------------------------------- data.classes


def test_chosen_classes_filter_training_and_validation_but_not_test() -> None:
    everything = prepare_data(DataConfig(source="digits"))
    picked = prepare_data(DataConfig(source="digits", classes=[3, 7]))
    for split in (picked.train, picked.val):
        assert set(np.unique(split.y)) == {3, 7}
    assert set(np.unique(picked.test.y)) == set(range(10)), "the test split keeps every class"
    np.testing.assert_array_equal(picked.test.x, everything.test.x)
    n_train = len(picked.train) + len(picked.val)
    assert n_train == int(np.isin(everything.train.y, [3, 7]).sum() + np.isin(everything.val.y, [3, 7]).sum())
    by_name = prepare_data(DataConfig(source="digits", classes=["3", "7"]))
    np.testing.assert_array_equal(by_name.train.y, picked.train.y)
    np.testing.assert_array_equal(by_name.train.x, picked.train.x)


@pytest.fixture
def labelled_table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    names = ["ant", "bee", "cat"]
    lines = ["a,b,kind"] + [f"{rng.random():.4f},{rng.random():.4f},{names[i % 3]}" for i in range(60)]
    path = tmp_path / "animals.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_classes_by_name_or_index_on_a_table(labelled_table: Path) -> None:
    config = DataConfig(source=str(labelled_table), label_column="kind", test_fraction=0.25)
    by_name = prepare_data(config.model_copy(update={"classes": ["bee"]}))
    by_index = prepare_data(config.model_copy(update={"classes": [1]}))
    assert set(np.unique(by_name.train.y)) == {1}
    np.testing.assert_array_equal(by_name.train.x, by_index.train.x)
    assert set(np.unique(by_name.test.y)) == {0, 1, 2}
    assert class_indices(by_name.test, ["cat", 0, "1"]) == [2, 0, 1]


@pytest.mark.parametrize("classes,named", [(["dog"], "'dog'"), ([12], "12"), ([-1], "-1")])
def test_an_unknown_class_is_a_data_error_naming_it(labelled_table: Path, classes: list, named: str) -> None:
    config = DataConfig(source=str(labelled_table), label_column="kind", classes=classes)
    with pytest.raises(DataError, match=named) as error:
        prepare_data(config)
    assert "data.classes" in str(error.value)


def test_an_unknown_digit_class_is_a_data_error() -> None:
    with pytest.raises(DataError, match="'ten'"):
        prepare_data(DataConfig(source="digits", classes=["ten"]))


def test_one_class_resolver_takes_names_or_indices_and_can_require_presence() -> None:
    from vaekit.data.loaders import class_index
    from vaekit.errors import ConfigError

    names = ["cat", "dog", "eel"]
    assert class_index("dog", names, 3, "--label") == 1 and class_index("2", names, 3, "--label") == 2
    assert class_index(0, None, 3, "--label") == 0
    with pytest.raises(ConfigError, match="--from: unknown class 'dog'.*present in the inputs \\(cat, eel\\)"):
        class_index("dog", names, 3, "--from", present=[0, 2])
    with pytest.raises(DataError, match="data.classes: unknown class 3; expected an index 0..2 or a name"):
        class_index(3, names, 3, "data.classes", error=DataError)


def test_classes_need_labels(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("\n".join(f"{i / 20:.3f},{1 - i / 20:.3f}" for i in range(20)) + "\n")
    with pytest.raises(DataError, match="labels"):
        prepare_data(DataConfig(source=str(path), classes=[0]))


def test_saved_threshold_dataclass_round_trips_through_json(tmp_path: Path) -> None:
    threshold = Threshold(score="nll", k=5, seed=1, value=3.5, method="quantile", level=0.9, n=10, source="s")
    save_threshold(tmp_path, threshold)
    assert Threshold(**json.loads((tmp_path / THRESHOLDS_FILE).read_text())["nll@k5"]) == threshold


def test_run_scores_count_a_departure_from_a_column_constant_in_training(caplog) -> None:
    """The CLI's and the explorer's scores (run_scores) charge a value that breaks a training
    constant, as VAEOutlierDetector does: the model leaves such a column out of its likelihood, so
    without the penalty that row would look as normal as its twin."""
    from vaekit.applications.anomaly import constant_departures, run_scores
    from vaekit.estimators import VAETransformer

    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=(120, 3)), np.full(120, 4.0)])
    run = VAETransformer(2, hidden=(16,), max_epochs=3, random_state=0).fit(x).run_
    twins = np.repeat(x[:1], 2, axis=0)
    twins[1, 3] = 5.0  # one unit off the constant
    for score in ("elbo", "nll"):
        scores = run_scores(run, twins, score=score, k=8)
        penalty = float(constant_departures(run.spec.columns, run.to_model_space(twins))[1])
        assert penalty == pytest.approx(0.5 * math.exp(14))
        assert scores[1] - scores[0] == pytest.approx(penalty, rel=1e-4)
    recon = run_scores(run, twins, score="recon")
    assert recon[1] > recon[0] and np.isfinite(recon).all()
    assert "anomaly scores count each departure" in caplog.text
