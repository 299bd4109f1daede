"""Reconstruction quality of image runs in metrics.json (PSNR, SSIM) and rFID: the numbers equal the
metrics computed directly on the run's reconstructions, on the data's [0, 1] scale; tables get none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import vaekit
from vaekit.applications.generate import held_out_part, reconstruction_fid
from vaekit.config import resolve_config
from vaekit.evaluation.features import FeatureNetwork
from vaekit.evaluation.quality import frechet_distance
from vaekit.evaluation.reconstruction import psnr, ssim, unit_scale

SMALL = ["model.network=mlp", "model.hidden=[32]", "model.latent_dim=4", "train.epochs=1", "train.batch_size=32",
         "train.progress=false", "train.device=cpu", "train.seed=0", "eval.k=3", "eval.max_seconds=null"]


@pytest.fixture(scope="module")
def image_runs(digits16_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, vaekit.Run]:
    """One-epoch runs on 16x16 digits, scaled to [0, 1] by their full-scale level and standardised
    per channel, each with its run folder (metrics.json from the end of training)."""
    folder = tmp_path_factory.mktemp("reconstruction")
    return {scale: vaekit.train(resolve_config(overrides=[f"data.source={digits16_npz}", f"data.scale={scale}",
                                                          *SMALL]), out=folder / scale)
            for scale in ("unit", "standardize")}


def direct_scores(run: vaekit.Run) -> tuple[float, float]:
    """Mean PSNR and SSIM of the run's reconstructions of its test images, on the [0, 1] scale of the
    data: over the full-scale level, or (standardised) over the test images' own span."""
    images = torch.as_tensor(run.inputs().x).float()
    low, high = (0.0, run.spec.max_level) if run.spec.max_level else (float(images.min()), float(images.max()))
    truth = (images - low) / (high - low)
    estimate = ((run.reconstruct(images) - low) / (high - low)).clamp(0, 1)
    return float(psnr(estimate, truth).mean()), float(ssim(estimate, truth).mean())


@pytest.mark.parametrize("scale", ["unit", "standardize"])
def test_image_metrics_are_the_scores_of_the_runs_reconstructions(image_runs, scale: str) -> None:
    run = image_runs[scale]
    saved = json.loads((run.path / "metrics.json").read_text())["test"]
    expected_psnr, expected_ssim = direct_scores(run)
    assert saved["psnr"] == pytest.approx(expected_psnr, rel=1e-5)
    assert saved["ssim"] == pytest.approx(expected_ssim, rel=1e-5)
    assert 0.0 < saved["ssim"] < 1.0 and 0.0 < saved["psnr"] < 60.0
    assert "not_computed" not in saved


def test_the_unit_scale_of_standardised_images_is_their_span_in_data_units(image_runs) -> None:
    run = image_runs["standardize"]
    images = torch.as_tensor(run.inputs().x).float()
    scale = unit_scale(run.spec, run.spec.transform(images))
    assert (scale.low, scale.high) == pytest.approx((float(images.min()), float(images.max())), abs=1e-5)
    assert unit_scale(image_runs["unit"].spec, images) == unit_scale(image_runs["unit"].spec, images[:3])


def test_small_images_say_why_ssim_is_missing_and_tables_get_no_image_metrics(tmp_path: Path) -> None:
    digits = vaekit.train(resolve_config(overrides=["data.source=digits", "data.max_samples=200", *SMALL]))
    metrics = digits.evaluate()
    assert np.isfinite(metrics["psnr"]) and "ssim" not in metrics
    assert metrics["not_computed"] == {"ssim": "images of 8x8 pixels, smaller than SSIM's 11x11 window"}
    rows = np.random.default_rng(0).normal(size=(120, 5)).astype(np.float32)
    table = vaekit.train(resolve_config(overrides=SMALL), out=tmp_path / "table", data=rows)
    saved = json.loads((tmp_path / "table" / "metrics.json").read_text())["test"]
    assert "neg_elbo" in saved and not {"psnr", "ssim", "rfid", "not_computed"} & set(saved)
    assert table.spec.data_kind.unsupported(table.spec, "reconstruction") == (
        "reconstruction quality (PSNR, SSIM, rFID) is defined for images; this run's data are tables")


def tiny_features() -> FeatureNetwork:
    """A fixed random projection of the pixels to 6 features, then a ReLU."""
    weights = torch.randn(256, 6, generator=torch.Generator().manual_seed(0))
    return FeatureNetwork(lambda images: torch.relu(images.flatten(1) @ weights), "tiny projection")


def test_rfid_is_the_frechet_distance_of_real_and_reconstructed_features(image_runs) -> None:
    run, network = image_runs["unit"], tiny_features()
    test = run.inputs()
    real = held_out_part(test, 30, seed=2)
    truth = torch.as_tensor(real.x).float() / run.spec.max_level
    rebuilt = (run.reconstruct(real.x) / run.spec.max_level).clamp(0, 1)
    expected = frechet_distance(network(truth), network(rebuilt))
    assert reconstruction_fid(run, test, n=30, seed=2, features=network) == pytest.approx(expected, rel=1e-6)
    assert expected > 0.1  # one epoch: the reconstructions are far from the images


def test_a_perfect_reconstruction_has_rfid_zero_and_ssim_one(image_runs, monkeypatch: pytest.MonkeyPatch) -> None:
    run = image_runs["standardize"]
    monkeypatch.setattr(run, "reconstruct", lambda x, name="input", condition=None: torch.as_tensor(x).float())
    assert reconstruction_fid(run, run.inputs(), n=30, features=tiny_features()) == pytest.approx(0.0, abs=1e-6)
    images = torch.as_tensor(run.inputs().x).float()  # (N, 1, 16, 16)
    assert torch.allclose(ssim(images, images), torch.ones(len(images), dtype=torch.float64))
    assert torch.all(psnr(images, images) == 120.0)
