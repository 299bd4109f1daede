"""Synthetic tables, vaekit vs SDV (TVAE, CTGAN, GaussianCopula): the synth task of bench/tables_peers.py.

Per table and seed: one stratified 75/25 split (the same for every contender); each contender fits
the train split and samples ``n`` rows; each synthetic table is scored against the train split by
SDMetrics' QualityReport (column shapes: KS / TV complement; pair trends: correlation / contingency
similarity) and by machine-learning efficacy (a random forest trained on the synthetic rows, tested
on the real holdout, next to the same forest trained on the real train split). Also per contender:
the share of each column left empty (where the train split has holes), the share of number values
outside the training range, the share of whole numbers in columns that are whole in training, and
fit / sample wall time.

vaekit is what users get: the scikit-learn estimator ``VAESynthesizer`` with its defaults (what
``vaekit synthesize`` draws, :func:`vaekit.applications.synthesize.synthesize`: x ~ p(x|z), rows in
the training table's kinds, ranges and share of holes), trained for the same ``--epochs`` as TVAE and
CTGAN. One diagnostic variant reuses the same fitted model (no extra training), labelled as such:
``vaekit_diag_other_sampler`` draws z with the sampler that is not the default (prior <-> gmm: a
10-component Gaussian mixture fitted to the training codes, ``vaekit synthesize --sampler gmm``).
``vaekit_diag_standardize`` is a second fit with continuous columns standardised instead of
quantile-transformed (``data.continuous_transform=standardize``), its own fit time.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
import warnings
from unittest import mock

import numpy as np
import pandas as pd
import torch
from peer_tables import TABLES, Table
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.metrics import f1_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

DEFAULT_TABLES = "breast_cancer,wine,wine_text,wine_holes,diabetes,iris,penguins"
CONTENDERS = ("vaekit", "sdv_tvae", "sdv_ctgan", "sdv_gaussian_copula")
VARIANTS = ("vaekit_diag_other_sampler", "vaekit_diag_standardize")  # diagnostics, not what users get


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _frame(values: np.ndarray, like: pd.DataFrame) -> pd.DataFrame:
    """vaekit's rows (an object or float array) as a frame with the real table's column dtypes:
    numbers as float, text as objects (None where missing)."""
    frame = pd.DataFrame(values, columns=like.columns)
    for name in like.columns:
        if like[name].dtype.kind in "biuf":
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
        else:
            frame[name] = frame[name].astype(object)
    return frame


def fit_sample(name: str, train: pd.DataFrame, metadata, n: int, seed: int, epochs: int) -> dict:
    """{contender: (synthetic frame, fit seconds, sample seconds)} for one contender (vaekit gives its
    diagnostic variants too, with the same fit time)."""
    _seed_all(seed)
    if name == "vaekit":
        return _vaekit(train, n, seed, epochs)
    from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer, TVAESynthesizer

    make = {"sdv_tvae": lambda: TVAESynthesizer(metadata, epochs=epochs, enable_gpu=False),
            "sdv_ctgan": lambda: CTGANSynthesizer(metadata, epochs=epochs, enable_gpu=False),
            "sdv_gaussian_copula": lambda: GaussianCopulaSynthesizer(metadata)}[name]
    synthesizer = make()
    started = time.perf_counter()
    synthesizer.fit({"table": train})  # sdv 2.x: fit takes {table name: frame}
    fitted = time.perf_counter() - started
    started = time.perf_counter()
    sampled = synthesizer.sample(n)
    sampled = sampled["table"] if isinstance(sampled, dict) else sampled
    return {name: (sampled.reset_index(drop=True), fitted, time.perf_counter() - started)}


def _vaekit(train: pd.DataFrame, n: int, seed: int, epochs: int) -> dict:
    """vaekit's synthetic rows (``VAESynthesizer`` with its defaults) and the diagnostic variant's."""
    from vaekit.applications.generate import fit_aggregate_posterior
    from vaekit.applications.synthesize import synthesize
    from vaekit.estimators import VAESynthesizer

    started = time.perf_counter()
    est = VAESynthesizer(max_epochs=epochs, random_state=seed).fit(train)
    fitted = time.perf_counter() - started
    started = time.perf_counter()
    out = {"vaekit": (_frame(est.sample(n, random_state=seed), train), fitted, time.perf_counter() - started)}
    started = time.perf_counter()
    default = getattr(est, "sampler", "prior")
    mixture = None if default == "gmm" else fit_aggregate_posterior(
        est.run_, est._validate(train, reset=False), None, 10, seed)
    table = synthesize(est.run_, n, seed=seed, mixture=mixture)
    other = table.to_frame(list(train.columns), list(train.dtypes))
    out["vaekit_diag_other_sampler"] = (_frame(other.to_numpy(object), train), fitted, time.perf_counter() - started)
    started = time.perf_counter()
    with _standardized():
        linear = VAESynthesizer(max_epochs=epochs, random_state=seed).fit(train)
    fitted = time.perf_counter() - started
    started = time.perf_counter()
    out["vaekit_diag_standardize"] = (_frame(linear.sample(n, random_state=seed), train), fitted,
                                      time.perf_counter() - started)
    return out


@contextlib.contextmanager
def _standardized():
    """Diagnostic: tables fitted with data.continuous_transform=standardize (VAESynthesizer takes no
    data options), to measure the quantile transform against the linear scaling it replaced."""
    from vaekit.data import columns
    from vaekit.data.kinds import table

    def infer(*args, **kwargs):
        return columns.infer_columns(*args, **{**kwargs, "transform": "standardize"})

    with mock.patch.object(table, "infer_columns", infer):
        yield


def _labels(values: pd.Series) -> np.ndarray:
    """Class labels as text, whole numbers without '.0' (1.0 and 1 are one class)."""
    def text(v) -> str:
        if isinstance(v, float | np.floating | int | np.integer) and not isinstance(v, bool) and float(v).is_integer():
            return str(int(v))
        return str(v)
    return np.array([text(v) for v in values], dtype=object)


def ml_efficacy(table: Table, fit_on: pd.DataFrame, holdout: pd.DataFrame, seed: int) -> float:
    """Macro F1 (classes) or R^2 (values) on the real holdout of a random forest fitted on ``fit_on``."""
    fit_on = fit_on[fit_on[table.target].notna()]
    features = [c for c in holdout.columns if c != table.target]
    numbers = [c for c in features if holdout[c].dtype.kind in "biuf"]
    texts = [c for c in features if c not in numbers]
    prepare = ColumnTransformer([
        ("numbers", SimpleImputer(strategy="median", keep_empty_features=True), numbers),
        ("texts", make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"),
                                OneHotEncoder(handle_unknown="ignore")), texts)])

    def text_frame(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame[features].copy()
        for c in texts:
            frame[c] = frame[c].map(lambda v: "(missing)" if v is None or v != v else str(v)).astype(object)
        for c in numbers:
            frame[c] = pd.to_numeric(frame[c], errors="coerce")
        return frame

    if table.task == "class":
        model = make_pipeline(prepare, RandomForestClassifier(200, random_state=seed, n_jobs=1))
        model.fit(text_frame(fit_on), _labels(fit_on[table.target]))
        truth = _labels(holdout[table.target])
        return float(f1_score(truth, model.predict(text_frame(holdout)), average="macro"))
    model = make_pipeline(prepare, RandomForestRegressor(200, random_state=seed, n_jobs=1))
    model.fit(text_frame(fit_on), pd.to_numeric(fit_on[table.target], errors="coerce").to_numpy(np.float64))
    return float(r2_score(holdout[table.target].to_numpy(np.float64), model.predict(text_frame(holdout))))


def fidelity(train: pd.DataFrame, synthetic: pd.DataFrame, metadata: dict) -> dict:
    """SDMetrics' QualityReport and the checks of kinds, ranges and holes."""
    from sdmetrics.reports.single_table import QualityReport

    report = QualityReport()
    report.generate(train, synthetic, metadata, verbose=False)
    properties = dict(report.get_properties()[["Property", "Score"]].itertuples(index=False))
    shapes = report.get_details("Column Shapes")
    pairs = report.get_details("Column Pair Trends").sort_values("Score")
    out = {"quality": round(float(report.get_score()), 4),
           "column_shapes": round(float(properties["Column Shapes"]), 4),
           "pair_trends": round(float(properties["Column Pair Trends"]), 4),
           "shapes_by_column": {r.Column: round(float(r.Score), 4) for r in shapes.itertuples()},
           "worst_pairs": [[r[1], r[2], round(float(r.Score), 4)] for r in pairs.head(3).itertuples()]}
    holes = {c: [round(float(train[c].isna().mean()), 4), round(float(synthetic[c].isna().mean()), 4)]
             for c in train.columns if train[c].isna().any()}
    out["missing_share_real_vs_synthetic"] = holes
    # a column of one value where training had several (wine's class once): no silent degenerate column
    out["degenerate_columns"] = [c for c in train.columns
                                 if train[c].nunique() > 1 and synthetic[c].nunique(dropna=True) <= 1]
    outside, whole = {}, {}
    for c in train.columns:
        if metadata["columns"][c]["sdtype"] != "numerical":
            continue
        real = train[c].dropna().to_numpy(np.float64)
        fake = pd.to_numeric(synthetic[c], errors="coerce").dropna().to_numpy(np.float64)
        if not len(fake):
            continue
        outside[c] = round(float(np.mean((fake < real.min()) | (fake > real.max()))), 4)
        if np.all(np.mod(real, 1) == 0):
            whole[c] = round(float(np.mean(np.mod(fake, 1) == 0)), 4)
    out["outside_range_share"] = {"mean": round(float(np.mean(list(outside.values()))), 4) if outside else 0.0,
                                  "by_column": outside}
    out["whole_share_in_whole_columns"] = whole
    return out


def run_synth(args, log=print) -> list[dict]:
    from sdv.metadata import Metadata

    logging.getLogger("sdv").setLevel(logging.ERROR)
    logging.getLogger("rdt").setLevel(logging.ERROR)
    logging.getLogger("copulas").setLevel(logging.ERROR)
    rows = []
    contenders = args.contenders.split(",") if args.contenders else list(CONTENDERS)
    for table_name in (args.tables or DEFAULT_TABLES).split(","):
        table = TABLES[table_name]()
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            stratify = table.frame[table.target] if table.task == "class" else None
            train, holdout = train_test_split(table.frame, test_size=0.25, random_state=seed, stratify=stratify)
            train, holdout = train.reset_index(drop=True), holdout.reset_index(drop=True)
            metadata = Metadata.detect_from_dataframes({"table": train}, infer_keys=None)
            described = metadata.to_dict()["tables"]["table"]
            n = args.rows or len(train)
            started = time.perf_counter()
            real_score = ml_efficacy(table, train, holdout, seed)
            row = {"table": table_name, "seed": seed, "shape": list(table.frame.shape), "train_rows": len(train),
                   "sampled_rows": n, "target": table.target,
                   "ml_metric": "macro_f1" if table.task == "class" else "r2",
                   "sdtypes": {c: d["sdtype"] for c, d in described["columns"].items()},
                   "ml_efficacy_real": round(real_score, 4), "ml_real_seconds": round(time.perf_counter() - started, 2),
                   "contenders": {}}
            for name in contenders:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        made = fit_sample(name, train, metadata, n, seed, args.epochs)
                    except Exception as error:  # a contender that fails is recorded, not fatal
                        row["contenders"][name] = {"error": f"{type(error).__name__}: {error}"[:500]}
                        log(f"  {table_name} seed {seed} {name}: FAILED {error}")
                        continue
                    for label, (synthetic, fit_s, sample_s) in made.items():
                        result = fidelity(train, synthetic, described)
                        result["ml_efficacy"] = round(ml_efficacy(table, synthetic, holdout, seed), 4)
                        result["fit_seconds"], result["sample_seconds"] = round(fit_s, 2), round(sample_s, 2)
                        row["contenders"][label] = result
                        log(f"  {table_name} seed {seed} {label:<20} quality {result['quality']:.3f} "
                            f"(shapes {result['column_shapes']:.3f}, pairs {result['pair_trends']:.3f}) "
                            f"ML {result['ml_efficacy']:.3f} (real {real_score:.3f}) fit {fit_s:.1f}s")
            rows.append(row)
    return rows


def summarise(rows: list[dict]) -> dict:
    """Mean and std over seeds per table and contender of the headline numbers."""
    out: dict = {}
    for row in rows:
        table = out.setdefault(row["table"], {"ml_efficacy_real": []})
        table["ml_efficacy_real"].append(row["ml_efficacy_real"])
        for name, result in row["contenders"].items():
            if "error" in result:
                table.setdefault(name, {"error": result["error"]})
                continue
            entry = table.setdefault(name, {})
            for key in ("quality", "column_shapes", "pair_trends", "ml_efficacy", "fit_seconds", "sample_seconds"):
                entry.setdefault(key, []).append(result[key])
            entry.setdefault("outside_range", []).append(result["outside_range_share"]["mean"])
            for column, (real, fake) in result["missing_share_real_vs_synthetic"].items():
                entry.setdefault(f"missing[{column}]", []).append(fake)
                table.setdefault(f"missing_real[{column}]", []).append(real)

    def stat(values):
        return {"mean": round(float(np.mean(values)), 4), "std": round(float(np.std(values)), 4)}
    return {t: {n: ({k: stat(v) for k, v in e.items()} if isinstance(e, dict) and "error" not in e else
                    (stat(e) if isinstance(e, list) else e)) for n, e in entries.items()}
            for t, entries in out.items()}
