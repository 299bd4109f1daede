"""The kl-f presets: the latent-diffusion autoencoder as vaekit's VAE over its five axes, and the
patch-gan objective (adaptive weight, start, hinge loss)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vaekit
from vaekit.config import DataConfig, resolve_config
from vaekit.data.sources import RawData
from vaekit.data.spec import DataSpec
from vaekit.distributions.posteriors import DiagonalGaussian
from vaekit.errors import ConfigError
from vaekit.models import build_model, build_objective
from vaekit.models.objectives.patchgan import adaptive_weight, last_layer
from vaekit.networks.ldm import AutoencoderKL
from vaekit.networks.ldm_vae import autoencoder_of, ldm_config

TINY = ["model.conv_channels=[8, 16, 16]", "model.norm_groups=8", "model.patch_channels=8"]


def images(n: int = 24, side: int = 16, channels: int = 1, seed: int = 0) -> RawData:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, channels, side, side)).astype(np.uint8)
    return RawData(x=x, y=np.arange(n) % 2, kind="image", max_level=255.0, class_names=["a", "b"])


def setup(*extra: str, raw: RawData | None = None, preset: str = "kl-f4"):
    raw = raw or images()
    spec = DataSpec.fit(raw, DataConfig(source="array"))
    config = resolve_config(preset=preset, overrides=[*TINY, *extra]).model
    torch.manual_seed(0)
    model = build_model(spec, config)
    x = torch.as_tensor(spec.transform(raw.x))
    return spec, config, model, x


def test_kl_f4_is_the_vae_over_a_spatial_latent_grid() -> None:
    spec, config, model, x = setup()
    assert model.latent_shape == (3, 4, 4) and model.latent_dim == 48  # 3 channels at 16 / 4
    ae = autoencoder_of(model.encoder, model.decoder, ldm_config(spec, config, 1))
    qz = model.encode(x[:4])
    assert isinstance(qz, DiagonalGaussian) and qz.loc.shape == (4, 48)
    moments = ae.encode(2 * x[:4] - 1)  # diffusers' network sees [-1, 1]
    torch.testing.assert_close(qz.loc, moments.mean.flatten(1), rtol=0, atol=0)
    torch.testing.assert_close(qz.logvar, moments.logvar.flatten(1), rtol=0, atol=0)
    z = torch.randn(4, 48)
    torch.testing.assert_close(model.decode(z).mean, (ae.decode(z.view(4, 3, 4, 4)) + 1) / 2, rtol=0, atol=1e-6)
    prior = model.prior_distribution()
    assert prior.sample((5,)).shape == (5, 48)


def test_the_vaekit_model_holds_exactly_the_diffusers_parameters() -> None:
    spec, config, model, _ = setup()
    ae_config = ldm_config(spec, config, 1)
    shared = autoencoder_of(model.encoder, model.decoder, ae_config).state_dict()
    fresh = AutoencoderKL(ae_config).state_dict()
    assert list(shared) == list(fresh)
    assert all(shared[key].shape == fresh[key].shape for key in fresh)
    # The model's own names are diffusers' under the encoder/decoder halves, and nothing else.
    own = {key.split(".", 1)[1] for key in model.state_dict() if key.split(".")[0] in ("encoder", "decoder")}
    assert own == set(fresh)
    assert [key for key in model.state_dict() if key.split(".")[0] not in ("encoder", "decoder")] == []


@pytest.mark.parametrize(("extra", "raw", "message"), [
    ((), images(side=18), "multiples of f=4"),
    (("model.condition=label",), None, "cannot feed it"),
    (("model.stochastic_layers=2",), None, "cannot feed it"),
    (("model.likelihood=gaussian_learned",), None, "decodes one value per pixel"),
    (("model.norm_groups=5",), None, "must divide every width"),
])
def test_what_the_ldm_network_cannot_build_is_one_line(extra, raw, message) -> None:
    with pytest.raises(ConfigError, match=message):
        setup(*extra, raw=raw)


def test_the_ldm_network_is_for_images_only() -> None:
    table = RawData(x=np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32), kind="table")
    with pytest.raises(ConfigError, match="model.network='ldm' needs images"):
        setup(raw=table)


def test_adaptive_weight_is_the_ratio_of_gradient_norms_at_the_last_layer() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    out = layer(torch.randn(5, 3))
    recon, adversarial = out.square().sum(), 0.1 * out.sum()
    weight = adaptive_weight(recon, adversarial, layer.weight)
    g1, = torch.autograd.grad(recon, layer.weight, retain_graph=True)
    g2, = torch.autograd.grad(adversarial, layer.weight)
    assert weight.item() == pytest.approx((g1.norm() / (g2.norm() + 1e-4)).item(), rel=1e-6)
    assert not weight.requires_grad


def test_patch_gan_plays_only_after_its_start() -> None:
    spec, config, model, x = setup("model.disc_start=1")
    objective = build_objective(config, spec, 24)
    assert last_layer(model) is model.decoder.decoder.conv_out.weight
    batch = {"x": x[:8], "y": torch.zeros(8, dtype=torch.long)}
    disc = objective.aux_module

    def step():
        model.zero_grad(), disc.zero_grad()
        torch.manual_seed(1)
        out = objective(model, batch)
        (out.loss + out.aux_loss).backward()
        return out

    calls = []
    disc.register_forward_hook(lambda *_: calls.append(1))
    before = step()  # not playing: the loss is the bound's, the discriminator learns nothing
    bound = before.recon.mean() + config.beta * before.kl.mean()
    assert before.loss.item() == pytest.approx(bound.item(), rel=1e-6)
    assert calls == []  # nor is it run: its passes would cost as much as the autoencoder's
    assert all(p.grad is not None and p.grad.abs().sum() == 0 for p in disc.parameters())  # a zero for DDP
    assert objective.phase() is False
    objective.scheduled()[0][0](1.0)  # the schedule's value after model.disc_start epochs
    after = step()
    assert objective.phase() is True and len(calls) == 3  # the decoder's view, then real and reconstructed
    assert after.aux_loss.item() > 0
    # Every kernel learns (the output bias's hinge gradients cancel while all logits lie in (-1, 1)).
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in disc.parameters() if p.dim() > 1)
    assert after.loss.item() != pytest.approx(bound.item(), rel=1e-6)
    model.eval()
    with torch.no_grad():  # validation: the bound alone, no game
        val = objective(model, batch)
    assert val.aux_loss is None and val.extras == {}


def test_a_kl_f4_run_trains_saves_and_reloads(tmp_path) -> None:
    raw = images(n=48)
    config = resolve_config(preset="kl-f4", overrides=[*TINY, "train.epochs=2", "train.batch_size=16",
                                                       "model.disc_start=1", "train.progress=false",
                                                       "train.device=cpu", "eval.enabled=false"])
    run = vaekit.train(config, out=tmp_path / "run", data=raw)
    history = run.history
    assert history[0]["disc_loss"] == 0.0 and history[1]["disc_loss"] > 0.0  # on after one epoch
    saved = vaekit.io.read_config(tmp_path / "run")
    assert saved.model.latent_dim == 48  # settled from the image size, as the model has it
    again = vaekit.load(tmp_path / "run")
    assert again.model.latent_shape == (3, 4, 4)
    x = torch.as_tensor(run.spec.transform(raw.x[:4]))
    torch.testing.assert_close(again.model.encode(x).mean, run.model.encode(x).mean, rtol=0, atol=0)


def test_the_perceptual_distance_is_lpips_with_unit_weights() -> None:
    from vaekit.evaluation.features import FeatureClassifier
    from vaekit.models.objectives.patchgan import perceptual_distance

    torch.manual_seed(0)
    net = FeatureClassifier(1, 2).eval()
    a, b = torch.rand(3, 1, 16, 16), torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(perceptual_distance(net.activations, a, a), torch.zeros(3))
        found = perceptual_distance(net.activations, a, b)
        expected = torch.zeros(3)
        for fa, fb in zip(net.activations(a), net.activations(b), strict=True):
            fa, fb = fa / (fa.norm(dim=1, keepdim=True) + 1e-10), fb / (fb.norm(dim=1, keepdim=True) + 1e-10)
            expected += (fa - fb).square().sum(1).mean((-2, -1))
    torch.testing.assert_close(found, expected)
    assert (found > 0).all()
    assert [m.shape[-1] for m in net.activations(a)] == [16, 8, 4]  # pooled between blocks


def test_perceptual_auto_trains_on_the_labels_and_enters_the_loss(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "cache"))  # the feature classifier's cache
    yy, xx = np.mgrid[0:16, 0:16]
    x = np.stack([((xx if k % 2 else yy) * 16 + k) % 256 for k in range(40)])[:, None].astype(np.uint8)
    np.savez(tmp_path / "stripes.npz", x=x, y=np.arange(40) % 2)
    overrides = [*TINY, f"data.source={tmp_path / 'stripes.npz'}", "train.epochs=1", "train.batch_size=16",
                 "train.progress=false", "train.device=cpu", "eval.enabled=false", "model.disc_start=0"]
    run = vaekit.train(resolve_config(preset="kl-f4", overrides=overrides))
    assert run.history[0]["perceptual"] > 0
    assert list((tmp_path / "cache" / "feature-classifiers").iterdir())  # trained once, cached for FID too
    unlabelled = vaekit.train(resolve_config(preset="kl-f4", overrides=overrides),
                              data=RawData(x=x, y=None, kind="image", max_level=255.0))
    assert "perceptual" not in unlabelled.history[0]
