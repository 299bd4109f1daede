"""Encoders and decoders are built from the data's shape and give back exactly that shape."""

from __future__ import annotations

import pytest
import torch

from vaekit.config import ModelConfig
from vaekit.data.spec import DataSpec
from vaekit.errors import ConfigError
from vaekit.models import build_model
from vaekit.networks.factory import build_networks, network_kind
from vaekit.networks.image import ConvDecoder, ConvEncoder
from vaekit.networks.mlp import MLPDecoder, MLPEncoder

IMAGE_SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 27, 31), (2, 17, 17)]


def image_spec(shape: tuple[int, ...]) -> DataSpec:
    return DataSpec(kind="image", shape=list(shape), scale="unit", max_level=1.0)


def table_spec(width: int) -> DataSpec:
    return DataSpec(kind="table", shape=[width], scale="none", value_range=[-2.0, 3.0])


@pytest.mark.parametrize("shape", IMAGE_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("channels", [[8, 16], [4, 8, 16, 32]], ids=["2-stages", "4-stages"])
def test_conv_round_trip_restores_the_image_shape(shape: tuple[int, ...], channels: list[int]) -> None:
    torch.manual_seed(0)
    encoder = ConvEncoder(list(shape), channels, feature_dim=24)
    decoder = ConvDecoder(latent_dim=3, encoder=encoder, n_params=2)
    x = torch.rand(2, *shape)  # (B, C, H, W)
    features = encoder(x)
    assert features.shape == (2, 24)
    assert encoder.out_features == 24
    raw = decoder(torch.randn(2, 3))
    assert raw.shape == (2, 2, *shape)  # (B, P, C, H, W)
    assert torch.isfinite(raw).all()


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_conv_with_normalisation_keeps_shapes(norm: str) -> None:
    encoder = ConvEncoder([3, 20, 20], [8, 16], 16, act="silu", norm=norm)
    decoder = ConvDecoder(2, encoder, 1, act="silu", norm=norm)
    assert encoder(torch.rand(4, 3, 20, 20)).shape == (4, 16)
    assert decoder(torch.randn(4, 2)).shape == (4, 1, 3, 20, 20)


@pytest.mark.parametrize("shape", IMAGE_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_conv_model_decodes_to_the_input_shape(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    config = ModelConfig(network="conv", latent_dim=2, hidden=[16], conv_channels=[8, 16], likelihood="bernoulli")
    model = build_model(image_spec(shape), config)
    x = torch.rand(3, *shape)
    qz = model.encode(x)
    assert qz.mean.shape == (3, 2)
    px = model.decode(qz.rsample((4,)))  # (S, B, L) -> batch shape (S, B)
    assert px.mean.shape == (4, 3, *shape)
    assert px.log_prob(x).shape == (4, 3)


@pytest.mark.parametrize(("shape", "hidden"), [((5,), [32]), ((1, 8, 8), [32, 16]), ((3, 4, 2), []), ((7,), [8, 8, 8])])
def test_mlp_shapes(shape: tuple[int, ...], hidden: list[int]) -> None:
    encoder = MLPEncoder(list(shape), hidden)
    decoder = MLPDecoder(4, list(shape), hidden, n_params=3)
    x = torch.randn(6, *shape)
    features = encoder(x)
    width = hidden[-1] if hidden else x[0].numel()
    assert features.shape == (6, width)
    assert encoder.out_features == width
    assert decoder(torch.randn(6, 4)).shape == (6, 3, *shape)


def test_mlp_decoder_mirrors_the_encoder_widths() -> None:
    encoder = MLPEncoder([10], [32, 16])
    decoder = MLPDecoder(4, [10], [32, 16], n_params=1)
    widths = [(m.in_features, m.out_features) for m in encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [(10, 32), (32, 16)]
    widths = [(m.in_features, m.out_features) for m in decoder.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [(4, 16), (16, 32), (32, 10)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (image_spec((1, 16, 16)), "conv"),
        (image_spec((3, 32, 32)), "conv"),
        (image_spec((1, 16, 40)), "conv"),
        (image_spec((1, 8, 8)), "mlp"),
        (image_spec((1, 15, 64)), "mlp"),
        (table_spec(20), "mlp"),
    ],
    ids=["16px", "32px", "16x40", "8px", "15x64", "table"],
)
def test_auto_network_picks_conv_for_images_of_16_px_and_up(spec: DataSpec, expected: str) -> None:
    config = ModelConfig(network="auto", latent_dim=2, hidden=[8], conv_channels=[4, 8])
    assert network_kind(spec, config) == expected
    encoder, _ = build_networks(spec, config, n_params=1)
    assert isinstance(encoder, ConvEncoder if expected == "conv" else MLPEncoder)


def test_explicit_network_overrides_auto() -> None:
    assert network_kind(image_spec((1, 28, 28)), ModelConfig(network="mlp")) == "mlp"
    assert network_kind(image_spec((1, 8, 8)), ModelConfig(network="conv")) == "conv"


def test_conv_on_a_table_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="network"):
        network_kind(table_spec(12), ModelConfig(network="conv"))


def test_conv_decoder_starts_with_outputs_that_depend_on_z() -> None:
    """He init: at the first step the conv decoder's output already moves with z. With PyTorch's
    default init its logits varied by 0.0008 across codes, so the KL term won and the posterior
    collapsed."""
    torch.manual_seed(0)
    encoder, decoder = build_networks(image_spec((1, 28, 28)), ModelConfig(network="conv", hidden=[256]), 1)
    with torch.no_grad():
        spread = decoder(torch.randn(256, 16)).std(0).mean()  # per output value, across codes
        features = encoder(torch.rand(64, 1, 28, 28)).std(0).mean()  # across inputs
    assert float(spread) > 0.3 and float(features) > 0.05


def test_default_conv_vae_uses_its_latents_on_upscaled_digits(tmp_path) -> None:
    """The report: real digits as 28x28 uint8 (an .npz), the default conv network: 0 of 16 units
    active for ten epochs. Now most are in use within a few dozen steps."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    import vaekit

    digits = load_digits()
    images = np.stack([np.asarray(Image.fromarray((image * 255 / 16).astype(np.uint8)).resize((28, 28),
                                                                                           Image.BILINEAR))
                       for image in digits.images[:600]])  # (600, 28, 28) uint8
    np.savez(tmp_path / "digits28.npz", x=images, y=digits.target[:600])
    config = vaekit.resolve_config(overrides=[f"data.source={tmp_path / 'digits28.npz'}", "train.epochs=6",
                                              "train.batch_size=64", "train.device=cpu", "train.threads=1",
                                              "train.progress=false", "eval.enabled=false", "train.seed=0"])
    torch.manual_seed(0)
    run = vaekit.train(config)
    assert run.history[-1]["active_units"] >= config.model.latent_dim // 2
