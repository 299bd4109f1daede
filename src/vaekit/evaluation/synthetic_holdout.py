"""A synthetic table against a real holdout (rows the model never saw): machine-learning efficacy
(train on synthetic rows, test on real ones, against training on the real table) and privacy (how
close synthetic rows come to the training rows, against how close the holdout's come).

Tables are coded as :func:`vaekit.evaluation.synthetic.code_tables` codes them (see that module for
the inputs). A score that does not exist (one class to learn, a constant holdout target) is left out
with the reason in ``skipped``, never a NaN.

**Privacy** uses SDMetrics' distance (``single_table/privacy/dcr_utils.py``): per column, numbers
|a - b| / the training column's range, capped at 1 (a constant column: 0 if equal, else 1);
categories 0 if equal, else 1; one value missing 1, both 0; a row's distance is the mean over columns.
A synthetic row at distance 0 from a training row is an exact copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vaekit.data.columns import Column
from vaekit.errors import ConfigError, DataError
from vaekit.evaluation.synthetic import Coded, Incomputable, code_tables

CELLS_PER_CHUNK = 1_000_000  # (rows x reference rows x columns) per block of the distance computation


def _design(coded: Coded, target: int) -> list[np.ndarray]:
    """Every table's features but the target: numbers standardised by the first table's mean and spread
    (missing: 0, the mean), categories one-hot (missing: all zeros)."""
    parts: list[list[np.ndarray]] = [[] for _ in coded.tables]
    for j, numeric in enumerate(coded.numeric):
        if j == target:
            continue
        reference = coded.tables[0][:, j][~np.isnan(coded.tables[0][:, j])]
        loc = float(reference.mean()) if reference.size else 0.0
        scale = float(reference.std()) if reference.size and reference.std() > 0 else 1.0
        for part, table in zip(parts, coded.tables, strict=True):
            column = table[:, j]
            part.append(np.nan_to_num((column[:, None] - loc) / scale) if numeric
                        else (column[:, None] == np.arange(coded.levels[j])).astype(np.float64))
    return [np.hstack(part) if part else np.zeros((len(t), 0)) for part, t in zip(parts, coded.tables, strict=True)]


MODELS = ("forest", "linear")


def _model(task: str, name: str, seed: int) -> Any:
    """A fresh, seeded model: a random forest of 100 trees, or logistic / least-squares regression."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression

    if name == "linear":
        return LogisticRegression(max_iter=2_000) if task == "classification" else LinearRegression()
    forest = RandomForestClassifier if task == "classification" else RandomForestRegressor
    return forest(n_estimators=100, random_state=seed)


def _fit_and_score(task: str, model: Any, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                   table: str) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, r2_score

    x, y = train
    if len(y) < 2:
        raise Incomputable(f"fewer than 2 rows with a target in the {table} table")
    if task == "classification" and len(np.unique(y)) < 2:
        raise Incomputable(f"the {table} table's target holds one class: nothing to learn")
    predicted = model.fit(x, y).predict(test[0])
    if task == "regression":
        return {"r2": float(r2_score(test[1], predicted))}
    return {"accuracy": float(accuracy_score(test[1], predicted)),
            "f1": float(f1_score(test[1], predicted, average="macro", zero_division=0))}


@dataclass
class Efficacy:
    """Train on the real table and on the synthetic one, test both on the real holdout: the scores
    (accuracy and macro F1 for a category target, R² for a number), synthetic / real, and what was not
    computed and why."""

    target: str
    task: str
    model: str
    real: dict[str, float]
    synthetic: dict[str, float]
    ratio: dict[str, float]
    skipped: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ml_efficacy(columns: Sequence[Column] | None, real: Any, synthetic: Any, holdout: Any, target: str,
                model: str = "forest", seed: int = 0) -> Efficacy:
    """The same model (``forest``: a random forest of 100 trees; ``linear``: logistic or least-squares
    regression), seeded, fitted on ``real`` and on ``synthetic``, scored on ``holdout``; rows without a
    target are left out."""
    if model not in MODELS:
        raise ConfigError(f"model {model!r}: expected one of {', '.join(MODELS)}")
    coded = code_tables(columns, real, synthetic, holdout)
    if target not in coded.names:
        raise DataError(f"target {target!r}: no such column; columns: {', '.join(coded.names[:20])}")
    j = coded.names.index(target)
    task = "regression" if coded.numeric[j] else "classification"
    rows = [(x[~np.isnan(t[:, j])], t[~np.isnan(t[:, j]), j]) for x, t in zip(_design(coded, j), coded.tables,
                                                                             strict=True)]
    result = Efficacy(target, task, model, {}, {}, {}, {})
    test = rows[2]
    if not len(test[1]) or (task == "regression" and np.ptp(test[1]) == 0):
        result.skipped["holdout"] = "the holdout's target is constant or empty: no score is defined"
        return result
    for table, train in (("real", rows[0]), ("synthetic", rows[1])):
        try:
            setattr(result, table, _fit_and_score(task, _model(task, model, seed), train, test, table))
        except Incomputable as why:
            result.skipped[table] = str(why)
    for metric, base in result.real.items():
        if metric not in result.synthetic:
            continue
        if base > 0:
            result.ratio[metric] = result.synthetic[metric] / base
        else:
            result.skipped[f"ratio {metric}"] = f"trained on the real table the {metric} is {base:.3g}: no ratio"
    return result


def closest_distances(rows: np.ndarray, reference: np.ndarray, numeric: Sequence[bool]) -> np.ndarray:
    """Each coded row's distance to its closest reference row (SDMetrics' DCR, see the module's notes)."""
    numeric = np.asarray(numeric, dtype=bool)
    present = ~np.isnan(reference)
    spread = np.where(present.any(axis=0), np.where(present, reference, -np.inf).max(axis=0)
                      - np.where(present, reference, np.inf).min(axis=0), 0.0)
    by_range = numeric & (spread > 0)  # the others count 0 if equal, else 1
    scale = np.where(by_range, spread, 1.0)
    chunk = max(1, CELLS_PER_CHUNK // (len(reference) * rows.shape[1]))
    closest = np.empty(len(rows))
    for start in range(0, len(rows), chunk):
        a, b = rows[start:start + chunk, None, :], reference[None, :, :]
        gap = np.abs(a - b)
        per = np.where(by_range, np.minimum(gap / scale, 1.0), gap > 0)
        holes_a, holes_b = np.isnan(a), np.isnan(b)
        per = np.where(holes_a | holes_b, holes_a != holes_b, per)
        closest[start:start + chunk] = per.mean(axis=2).min(axis=1)
    return closest


@dataclass
class Privacy:
    """Distances to the closest training row (DCR) of the synthetic rows and of a real holdout's: their
    medians, and the share of each that are exact copies of a training row. Synthetic rows much closer
    than the holdout's, or more copies, mean the model gives back its training rows."""

    dcr_synthetic: float
    dcr_holdout: float
    exact_copies: float
    holdout_exact_copies: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def privacy(columns: Sequence[Column] | None, real: Any, synthetic: Any, holdout: Any) -> Privacy:
    """DCR of the synthetic rows and of the holdout's to the real (training) table."""
    coded = code_tables(columns, real, synthetic, holdout)
    train, synth, held = coded.tables
    synthetic_dcr, holdout_dcr = (closest_distances(t, train, coded.numeric) for t in (synth, held))
    return Privacy(float(np.median(synthetic_dcr)), float(np.median(holdout_dcr)), float(np.mean(synthetic_dcr == 0)),
                   float(np.mean(holdout_dcr == 0)))
