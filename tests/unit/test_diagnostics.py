"""End-of-training diagnostics (issue 16): a run that ends collapsed, a sequence model that cannot
reconstruct yet, and a metric that ended NaN each say so in one warning line with the remedy,
whichever front end trained them (vaekit.train, the scikit-learn estimators)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch
from sklearn.datasets import load_breast_cancer

import vaekit
from vaekit.config import resolve_config
from vaekit.data.kinds.sequence import sequence_warning
from vaekit.data.loaders import prepare_data, to_tensors
from vaekit.data.tokens import BOS, EOS, PAD, UNK
from vaekit.estimators import VAETransformer
from vaekit.evaluation.diagnostics import end_of_training_warnings, non_finite_warning

TINY = ["data.source=digits", "data.max_samples=300", "model.hidden=[32]", "model.latent_dim=4", "train.epochs=2",
        "train.batch_size=64", "train.progress=false", "train.device=cpu", "eval.k=10"]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


def test_a_collapsed_run_says_so_in_one_line_with_the_remedy(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                             ) -> None:
    """A digits VAE whose KL weight empties its code; the remedies offered skip what the config
    already does (here the KL warm-up)."""
    config = resolve_config(overrides=[*TINY, "model.beta=100", "train.epochs=8", "train.lr=3e-3",
                                       "train.kl_warmup=linear", "train.kl_warmup_epochs=1"])
    with caplog.at_level(logging.WARNING):
        vaekit.train(config, out=tmp_path / "run")
    collapse = [line for line in warnings_of(caplog) if "latent dimensions are active" in line]
    assert collapse == [collapse[0]] and collapse[0].startswith("only 0 of 4 latent dimensions are active")
    assert "posterior collapse" in collapse[0] and "model.free_bits=0.1" in collapse[0]
    assert "a smaller model.beta (now 100)" in collapse[0]
    assert "kl_warmup" not in collapse[0]


def test_a_healthy_run_gets_no_warning(digits_vae) -> None:
    data = prepare_data(digits_vae.config.data)
    held = to_tensors(data.test, data.spec)
    assert end_of_training_warnings(digits_vae.model, digits_vae.config, held, spec=data.spec) == []


def test_the_estimators_report_a_collapse_too(caplog: pytest.LogCaptureFixture) -> None:
    """A wide table (30 columns) through scikit-learn's front end, with a KL weight that empties the code."""
    x = load_breast_cancer().data
    with caplog.at_level(logging.WARNING):
        VAETransformer(n_components=4, beta=50.0, max_epochs=2, random_state=0).fit(x)
    assert any(line.startswith("only 0 of 4 latent dimensions are active") for line in warnings_of(caplog))


def test_an_undertrained_sequence_model_says_what_its_reconstructions_look_like(
        sentences: Path, caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    config = resolve_config(preset="seq-vae", overrides=[
        f"data.source={sentences}", "data.tokens=word", "model.latent_dim=4", "model.embed_dim=8",
        "model.rnn_hidden=8", "train.epochs=1", "train.lr=1e-4", "train.progress=false", "eval.k=2"])
    with caplog.at_level(logging.WARNING):
        vaekit.train(config)
    lines = [line for line in warnings_of(caplog) if "sequence model" in line]
    assert len(lines) == 1 and "greedy reconstructions of 200 held-out items get" in lines[0]
    assert "of tokens right" in lines[0] and "more train.epochs (now 1)" in lines[0]


def _ids(rows: list[list[int]], length: int = 6) -> torch.Tensor:
    out = torch.full((len(rows), length), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row) + 2] = torch.tensor([BOS, *row, EOS])
    return out


def test_sequence_warning_names_what_it_saw() -> None:
    config = resolve_config(preset="seq-vae")
    inputs = _ids([[4, 5, 6], [7, 8], [9, 4, 4, 5], [6]])
    assert sequence_warning(inputs, inputs.clone(), ["a", "b", "c", "d"], config) is None  # exact
    unknown = sequence_warning(inputs, _ids([[UNK, UNK, 6], [UNK, 8], [UNK, UNK, UNK, 5], [UNK]]),
                               ["a", "b", "c", "d"], config)
    assert "of the decoded tokens <unk>" in unknown and "data.min_freq (now 1)" in unknown
    same = sequence_warning(inputs, _ids([[4, 4]] * 4), ["x x"] * 4, config)
    assert "100% of them the same string 'x x'" in same


def test_a_metric_that_ended_nan_or_infinite_is_named() -> None:
    metrics = {"nll": math.nan, "kl": 1.0, "kl_per_dim": [0.5, math.inf, 0.5], "property_r2": {"qed": math.nan}}
    line = non_finite_warning(metrics)
    assert line.startswith("metrics.json: nll = nan, kl_per_dim (1 of 3 values), property_r2.qed = nan not finite")
    assert non_finite_warning({"nll": 1.0, "kl_per_dim": [0.5]}) is None
    assert end_of_training_warnings(torch.nn.Linear(1, 1), resolve_config(), None, metrics) == [line]
