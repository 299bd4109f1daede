"""Fixtures for the explorer: apps over three kinds of run (images, a conditional model, a table with
text and holes), real servers on free loopback ports (as ``vaekit explore`` serves, and with a short
request deadline or a small connection cap), and a headless Chromium (Debian's, driven by
Playwright through ``executable_path``; skipped with the reason when there is none)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the explorer needs the web extra: pip install 'vaekit[web]'")

from fastapi.testclient import TestClient  # noqa: E402

import vaekit  # noqa: E402
from vaekit.config import resolve_config  # noqa: E402
from vaekit.web import create_app  # noqa: E402

BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]
SMALL = ["model.hidden=[32]", "model.latent_dim=4", "train.device=cpu", "train.progress=false", "eval.enabled=false"]


def _train(tmp_path_factory: pytest.TempPathFactory, preset: str, overrides: list[str]) -> vaekit.Run:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAEKIT_DATA", str(tmp_path_factory.mktemp("vaekit-data")))
        out = tmp_path_factory.mktemp("run") / "run"
        return vaekit.train(resolve_config(preset=preset, overrides=overrides), out=out)


@pytest.fixture(scope="session")
def image_client(digits_vae) -> TestClient:
    """The explorer over the session's digits VAE (8x8 grey images, 8 latents, labels 0-9)."""
    return TestClient(create_app(digits_vae))


@pytest.fixture(scope="session")
def cvae_run(tmp_path_factory: pytest.TempPathFactory) -> vaekit.Run:
    return _train(tmp_path_factory, "cvae", ["data.source=digits", "train.epochs=3", *SMALL])


@pytest.fixture(scope="session")
def cvae_client(cvae_run) -> TestClient:
    return TestClient(create_app(cvae_run))


@pytest.fixture(scope="session")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> vaekit.Run:
    """Wine as a CSV with a text column ("strong": yes/no), the cultivar as label, 10% of cells empty."""
    import csv

    from sklearn.datasets import load_wine

    data = load_wine()
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("table") / "wine.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*data.feature_names, "strong", "cultivar"])
        for row, target in zip(data.data, data.target, strict=True):
            cells = [f"{v:g}" for v in row] + ["yes" if row[0] > 13 else "no"]
            writer.writerow(["" if rng.random() < 0.1 else cell for cell in cells] + [data.target_names[target]])
    return _train(tmp_path_factory, "vae", [f"data.source={path}", "data.label_column=cultivar", "train.epochs=5",
                                            *SMALL])


@pytest.fixture(scope="session")
def table_client(table_run) -> TestClient:
    return TestClient(create_app(table_run))


SENTENCE_PARTS = (["the cat", "a dog", "my friend", "the old man"], ["sees", "likes", "eats", "finds"],
                  ["the red ball", "some bread", "the blue sky", "a long letter"])
MOLECULES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CC(=O)O", "O=C=O", "ClCCl", "CCN(CC)CC", "c1ccncc1",
             "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "OCC(O)CO", "CCOC(=O)C", "c1ccc2ccccc2c1"]


@pytest.fixture(scope="session")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> vaekit.Run:
    """A seq-vae on made-up sentences (word tokens), a few epochs."""
    import random

    rng = random.Random(0)
    path = tmp_path_factory.mktemp("text") / "sentences.txt"
    path.write_text("".join(" ".join(rng.choice(part) for part in SENTENCE_PARTS) + "\n" for _ in range(400)))
    return _train(tmp_path_factory, "seq-vae", [f"data.source={path}", "data.tokens=word", "train.epochs=3",
                                                "model.latent_dim=4", "model.embed_dim=16", "model.rnn_hidden=32",
                                                "train.device=cpu", "train.progress=false", "eval.enabled=false"])


@pytest.fixture(scope="session")
def smiles_run(tmp_path_factory: pytest.TempPathFactory) -> vaekit.Run:
    """A seq-vae on a dozen small molecules (.smi: SMILES tokens), a few epochs."""
    path = tmp_path_factory.mktemp("mols") / "mols.smi"
    path.write_text("".join(f"{smiles}\n" for smiles in MOLECULES * 10))
    return _train(tmp_path_factory, "seq-vae", [f"data.source={path}", "train.epochs=3", "model.latent_dim=4",
                                                "model.embed_dim=16", "model.rnn_hidden=32", "train.device=cpu",
                                                "train.progress=false", "eval.enabled=false"])


@pytest.fixture(scope="session")
def text_client(text_run) -> TestClient:
    return TestClient(create_app(text_run))


@pytest.fixture(scope="session")
def smiles_client(smiles_run) -> TestClient:
    return TestClient(create_app(smiles_run))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(app, **options):
    """Serve ``app`` as ``vaekit explore`` does (``options``: its request timeout and connection cap) on
    a free loopback port in a thread; yields its base URL."""
    import uvicorn

    from vaekit.web.server import server_config

    port = _free_port()
    instance = uvicorn.Server(server_config(app, "127.0.0.1", port, **options))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the explorer server did not start within 30 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def server(digits_vae) -> str:
    """The digits explorer served by uvicorn on a free loopback port, for a real browser: its base URL."""
    yield from _serve(create_app(digits_vae))


@pytest.fixture(scope="session")
def cvae_server(cvae_run) -> str:
    """The conditional digits model's explorer, served the same way."""
    yield from _serve(create_app(cvae_run))


@pytest.fixture(scope="session")
def table_server(table_run) -> str:
    """The wine table's explorer, served the same way."""
    yield from _serve(create_app(table_run))


@pytest.fixture(scope="session")
def text_server(text_run) -> str:
    """The sentence model's explorer, served the same way."""
    yield from _serve(create_app(text_run))


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium under Playwright; skipped, with the reason, where either is missing."""
    playwright = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (the dev extra)")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("no chromium on PATH (.ci/run installs Debian's chromium; apt-get install chromium)")
    with playwright.sync_playwright() as driver:
        instance = driver.chromium.launch(executable_path=executable, headless=True, args=BROWSER_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on the explorer, loaded and ready (``body[data-ready]``); page errors fail the test."""
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture
def upload_png(tmp_path: Path) -> Path:
    """A 40x40 grey PNG with a bright ring, like a drawn zero."""
    from PIL import Image, ImageDraw

    picture = Image.new("L", (40, 40), 0)
    ImageDraw.Draw(picture).ellipse((8, 4, 32, 36), outline=255, width=5)
    path = tmp_path / "ring.png"
    picture.save(path)
    return path


@pytest.fixture(scope="session")
def strict_server(digits_vae) -> str:
    """The digits explorer with a 1 s request deadline and a cap of 8 connections: its base URL."""
    yield from _serve(create_app(digits_vae), timeout=1.0, max_connections=8)


@pytest.fixture(scope="session")
def capped_server(digits_vae) -> str:
    """The digits explorer with a cap of 4 connections and a deadline longer than any test: its base URL."""
    yield from _serve(create_app(digits_vae), timeout=600.0, max_connections=4)
