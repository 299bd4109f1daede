"""Latent arithmetic: interpolation paths hit their endpoints and keep their promised geometry, traversals
move one coordinate by ±span·scale, attribute vectors carry group B onto group A, and bad input raises the
promised error."""

from __future__ import annotations

import math

import pytest
import torch

from vaekit.applications.latent_ops import (
    analogy,
    apply_attribute,
    attribute_vector,
    interpolation_path,
    latent_std,
    lerp,
    order_by_kl,
    slerp,
    traversal_grid,
)
from vaekit.errors import ConfigError, DataError

D = 6


def codes(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def angle(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Angle between rows of u (..., D) and v (D,), in float64."""
    u, v = u.double(), v.double()
    cosine = (u @ v) / (torch.linalg.vector_norm(u, dim=-1) * torch.linalg.vector_norm(v))
    return torch.acos(cosine.clamp(-1, 1))


def test_lerp_hits_endpoints_exactly_in_even_steps() -> None:
    a, b = codes(D, seed=1), codes(D, seed=2)
    path = lerp(a, b, 7)  # (7, D)
    assert path.shape == (7, D)
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    torch.testing.assert_close(path.diff(dim=0), ((b - a) / 6).expand(6, D))


@pytest.mark.parametrize("steps", [2, 5, 11])
def test_slerp_hits_endpoints_exactly(steps: int) -> None:
    a, b = 2.0 * codes(D, seed=3), 0.5 * codes(D, seed=4)
    path = slerp(a, b, steps)
    assert path.shape == (steps, D)
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)


def test_slerp_of_equal_norms_keeps_the_norm_and_turns_at_a_constant_rate() -> None:
    a = codes(D, seed=5)
    b = codes(D, seed=6)
    b = b * a.norm() / b.norm()
    path = slerp(a, b, 9)  # (9, D)
    torch.testing.assert_close(path.norm(dim=-1), a.norm().expand(9), atol=1e-5, rtol=0)
    turned = angle(path, a)  # (9,)
    total = angle(b[None], a)[0]
    torch.testing.assert_close(turned, total * torch.linspace(0, 1, 9, dtype=torch.float64), atol=1e-5, rtol=0)
    # A straight line cuts the chord: its midpoint is shorter than the endpoints, slerp's is not.
    straight = lerp(a, b, 9)
    assert straight[4].norm() < a.norm() - 1e-2
    assert not torch.allclose(path[4], straight[4], atol=1e-2)


def test_slerp_interpolates_the_norm_linearly_for_unequal_norms() -> None:
    a, b = codes(D, seed=7), 3.0 * codes(D, seed=8)
    path = slerp(a, b, 5)
    torch.testing.assert_close(path.norm(dim=-1), torch.linspace(a.norm().item(), b.norm().item(), 5))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 6.0])),  # parallel
        (torch.tensor([1.0, 2.0, 3.0]), torch.tensor([-1.0, -2.0, -3.0])),  # antiparallel
        (torch.zeros(3), torch.tensor([1.0, 0.0, 0.0])),  # zero endpoint
        (torch.zeros(3), torch.zeros(3)),
    ],
    ids=["parallel", "antiparallel", "zero", "both-zero"],
)
def test_slerp_of_degenerate_endpoints_falls_back_to_lerp_without_nan(a: torch.Tensor, b: torch.Tensor) -> None:
    path = slerp(a, b, 5)
    assert torch.isfinite(path).all()
    torch.testing.assert_close(path, lerp(a, b, 5))


@pytest.mark.parametrize("path", ["linear", "spherical"])
def test_batched_endpoints_give_one_path_per_row(path: str) -> None:
    a, b = codes(4, D, seed=9), codes(4, D, seed=10)
    batched = interpolation_path(a, b, 6, path=path)  # (4, 6, D)
    assert batched.shape == (4, 6, D)
    for row in range(4):
        torch.testing.assert_close(batched[row], interpolation_path(a[row], b[row], 6, path=path))


def test_interpolation_path_dispatches() -> None:
    a, b = codes(D, seed=11), codes(D, seed=12)
    assert torch.equal(interpolation_path(a, b, 5), lerp(a, b, 5))
    assert torch.equal(interpolation_path(a, b, 5, path="spherical"), slerp(a, b, 5))


def test_traversal_row_moves_one_coordinate_by_plus_minus_span_scale() -> None:
    center, scale = codes(D, seed=13), torch.linspace(0.5, 3.0, D)
    dims = [4, 0, 2]
    grid = traversal_grid(center, dims, span=2.0, steps=5, scale=scale)  # (3, 5, D)
    assert grid.shape == (3, 5, D)
    for row, dim in enumerate(dims):
        changed = (grid[row] != center).any(dim=0)  # (D,)
        assert changed.nonzero().flatten().tolist() == [dim]
        expected = center[dim] + 2.0 * scale[dim] * torch.linspace(-1, 1, 5)
        torch.testing.assert_close(grid[row, :, dim], expected)
    assert torch.equal(grid[:, 2], center.expand(3, D))  # odd steps: the middle column is the center


def test_traversal_defaults_to_unit_scale() -> None:
    grid = traversal_grid(torch.zeros(D), [1])  # span 3, 9 steps
    torch.testing.assert_close(grid[0, :, 1], torch.linspace(-3.0, 3.0, 9))


def test_latent_std_scales_a_traversal_to_the_codes_spread() -> None:
    data = codes(500, D, seed=14) * torch.arange(1.0, D + 1)  # (500, D), std d + 1 in dimension d
    std = latent_std(data)
    torch.testing.assert_close(std, data.std(dim=0))
    assert std.argsort().tolist() == list(range(D))


def test_order_by_kl_puts_the_largest_mean_kl_first() -> None:
    kl = torch.tensor([[0.1, 2.0, 0.0, 0.5], [0.3, 1.0, 0.0, 1.5]])  # means 0.2, 1.5, 0.0, 1.0
    assert order_by_kl(kl) == [1, 3, 0, 2]
    assert order_by_kl(kl.mean(0)) == [1, 3, 0, 2]
    assert order_by_kl(torch.tensor([0.0, 1.0, 0.0, 1.0])) == [1, 3, 0, 2]  # ties keep index order


def two_groups() -> tuple[torch.Tensor, torch.Tensor]:
    """40 codes; the first 20 (group A) sit 3 units further along dimension 0."""
    data = codes(40, D, seed=15)
    data[:20, 0] += 3.0
    mask = torch.arange(40) < 20
    return data, mask


def test_attribute_vector_carries_group_b_onto_group_a() -> None:
    data, in_a = two_groups()
    vector = attribute_vector(data, in_a, ~in_a)  # (D,)
    assert vector.shape == (D,)
    group_a, group_b = data[in_a], data[~in_a]
    moved = apply_attribute(group_b, vector, torch.tensor([0.0, 1.0]))  # (20, 2, D)
    assert moved.shape == (20, 2, D)
    assert torch.equal(moved[:, 0], group_b)
    distance_before = (group_b - group_a.mean(0)).norm(dim=-1).mean()
    distance_after = (moved[:, 1] - group_a.mean(0)).norm(dim=-1).mean()
    assert distance_after < distance_before
    torch.testing.assert_close(moved[:, 1].mean(0), group_a.mean(0))


def test_attribute_vector_takes_masks_indices_and_lists_alike() -> None:
    data, in_a = two_groups()
    from_mask = attribute_vector(data, in_a, ~in_a)
    torch.testing.assert_close(attribute_vector(data, torch.arange(20), torch.arange(20, 40)), from_mask)
    torch.testing.assert_close(attribute_vector(data, list(range(20)), list(range(20, 40))), from_mask)


def test_apply_attribute_scales_the_vector() -> None:
    code, vector = torch.tensor([1.0, 1.0]), torch.tensor([0.5, -2.0])
    shifted = apply_attribute(code, vector, [-1.0, 0.0, 2.0])  # (3, 2)
    torch.testing.assert_close(shifted, torch.tensor([[0.5, 3.0], [1.0, 1.0], [2.0, -3.0]]))


def test_analogy_on_a_known_example() -> None:
    man, king, woman = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([1.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    torch.testing.assert_close(analogy(man, king, woman), torch.tensor([0.0, 1.0, 1.0]))
    many = torch.eye(3)  # (3, 3): one pair applied to three codes
    torch.testing.assert_close(analogy(man, king, many), many + torch.tensor([0.0, 1.0, 0.0]))


BAD_CALLS = {
    "lerp-different-D": lambda: lerp(torch.zeros(3), torch.zeros(4), 5),
    "slerp-3-D": lambda: slerp(torch.zeros(2, 2, 3), torch.zeros(2, 2, 3), 5),
    "lerp-one-step": lambda: lerp(torch.zeros(3), torch.ones(3), 1),
    "slerp-float-steps": lambda: slerp(torch.zeros(3), torch.ones(3), 4.0),
    "slerp-nan": lambda: slerp(torch.tensor([0.0, math.nan]), torch.ones(2), 5),
    "lerp-inf": lambda: lerp(torch.ones(2), torch.tensor([math.inf, 0.0]), 5),
    "lerp-not-a-tensor": lambda: lerp([0.0, 1.0], torch.ones(2), 5),
    "traversal-2-D-center": lambda: traversal_grid(torch.zeros(2, D), [0]),
    "traversal-dim-out-of-range": lambda: traversal_grid(torch.zeros(D), [D]),
    "traversal-no-dims": lambda: traversal_grid(torch.zeros(D), []),
    "traversal-scale-wrong-D": lambda: traversal_grid(torch.zeros(D), [0], scale=torch.ones(D + 1)),
    "traversal-negative-scale": lambda: traversal_grid(torch.zeros(D), [0], scale=-torch.ones(D)),
    "traversal-zero-span": lambda: traversal_grid(torch.zeros(D), [0], span=0.0),
    "traversal-one-step": lambda: traversal_grid(torch.zeros(D), [0], steps=1),
    "order-nan": lambda: order_by_kl(torch.tensor([0.1, math.nan])),
    "order-3-D": lambda: order_by_kl(torch.zeros(2, 2, 2)),
    "latent-std-one-code": lambda: latent_std(torch.zeros(1, D)),
    "attribute-empty-mask": lambda: attribute_vector(torch.zeros(4, D), torch.zeros(4, dtype=torch.bool), [0]),
    "attribute-empty-list": lambda: attribute_vector(torch.zeros(4, D), [0], []),
    "attribute-short-mask": lambda: attribute_vector(torch.zeros(4, D), torch.ones(3, dtype=torch.bool), [0]),
    "attribute-index-out-of-range": lambda: attribute_vector(torch.zeros(4, D), [0], [4]),
    "attribute-float-selector": lambda: attribute_vector(torch.zeros(4, D), torch.tensor([0.5]), [0]),
    "attribute-1-D-codes": lambda: attribute_vector(torch.zeros(D), [0], [1]),
    "apply-different-D": lambda: apply_attribute(torch.zeros(4, D), torch.zeros(D - 1), [1.0]),
    "apply-2-D-strengths": lambda: apply_attribute(torch.zeros(4, D), torch.zeros(D), [[1.0]]),
    "apply-nan-strength": lambda: apply_attribute(torch.zeros(4, D), torch.zeros(D), [math.nan]),
    "analogy-different-D": lambda: analogy(torch.zeros(3), torch.zeros(3), torch.zeros(4)),
    "analogy-mismatched-N": lambda: analogy(torch.zeros(2, 3), torch.zeros(3), torch.zeros(5, 3)),
}


@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_input_raises_a_one_line_data_error(call) -> None:
    with pytest.raises(DataError) as caught:
        call()
    assert "\n" not in str(caught.value)


def test_unknown_interpolation_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'linear', 'spherical'"):
        interpolation_path(torch.zeros(3), torch.ones(3), 5, path="geodesic")
