"""history.csv shows posterior collapse while it happens: active units and the KL range over the
latent dimensions on validation data after every epoch (issue 8)."""

from __future__ import annotations

import csv
from pathlib import Path

import vaekit

TINY = ["data.source=digits", "data.max_samples=400", "model.hidden=[32]", "model.latent_dim=6", "train.epochs=2",
        "train.progress=false", "eval.enabled=false"]


def test_every_epoch_reports_active_units_and_the_kl_range(tmp_path: Path) -> None:
    run = vaekit.train(vaekit.resolve_config(overrides=[*TINY, "train.epochs=8"]), out=tmp_path / "run")
    for row in run.history:
        assert 0 <= row["active_units"] <= 6 and float(row["active_units"]).is_integer()
        assert 0.0 <= row["kl_dim_min"] <= row["kl_dim_max"]
    written = list(csv.DictReader((tmp_path / "run" / "history.csv").open()))
    assert [float(r["active_units"]) for r in written] == [r["active_units"] for r in run.history]
    assert run.history[-1]["kl_dim_max"] > 0.05  # a VAE on digits uses some of its code after 8 epochs


def test_a_collapsed_code_shows_as_zero_active_units() -> None:
    """beta = 100 drives every dimension to the prior: no active unit, every KL near 0."""
    run = vaekit.train(vaekit.resolve_config(overrides=[*TINY, "model.beta=100", "train.epochs=8",
                                                        "train.lr=3e-3"]))
    assert run.history[-1]["active_units"] == 0 and run.history[-1]["kl_dim_max"] < 0.05


def test_a_deterministic_code_has_no_such_columns() -> None:
    run = vaekit.train(vaekit.resolve_config(preset="ae", overrides=TINY))
    assert "active_units" not in run.history[-1]
