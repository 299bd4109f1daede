"""Issue 17: inputs outside the range a run was trained on are refused or, where a user may mean
it, warned about in one line. Before, pixels 0..16000 given to a run trained on the digits' 0..16
were encoded without a word."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vaekit
from vaekit.data.loaders import prepare_data
from vaekit.errors import DataError


@pytest.fixture(scope="module")
def digits(pristine_run: Path) -> np.ndarray:
    """The run's held-out digits in their own units (0..16), as (N, 8, 8) floats."""
    return prepare_data(vaekit.load(pristine_run).config.data).test.x[:40].astype(np.float64).reshape(-1, 8, 8)


CASES = [  # (name, how the digits are changed, outcome, words of the line)
    ("as-trained", lambda x: x, "silent", []),
    ("16000", lambda x: x * 1000, "refused", ["0..1.6e+04", "trained on 0..16", "rescale"]),
    ("negative", lambda x: x - 8, "refused", ["-8..8"]),
    ("8-bit", lambda x: x * 255 / 16, "refused", ["0..255"]),
    ("5%-over", lambda x: x * 1.05, "warned", ["0..16.8", "extrapolates"]),
    ("already-scaled", lambda x: x / 16, "warned", ["scaled to [0, 1] already"]),
]


@pytest.mark.parametrize(("name", "change", "outcome", "words"), CASES, ids=[c[0] for c in CASES])
def test_inputs_outside_the_training_range(run_main, pristine_run: Path, digits: np.ndarray, tmp_path: Path,
                                           name: str, change, outcome: str, words: list[str]) -> None:
    inputs = tmp_path / f"{name}.npy"
    np.save(inputs, change(digits))
    out = tmp_path / "codes.npy"
    code, _, err = run_main("encode", str(pristine_run), "--data", str(inputs), "--out", str(out))
    lines = err.splitlines()
    if outcome == "refused":
        assert code == 2 and len(lines) == 1 and lines[0].startswith("vaekit: error: "), err
        assert not out.exists()
    else:
        assert code == 0, err
        assert out.is_file()
        flagged = [line for line in lines if "trained on" in line]
        assert len(flagged) == (outcome == "warned"), err
        lines = flagged
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    if outcome != "silent":
        assert str(inputs) in lines[0]


def test_the_python_api_checks_the_range_too(pristine_run: Path, digits: np.ndarray) -> None:
    run = vaekit.load(pristine_run)
    with pytest.raises(DataError, match="rescale the inputs"):
        run.encode(digits[:, None] * 1000)
    assert run.encode(digits[:, None]).mean.shape == (len(digits), 4)
