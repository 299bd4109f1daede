"""A table run's synthetic rows judged against real ones (``vaekit evaluate RUN --synthetic FILE``, or
:func:`synthetic_report` from Python): one JSON-ready dict, and its summary in lines.

Each part compares the synthetic rows with the real table that answers its question:

- **quality** (column shapes, pair trends and their mean, SDMetrics' QualityReport,
  :mod:`vaekit.evaluation.synthetic`): against the run's *training split*, the rows the model learned
  (SDMetrics' "real data": the table given to the synthesizer);
- **ML efficacy** (:func:`~vaekit.evaluation.synthetic_holdout.ml_efficacy`): the same model fitted
  on the training split and on the synthetic rows, both scored on the *holdout*;
- **privacy** (:func:`~vaekit.evaluation.synthetic_holdout.privacy`): each synthetic row's distance to
  its closest *training* row (DCR) against the holdout rows' distance to theirs, and the share of
  exact copies of a training row.

The holdout is real rows the model never saw: ``holdout`` (``--data``), else the run's test split,
else its validation split. Every table is read with the run's columns (matched by name, extra columns
left out; a label column is one more categorical column when every table has it). A metric that
cannot be computed (no holdout, no target, too few rows, a constant column) is a line in
``skipped``, never a NaN.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from vaekit.data.columns import Column
from vaekit.data.loaders import prepare_data
from vaekit.data.sources import RawData
from vaekit.data.sources.labels import NoLabelColumn
from vaekit.data.sources.tabular import from_frame
from vaekit.errors import ConfigError, DataError
from vaekit.evaluation.synthetic import SAMPLED, code_tables, quality_report
from vaekit.evaluation.synthetic_holdout import closest_distances, ml_efficacy, privacy
from vaekit.run import Run

REPORT = "synthetic_report.json"  # in the run folder; `vaekit report` shows it
SUFFIXES = (".csv", ".parquet")
SHOWN = 10  # skipped metrics printed before "... and N more"
log = logging.getLogger(__name__)

HOLDOUT_OVERLAP = 0.2  # share of holdout rows found in the training split that is said: the holdout is not held out
TABLES = {"synthetic": "synthetic table", "train": "training split", "holdout": "holdout"}


def check_table_run(run: Run, option: str = "synthetic") -> None:
    """Refuse, in one line, a run whose rows are not a table with typed columns."""
    refused = run.spec.data_kind.unsupported(run.spec, "synthesis")
    if refused:
        raise ConfigError(f"{option}: a synthetic-data report is for table runs; {refused}")


def column_names(run: Run) -> list[str]:
    """The columns a report can name: the run's, and its label column."""
    label = run.config.data.label_column
    return [c.name for c in run.spec.columns] + ([label] if label else [])


def check_target(run: Run, target: str | None, option: str = "target") -> None:
    if target is not None and target not in column_names(run):
        raise ConfigError(f"{option} {target!r}: no such column; columns: {', '.join(column_names(run)[:20])}")


def read_table(run: Run, data: Any, what: str) -> RawData:
    """A table in the run's columns: a CSV or Parquet path, a pandas DataFrame or a :class:`RawData`."""
    if isinstance(data, str | Path):
        path = Path(data)
        if path.suffix.lower() not in SUFFIXES or not path.is_file():
            problem = "no such file" if path.suffix.lower() in SUFFIXES else "expected a .csv or .parquet file"
            raise DataError(f"{what} {str(path)!r}: {problem}")
        return run.inputs(str(path), "all")
    if not isinstance(data, RawData):
        if not hasattr(data, "columns"):
            raise DataError(f"{what}: expected a path, a pandas DataFrame or RawData, got {type(data).__name__}")
        try:
            data = from_frame(data, run.config.data.label_column)
        except NoLabelColumn:
            data = from_frame(data)
    return run.spec.align(data, what=what, label_column=run.config.data.label_column)


def _table(raw: RawData, labelled: bool) -> np.ndarray:
    """The rows as objects (N, D), the class names last when ``labelled``."""
    x = np.asarray(raw.x, dtype=object)
    if not labelled:
        return x
    names = raw.class_names or [str(k) for k in range(int(raw.y.max()) + 1)]
    return np.concatenate([x, np.array([names[k] for k in raw.y], dtype=object)[:, None]], axis=1)


def _holdout(run: Run, holdout: Any, train: Any) -> tuple[RawData | None, RawData, str, str | None]:
    """(holdout, training split, where the holdout comes from, why there is none)."""
    given = None if holdout is None else read_table(run, holdout, "holdout")
    if train is not None:
        train = read_table(run, train, "training table")
        if given is None:
            return None, train, "", "no holdout given (the training table was given: pass its holdout too)"
        return given, train, _source(holdout), None
    data = prepare_data(run.config.data)  # the split the model was trained on, as training made it
    if given is not None:
        return given, data.train, _source(holdout), None
    for name, split in (("test", data.test), ("validation", data.val)):
        if split is not None and len(split):
            return split, data.train, f"the run's {name} split", None
    return None, data.train, "", "the run has no test or validation split: give a holdout (--data)"


def _source(data: Any) -> str:
    return str(data) if isinstance(data, str | Path) else f"a {type(data).__name__}"


def synthetic_report(run: Run, synthetic: Any, *, holdout: Any = None, train: Any = None, target: str | None = None,
                     seed: int = 0, model: str = "forest") -> dict[str, Any]:
    """The report of ``synthetic`` rows (a CSV or Parquet path, a DataFrame or RawData) of table run
    ``run``: quality against the training split (``train``, default reloaded from the run's source),
    ML efficacy and privacy against ``holdout`` (default the run's test split). ``target``: the column
    ML efficacy predicts (default the run's label column); ``model``: ``forest`` or ``linear``."""
    check_table_run(run)
    check_target(run, target)
    rows = read_table(run, synthetic, "synthetic table")
    held, real, held_from, no_holdout = _holdout(run, holdout, train)
    labelled = run.config.data.label_column is not None and all(
        t is None or t.y is not None for t in (rows, real, held))
    columns = list(run.spec.columns) + ([Column(run.config.data.label_column, "categorical")] if labelled else [])
    tables = {"synthetic": _table(rows, labelled), "train": _table(real, labelled)}
    if held is not None:
        tables["holdout"] = _table(held, labelled)
    for name, table in tables.items():  # a bad table named before any metric
        try:
            code_tables(columns, table)
        except DataError as error:
            raise DataError(f"{TABLES[name]}: {error}") from None
    report: dict[str, Any] = {
        "tables": {name: {"rows": len(table), "columns": len(columns)} for name, table in tables.items()},
        "compared": {"quality": "synthetic vs the training split",
                     "ml_efficacy": "fitted on the synthetic rows vs on the training split, scored on the holdout",
                     "privacy": "distance to the closest training row: synthetic rows vs holdout rows"},
        "skipped": {}}
    report["tables"]["synthetic"]["source"] = _source(synthetic)
    report["tables"]["train"]["source"] = "given" if train is not None else str(run.config.data.source)
    if held is not None:
        report["tables"]["holdout"]["source"] = held_from
    report["quality"] = quality_report(columns, tables["train"], tables["synthetic"]).to_dict()
    report["ml_efficacy"] = _efficacy(run, columns, tables, target, no_holdout, seed, model, report["skipped"])
    report["privacy"] = _privacy(columns, tables, no_holdout, report["skipped"])
    overlap = (report["privacy"] or {}).get("holdout_exact_copies")
    if overlap is not None and overlap >= HOLDOUT_OVERLAP:
        log.warning("%.0f%% of the holdout's rows are rows of the training split: ML efficacy and privacy then read "
                    "too well; pass rows the model never saw (its test split is the default), unless the data "
                    "repeats rows this often", 100 * overlap)
    _skipped_scores(report)
    return _finite(report, report["skipped"])


def _efficacy(run: Run, columns: list[Column], tables: dict[str, np.ndarray], target: str | None,
              no_holdout: str | None, seed: int, model: str, skipped: dict[str, str]) -> dict[str, Any] | None:
    target = target or run.config.data.label_column
    if no_holdout is not None:
        skipped["ml_efficacy"] = no_holdout
    elif target is None:
        skipped["ml_efficacy"] = "no target: the run has no label column; name the column to predict (--target)"
    elif target not in [c.name for c in columns]:
        skipped["ml_efficacy"] = (f"the target {target!r} is not in every table (an unconditional run's synthetic "
                                  "rows carry no label column: name another column with --target)")
    if "ml_efficacy" in skipped:
        return None
    result = ml_efficacy(columns, tables["train"], tables["synthetic"], tables["holdout"], target, model, seed)
    skipped.update({f"ml_efficacy {key}": reason for key, reason in result.skipped.items()})
    return result.to_dict()


def _privacy(columns: list[Column], tables: dict[str, np.ndarray], no_holdout: str | None,
             skipped: dict[str, str]) -> dict[str, Any]:
    if no_holdout is None:
        return privacy(columns, tables["train"], tables["synthetic"], tables["holdout"]).to_dict()
    skipped["privacy holdout"] = no_holdout
    coded = code_tables(columns, tables["train"], tables["synthetic"])
    distances = closest_distances(coded.tables[1], coded.tables[0], coded.numeric)
    return {"dcr_synthetic": float(np.median(distances)), "dcr_holdout": None,
            "exact_copies": float(np.mean(distances == 0)), "holdout_exact_copies": None}


def _skipped_scores(report: dict[str, Any]) -> None:
    """Each quality score that has no value, as a line in ``skipped``."""
    quality = report["quality"]
    for part in ("shapes", "pairs"):
        for score in quality[part]:
            if score["value"] is None:
                report["skipped"][f"{part[:-1]} {score['what']}"] = f"{score['metric']}: {score['reason']}"
    for note in quality["notes"]:
        if note.startswith(SAMPLED):  # computed, on part of the pairs: said, not skipped
            log.info("%s", note)
        else:
            report["skipped"][f"quality {note.split(':')[0]}"] = note


def _finite(tree: Any, skipped: dict[str, str], where: str = "") -> Any:
    """The tree with any NaN or infinity as None, each said in ``skipped``."""
    if isinstance(tree, dict):
        return {key: _finite(value, skipped, f"{where}{key}.") for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return [_finite(value, skipped, f"{where}{k}.") for k, value in enumerate(tree)]
    if isinstance(tree, float) and not math.isfinite(tree):
        skipped[where.rstrip(".")] = f"came out {tree}: left empty"
        return None
    return tree


def shapes_worst_first(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The column-shape scores, lowest first (those without a value last), with each column's missing
    shares (real, synthetic)."""
    quality = report["quality"]
    shapes = [{**score, "missing": quality["missing"].get(score["what"])} for score in quality["shapes"]]
    return sorted(shapes, key=lambda s: (s["value"] is None, s["value"] or 0.0))


def pairs_summary(report: dict[str, Any], worst: int = 5) -> dict[str, Any]:
    """How many pairs counted (related in the real table) of how many, and the ``worst`` counted ones."""
    pairs = report["quality"]["pairs"]
    counted = sorted((p for p in pairs if p["counted"]), key=lambda p: p["value"])
    return {"counted": len(counted), "total": len(pairs), "score": report["quality"]["pair_trends"],
            "worst": counted[:worst]}


def _score(value: float | None) -> str:
    return "not computed" if value is None else f"{value:.3f}"


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The report in a few readable lines: what was compared with what, the scores, what was skipped."""
    tables, quality = report["tables"], report["quality"]
    lines = [f"synthetic: {tables['synthetic']['source']} ({tables['synthetic']['rows']} rows); training split: "
             f"{tables['train']['rows']} rows; holdout: " + (
                 f"{tables['holdout']['source']} ({tables['holdout']['rows']} rows)" if "holdout" in tables
                 else "none")]
    pairs = pairs_summary(report, 3)
    lines.append(f"quality vs the training split: overall {_score(quality['overall'])}, column shapes "
                 f"{_score(quality['column_shapes'])}, pair trends {_score(quality['pair_trends'])} "
                 f"({pairs['counted']} of {pairs['total']} pairs related in the real table)")
    worst = [s for s in shapes_worst_first(report) if s["value"] is not None][:3]
    if worst:
        lines.append("worst column shapes: " + ", ".join(f"{s['what']} {s['value']:.3f}" for s in worst))
    efficacy = report["ml_efficacy"]
    if efficacy is not None and efficacy["real"] and efficacy["synthetic"]:
        scores = ", ".join(f"{m} {efficacy['synthetic'][m]:.3f} vs {v:.3f}" for m, v in efficacy["real"].items()
                           if m in efficacy["synthetic"])
        lines.append(f"ML efficacy ({efficacy['model']} predicting {efficacy['target']}, scored on the holdout), "
                     f"trained on synthetic vs training rows: {scores}")
    privacy_ = report["privacy"]
    lines.append(f"privacy (distance to the closest training row): median DCR synthetic "
                 f"{_score(privacy_['dcr_synthetic'])} vs holdout {_score(privacy_['dcr_holdout'])}; exact copies "
                 f"{privacy_['exact_copies']:.1%}" + ("" if privacy_["holdout_exact_copies"] is None else
                                                     f" (holdout {privacy_['holdout_exact_copies']:.1%})"))
    skipped = [f"not computed: {what}: {why}" for what, why in report["skipped"].items()]
    extra = len(skipped) - SHOWN
    return lines + skipped[:SHOWN] + ([f"... and {extra} more not computed (see the JSON)"] if extra > 0 else [])
