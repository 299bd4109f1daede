"""Shared test set-up: one CPU thread, and tiny image data written once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

# Two threads collapse under load on the CI machines; one thread also makes CPU kernels reproducible.
torch.set_num_threads(1)


def digits_16px(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` scikit-learn digits, upsampled 8x8 -> 16x16, float32 in [0, 1]: (n, 16, 16)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images[:n].astype(np.float32) / 16.0  # (n, 8, 8)
    images = images.repeat(2, axis=1).repeat(2, axis=2)  # (n, 16, 16)
    return images, bunch.target[:n].astype(np.int64)


@pytest.fixture(scope="session")
def digits16_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``.npz`` source of 160 digit images at 16x16 (big enough for the conv network)."""
    x, y = digits_16px(160)
    path = tmp_path_factory.mktemp("data") / "digits16.npz"
    np.savez(path, x=x, y=y)
    return path
