"""Misusing the Python API is one clear error, not a TypeError, AttributeError or RuntimeError from
deep inside torch (issue 17): a ValueError subclass of vaekit's errors, whose message is one line
naming the argument and what was expected."""

from __future__ import annotations

import math

import numpy as np
import pytest

import vaekit
from vaekit.errors import ConfigError, VaekitError

CASES = [
    ("load(None)", lambda run: vaekit.load(None), "path of a run folder"),
    ("load(3)", lambda run: vaekit.load(3), "path of a run folder"),
    ("sample(-1)", lambda run: run.sample(-1), "at least 1"),
    ("sample(0)", lambda run: run.sample(0), "at least 1"),
    ("sample(2.5)", lambda run: run.sample(2.5), "whole number"),
    ("sample(temperature=inf)", lambda run: run.sample(4, temperature=math.inf), "temperature"),
    ("decode(wrong width)", lambda run: run.decode(np.zeros((3, run.model.latent_dim + 1))), "shape (N, "),
    ("decode(1-D)", lambda run: run.decode(np.zeros(run.model.latent_dim)), "shape (N, "),
    ("decode(text)", lambda run: run.decode("codes"), "shape (N, "),
    ("decode(nan)", lambda run: run.decode(np.full((2, run.model.latent_dim), np.nan)), "NaN"),
    ("generate(wrong width)", lambda run: run.generate(np.zeros((3, 1))), "shape (N, "),
]


@pytest.mark.parametrize(("call", "misuse", "said"), CASES, ids=[case[0] for case in CASES])
def test_api_misuse_is_one_valueerror_line(digits_vae, call: str, misuse, said: str) -> None:
    with pytest.raises(ValueError) as caught:
        misuse(digits_vae)
    assert isinstance(caught.value, VaekitError), f"{call}: {type(caught.value).__name__}"
    message = str(caught.value)
    assert said in message and "\n" not in message, message


def test_train_takes_python_values_by_section_over_a_preset() -> None:
    from sklearn.datasets import load_digits

    x = load_digits().data[:200].astype(np.float32) / 16
    run = vaekit.train(data=x, preset="beta-vae", model={"beta": 3, "hidden": [32], "latent_dim": 2},
                       train={"epochs": 1, "progress": False}, eval={"enabled": False})
    assert run.config.preset == "beta-vae" and run.config.model.beta == 3.0 and run.config.model.hidden == [32]
    assert run.config.data.source == "array" and run.spec.kind == "table" and len(run.history) == 1


def test_train_refuses_bad_python_values_and_a_config_with_values_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"model\.beta") as caught:
        vaekit.train(model={"beta": -1})
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="not both"):
        vaekit.train(vaekit.resolve_config(), model={"beta": 2})
