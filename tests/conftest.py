"""Shared test set-up: one CPU thread, tiny image data written once per session, and one small
VAE trained on the bundled digits that several modules read (never change it)."""

from __future__ import annotations

import os

# Two threads collapse under load on the CI machines; one thread also makes CPU kernels reproducible.
# The same for the OpenMP and BLAS pools of numpy, scipy and scikit-learn: on two busy cores a 2-thread
# t-SNE of 360 codes took 17-21 s against 5-10 s with one. The variables are read when a pool starts
# (so before numpy is imported); threadpool_limits covers any pool a plugin started earlier.
os.environ.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")

import random  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

torch.set_num_threads(1)
threadpool_limits(1)


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


# A digits VAE big enough to restore and score sensibly: one hidden layer of 128, 8 latents.
DIGITS_VAE = ["data.source=digits", "model.hidden=[128]", "model.latent_dim=8", "train.batch_size=64",
              "train.device=cpu", "train.progress=false", "eval.enabled=false"]


@pytest.fixture(scope="session")
def digits_vae(tmp_path_factory: pytest.TempPathFactory):
    """A VAE trained 40 epochs on digits (about 2 s), once per session. Read it; never train it further."""
    import vaekit
    from vaekit.config import resolve_config

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAEKIT_DATA", str(tmp_path_factory.mktemp("vaekit-data")))
        return vaekit.train(resolve_config(preset="vae", overrides=[*DIGITS_VAE, "train.epochs=40"]))


@pytest.fixture(scope="session")
def sentences(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 sentences of three independent choices (subject, verb, object) in a .txt file."""
    rng = random.Random(0)
    subjects = ["the cat", "a dog", "my friend", "the old man", "a small bird", "the teacher"]
    verbs = ["sees", "likes", "eats", "finds", "wants", "paints"]
    objects = ["the red ball", "a green apple", "some bread", "the blue sky", "a long letter", "the river"]
    path = tmp_path_factory.mktemp("text") / "sentences.txt"
    path.write_text("".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}\n"
                            for _ in range(1500)))
    return path
