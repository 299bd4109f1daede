"""Disentanglement metrics against ground-truth factors: MIG, SAP, DCI, FactorVAE and BetaVAE scores.

By default each metric follows disentanglement_lib, the code behind Locatello et al. (2019), "Challenging
Common Assumptions in the Unsupervised Learning of Disentangled Representations", and the papers that report
its numbers: the same estimators, hyper-parameters, discretisation and numbers of points (10,000 to train,
5,000 to test), so that scores compare with published ones. Faster or stricter variants are options named
in each function. Codes are an encoder's deterministic output, e.g. the posterior mean.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal, Protocol

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from vaekit.evaluation.metric_checks import (
    MetricInputError,
    check_choice,
    check_codes_factors,
    check_dataset,
    check_positive,
)

log = logging.getLogger(__name__)

Represent = Callable[[np.ndarray], np.ndarray]  # observations (n, ...) -> codes (n, D)
SapClassifier = Literal["linear_svm", "tree"]
DciClassifier = Literal["gradient_boosting", "random_forest"]
N_TRAIN, N_TEST = 10_000, 5_000  # points per metric in disentanglement_lib's unsupervised study


class GroundTruth(Protocol):
    """A simulator of observations from independent, discrete factors of variation (e.g. dSprites)."""

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]  # number of discrete values of each factor

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` factor rows, (n, K) int64, column ``k`` in ``[0, factor_sizes[k])``."""
        ...

    def render(self, factors: np.ndarray) -> np.ndarray:
        """Observations (n, ...) for the factor rows (n, K)."""
        ...


def mig(codes: np.ndarray, factors: np.ndarray, n_bins: int = 20) -> dict[str, float | list[float]]:
    """Mutual Information Gap (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs").

    Each code dimension is cut into ``n_bins`` equal-width bins (numpy's histogram edges, a value on an edge
    going to the bin above, as disentanglement_lib does); for every factor the gap between the two largest
    mutual informations with a code dimension is divided by the factor's entropy. A factor with more values
    than bins caps even a perfect code below 1 (near ``log n_bins / log size``: 0.81 for 40 values).

    Parameters
    ----------
    codes : (N, D) float array; disentanglement_lib uses N = 10,000.
    factors : (N, K) integer array of ground-truth factor values.
    n_bins : bins per code dimension (20 as in disentanglement_lib).

    Returns
    -------
    ``{"mig": mean over factors, "per_factor": [gap_k / H(v_k) for each factor]}``, each in [0, 1].
    """
    codes, labels, sizes = check_codes_factors(codes, factors)
    check_positive(n_bins=n_bins)
    binned = _discretise(codes, n_bins)  # (N, D)
    gaps = []
    for k, size in enumerate(sizes):
        information = _mutual_information(binned, n_bins, labels[:, k], size)  # (D,)
        top_two = np.sort(information)[::-1][:2]
        counts = np.bincount(labels[:, k], minlength=size)
        gaps.append((top_two[0] - top_two[1]) / _entropy(counts / counts.sum()))
    return {"mig": float(np.mean(gaps)), "per_factor": [float(gap) for gap in gaps]}


def sap(
    codes: np.ndarray,
    factors: np.ndarray,
    rng: np.random.Generator,
    test_fraction: float = N_TEST / (N_TRAIN + N_TEST),
    classifier: SapClassifier = "linear_svm",
) -> dict[str, float | list[float]]:
    """Separated Attribute Predictability (Kumar et al. 2018, "Variational Inference of Disentangled Latent
    Concepts from Unlabeled Observations").

    For each (code dimension, factor) a classifier on that one dimension is fitted on a random train split
    and scored on the rest; the score per factor is the gap between its two most predictive dimensions.

    ``classifier="linear_svm"`` (default) is disentanglement_lib's discrete-factor protocol: a one-vs-rest
    ``LinearSVC(C=0.01, class_weight="balanced")`` scored by plain accuracy. A line cannot isolate a middle
    value on one axis, so even a perfect code scores well below 1 on a factor of many values.
    ``classifier="tree"`` is vaekit's stricter variant (scores do not compare with papers): a 1-D decision
    tree with as many leaves as the factor has values, scored by balanced accuracy, so that a perfect code
    reaches ``1 - 1/size`` per factor (the runner-up sits at chance) however unbalanced the factor.

    Parameters
    ----------
    codes : (N, D) float array; ``evaluate_all`` passes N = 15,000, split 10,000 / 5,000.
    factors : (N, K) integer array of ground-truth factor values.
    rng : draws the train / test split and the classifiers' seed.
    test_fraction : share of the rows held out for scoring.
    classifier : ``"linear_svm"`` (published) or ``"tree"``.

    Returns
    -------
    ``{"sap": mean over factors, "per_factor": [top-two accuracy gap of each factor]}``.
    """
    codes, labels, sizes = check_codes_factors(codes, factors)
    check_choice("classifier", classifier, ("linear_svm", "tree"))
    train, test = _split(len(codes), rng, test_fraction)
    seed = _seed(rng)
    accuracy = np.zeros((codes.shape[1], len(sizes)))  # (D, K)
    for k, size in enumerate(sizes):
        for d in range(codes.shape[1]):
            column = codes[:, d : d + 1]  # (N, 1)
            if classifier == "linear_svm":
                svm = LinearSVC(C=0.01, class_weight="balanced", random_state=seed)
                accuracy[d, k] = svm.fit(column[train], labels[train, k]).score(column[test], labels[test, k])
            else:
                tree = DecisionTreeClassifier(max_leaf_nodes=size, random_state=seed)
                predicted = tree.fit(column[train], labels[train, k]).predict(column[test])
                accuracy[d, k] = _balanced_accuracy(labels[test, k], predicted)
    top_two = -np.sort(-accuracy, axis=0)[:2]  # (2, K)
    gaps = top_two[0] - top_two[1]
    return {"sap": float(gaps.mean()), "per_factor": [float(gap) for gap in gaps]}


def dci(
    codes: np.ndarray,
    factors: np.ndarray,
    rng: np.random.Generator,
    test_fraction: float = N_TEST / (N_TRAIN + N_TEST),
    classifier: DciClassifier = "gradient_boosting",
) -> dict[str, float]:
    """Disentanglement, completeness and informativeness (Eastwood & Williams 2018, "A Framework for the
    Quantitative Evaluation of Disentangled Representations").

    One classifier per factor predicts it from all codes; its impurity importances fill column ``k`` of the
    importance matrix R (D, K). Disentanglement is ``1 - H_K(P_d)`` of each code's distribution over
    factors, weighted by the code's share of total importance; completeness is ``1 - H_D`` of each factor's
    distribution over codes, averaged (disentanglement_lib weights factors by their share of importance, the
    same thing here: each classifier's importances sum to 1); informativeness is the classifiers' held-out
    accuracy, averaged.

    ``classifier="gradient_boosting"`` (default) is disentanglement_lib's protocol: sklearn's
    ``GradientBoostingClassifier()`` with its defaults (100 stages of depth-3 trees, one tree per class and
    stage, so minutes for dSprites' 113 factor values on 10,000 points). ``classifier="random_forest"`` is
    vaekit's faster variant (scores do not compare with papers): 20 trees of depth <= 12 that try every code
    at each split, so that uninformative codes take no importance.

    Parameters
    ----------
    codes : (N, D) float array; ``evaluate_all`` passes N = 15,000, split 10,000 / 5,000.
    factors : (N, K) integer array of ground-truth factor values, K >= 2.
    rng : draws the train / test split and the classifiers' seed.
    test_fraction : share of the rows held out for informativeness.
    classifier : ``"gradient_boosting"`` (published) or ``"random_forest"``.

    Returns
    -------
    ``{"disentanglement", "completeness", "informativeness"}``, each in [0, 1].
    """
    codes, labels, sizes = check_codes_factors(codes, factors)
    if len(sizes) < 2:
        raise MetricInputError("dci needs at least 2 factors: disentanglement is an entropy over factors")
    check_choice("classifier", classifier, ("gradient_boosting", "random_forest"))
    train, test = _split(len(codes), rng, test_fraction)
    seed = _seed(rng)
    importance = np.zeros((codes.shape[1], len(sizes)))  # (D, K)
    accuracy = []
    for k in range(len(sizes)):
        if classifier == "gradient_boosting":
            model = GradientBoostingClassifier(random_state=seed)
        else:
            model = RandomForestClassifier(n_estimators=20, max_depth=12, max_features=None, random_state=seed)
        model.fit(codes[train], labels[train, k])
        importance[:, k] = np.abs(model.feature_importances_)
        accuracy.append(model.score(codes[test], labels[test, k]))
    code_share = _normalise(importance.sum(1, keepdims=True).T)[0]  # (D,)
    per_code = 1.0 - _entropy(_normalise(importance), base=len(sizes))  # (D,)
    per_factor = 1.0 - _entropy(_normalise(importance.T), base=codes.shape[1])  # (K,)
    return {
        "disentanglement": float(np.sum(code_share * per_code)),
        "completeness": float(per_factor.mean()),
        "informativeness": float(np.mean(accuracy)),
    }


def factor_vae_score(
    represent: Represent,
    dataset: GroundTruth,
    rng: np.random.Generator,
    n_train: int = N_TRAIN,
    n_eval: int = N_TEST,
    batch_size: int = 64,
    n_variance_samples: int = N_TRAIN,
    prune_threshold: float = 0.05,
    chunk_size: int = 1000,
) -> float:
    """FactorVAE metric (Kim & Mnih 2018, "Disentangling by Factorising").

    Each code dimension is divided by its standard deviation over ``n_variance_samples`` random
    observations; dimensions whose standard deviation is below ``prune_threshold`` are collapsed and left
    out. Each vote fixes one random factor over a batch of ``batch_size`` factor rows and names the
    dimension of least normalised variance; a majority vote maps each dimension to a factor on the
    ``n_train`` training votes and is scored on ``n_eval`` fresh votes. Returns that accuracy (0.0, with a
    warning, when every dimension is collapsed); chance is about ``1 / K``. The defaults are
    disentanglement_lib's (10,000 / 5,000 votes of 64 rows: about a million encoder calls).
    """
    check_positive(n_train=n_train, n_eval=n_eval, batch_size=batch_size, n_variance_samples=n_variance_samples)
    sizes = check_dataset(dataset)
    scale = _encode(represent, dataset, dataset.sample_factors(n_variance_samples, rng), chunk_size).std(0, ddof=1)
    active = scale >= prune_threshold  # (D,)
    if not active.any():
        log.warning(
            "factor_vae_score is 0: every code dimension has a standard deviation below prune_threshold=%g "
            "(largest %.3g); codes on a small scale count as collapsed, so rescale them or lower the threshold",
            prune_threshold,
            scale.max(),
        )
        return 0.0

    def votes(n: int) -> np.ndarray:
        fixed = rng.integers(len(sizes), size=n)  # (n,) factor held fixed in each vote
        rows = dataset.sample_factors(n * batch_size, rng).reshape(n, batch_size, len(sizes))
        rows[np.arange(n), :, fixed] = rows[np.arange(n), :1, fixed]  # one value per vote, from p(v_k)
        codes = _encode(represent, dataset, rows.reshape(n * batch_size, -1), chunk_size)
        variance = (codes[:, active] / scale[active]).reshape(n, batch_size, -1).var(1, ddof=1)  # (n, D_active)
        counts = np.zeros((int(active.sum()), len(sizes)), dtype=np.int64)  # (D_active, K)
        np.add.at(counts, (variance.argmin(1), fixed), 1)
        return counts

    train_votes, eval_votes = votes(n_train), votes(n_eval)
    classifier = train_votes.argmax(1)  # (D_active,) majority factor of each dimension
    return float(eval_votes[np.arange(len(classifier)), classifier].sum() / n_eval)


def beta_vae_score(
    represent: Represent,
    dataset: GroundTruth,
    rng: np.random.Generator,
    n_train: int = N_TRAIN,
    n_eval: int = N_TEST,
    batch_size: int = 64,
    chunk_size: int = 1000,
) -> float:
    """BetaVAE metric (Higgins et al. 2017, "beta-VAE: Learning Basic Visual Concepts...").

    Each point picks a factor ``k`` and ``batch_size`` pairs of factor rows that share factor ``k``; its
    feature is the batch mean of ``|z1 - z2|``. disentanglement_lib's ``LogisticRegression`` (L2, C = 1)
    learns ``k`` from ``n_train`` points and is scored on ``n_eval`` more (10,000 / 5,000 points of 64 pairs:
    about two million encoder calls). Returns that accuracy; chance is about ``1 / K``.
    """
    check_positive(n_train=n_train, n_eval=n_eval, batch_size=batch_size)
    sizes = check_dataset(dataset)

    def points(n: int) -> tuple[np.ndarray, np.ndarray]:
        fixed = rng.integers(len(sizes), size=n)  # (n,)
        first = dataset.sample_factors(n * batch_size, rng).reshape(n, batch_size, len(sizes))
        second = dataset.sample_factors(n * batch_size, rng).reshape(n, batch_size, len(sizes))
        second[np.arange(n), :, fixed] = first[np.arange(n), :, fixed]
        difference = np.abs(
            _encode(represent, dataset, first.reshape(n * batch_size, -1), chunk_size)
            - _encode(represent, dataset, second.reshape(n * batch_size, -1), chunk_size)
        )  # (n * batch_size, D)
        return difference.reshape(n, batch_size, -1).mean(1), fixed

    train_features, train_labels = points(n_train)
    eval_features, eval_labels = points(n_eval)
    if len(np.unique(train_labels)) < 2:
        raise MetricInputError(f"beta_vae_score drew one factor for all {n_train} training points; raise n_train")
    # Run to convergence: sklearn's default 100 lbfgs steps stop short on a dSprites VAE's codes.
    classifier = LogisticRegression(max_iter=1000, random_state=_seed(rng))
    classifier.fit(train_features, train_labels)
    return float(classifier.score(eval_features, eval_labels))


def evaluate_all(
    represent: Represent,
    dataset: GroundTruth,
    rng: np.random.Generator,
    n_train: int = N_TRAIN,
    n_test: int = N_TEST,
    chunk_size: int = 1000,
) -> dict[str, float]:
    """All five metrics by disentanglement_lib's protocol, each with ``n_train`` points to fit and ``n_test``
    to score (its unsupervised study's 10,000 and 5,000 by default).

    MIG reads ``n_train`` encoded factor rows; SAP and DCI fit on those and score on ``n_test`` more; the
    FactorVAE score estimates scales on ``n_train`` rows and takes ``n_train`` / ``n_test`` votes; the
    BetaVAE score fits on ``n_train`` points and scores on ``n_test``.

    Returns a flat dict: ``mig``, ``sap``, ``dci_disentanglement``, ``dci_completeness``,
    ``dci_informativeness``, ``factor_vae`` and ``beta_vae``.
    """
    check_positive(n_train=n_train, n_test=n_test)
    check_dataset(dataset)
    factors = dataset.sample_factors(n_train + n_test, rng)  # (N, K)
    codes = _encode(represent, dataset, factors, chunk_size)  # (N, D)
    held_out = n_test / (n_train + n_test)
    scores = {
        "mig": mig(codes[:n_train], factors[:n_train])["mig"],
        "sap": sap(codes, factors, rng, test_fraction=held_out)["sap"],
    }
    scores.update({f"dci_{name}": value for name, value in dci(codes, factors, rng, test_fraction=held_out).items()})
    scores["factor_vae"] = factor_vae_score(
        represent, dataset, rng, n_train=n_train, n_eval=n_test, n_variance_samples=n_train, chunk_size=chunk_size
    )
    scores["beta_vae"] = beta_vae_score(represent, dataset, rng, n_train=n_train, n_eval=n_test, chunk_size=chunk_size)
    return scores


def _encode(represent: Represent, dataset: GroundTruth, factors: np.ndarray, chunk_size: int) -> np.ndarray:
    """Render and represent ``factors`` ``chunk_size`` rows at a time, so observations never pile up."""
    check_positive(chunk_size=chunk_size)
    chunks = []
    for start in range(0, len(factors), chunk_size):
        rows = factors[start : start + chunk_size]
        codes = np.asarray(represent(dataset.render(rows)), dtype=np.float64)
        if codes.ndim != 2 or len(codes) != len(rows):
            raise MetricInputError(f"represent must return (n, D) codes for n = {len(rows)}, got {codes.shape}")
        chunks.append(codes)
    return np.concatenate(chunks)


def _split(n: int, rng: np.random.Generator, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    n_test = int(round(n * test_fraction))
    if not 0 < n_test < n:
        raise MetricInputError(f"test_fraction={test_fraction} leaves no train or no test rows out of {n}")
    order = rng.permutation(n)
    return order[n_test:], order[:n_test]


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


def _discretise(codes: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index of each entry in ``n_bins`` equal-width bins spanning its column's range: (N, D) int.

    The edges are numpy's histogram edges and a value on an edge joins the bin above, as in
    disentanglement_lib: dividing by the bin width instead puts quantised codes (e.g. read back from a
    rounded CSV) one bin off wherever an edge rounds the other way.
    """
    columns = [np.digitize(column, np.histogram_bin_edges(column, n_bins)[1:-1]) for column in codes.T]
    return np.stack(columns, axis=1).astype(np.int64)


def _mutual_information(binned: np.ndarray, n_bins: int, labels: np.ndarray, size: int) -> np.ndarray:
    """I(binned code d; factor) in nats for every column d of ``binned``: (D,)."""
    n, n_codes = binned.shape
    cell = np.arange(n_codes) * (n_bins * size) + binned * size + labels[:, None]  # (N, D) joint cell index
    joint = np.bincount(cell.ravel(), minlength=n_codes * n_bins * size).reshape(n_codes, n_bins, size) / n
    independent = joint.sum(2, keepdims=True) * joint.sum(1, keepdims=True)  # p(code bin) p(factor)
    seen = joint > 0
    terms = np.zeros_like(joint)
    terms[seen] = joint[seen] * np.log(joint[seen] / independent[seen])
    return terms.sum((1, 2))


def _normalise(weights: np.ndarray) -> np.ndarray:
    """Rows as distributions; an all-zero row becomes uniform (no information, maximal entropy)."""
    totals = weights.sum(1, keepdims=True)
    uniform = np.full_like(weights, 1.0 / weights.shape[1])
    return np.where(totals > 0, weights / np.where(totals > 0, totals, 1.0), uniform)


def _entropy(p: np.ndarray, base: float = np.e) -> np.ndarray:
    """Entropy along the last axis of distributions ``p``, in units of log ``base``."""
    logs = np.log(np.where(p > 0, p, 1.0))
    return -(p * logs).sum(-1) / np.log(base)


def _balanced_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Mean recall over the classes present in ``truth``: chance is ``1 / n_classes`` however unbalanced."""
    return float(np.mean([np.mean(predicted[truth == c] == c) for c in np.unique(truth)]))
