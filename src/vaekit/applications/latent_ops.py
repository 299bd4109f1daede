"""Arithmetic on latent codes: interpolation, traversal grids, attribute vectors and analogies.

Pure tensor math on codes ``z`` of ``D`` latent dimensions; encoding the inputs and decoding the results is
the caller's job. References: Shoemake, "Animating rotation with quaternion curves" (SIGGRAPH 1985) for
slerp; White, "Sampling Generative Networks" (2016) for slerp, attribute vectors and analogies in Gaussian
latent spaces; Larsen et al., "Autoencoding beyond pixels using a learned similarity metric" (ICML 2016) for
attribute vectors from labelled groups; Higgins et al., "beta-VAE" (ICLR 2017) for latent traversals.

An unknown option name raises :class:`~vaekit.errors.ConfigError`; any argument of the wrong shape, with
NaN or inf, or with an out-of-range value raises :class:`~vaekit.errors.DataError`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor

from vaekit.errors import ConfigError, DataError

# Below this sin(angle) between the endpoints' directions, slerp's weights divide by ~0: parallel (where
# slerp equals lerp to within angle^2) or antiparallel (where no great circle is preferred).
PARALLEL_SIN = 1e-6


def _codes(name: str, value: Tensor, ndims: tuple[int, ...]) -> Tensor:
    """Check that ``value`` is a finite tensor with one of ``ndims`` dimensions and D >= 1; return it as float."""
    if not isinstance(value, Tensor):
        raise DataError(f"{name}: expected a torch.Tensor of latent codes, got {type(value).__name__}")
    if value.ndim not in ndims or value.shape[-1] == 0:
        wanted = " or ".join({1: "(D,)", 2: "(N, D)"}[ndim] for ndim in ndims)
        raise DataError(f"{name}: expected shape {wanted} with D >= 1, got {tuple(value.shape)}")
    if not value.is_floating_point():
        value = value.float()
    if not torch.isfinite(value).all():
        raise DataError(f"{name}: contains NaN or inf; expected finite latent codes")
    return value


def _same_dim(name: str, value: Tensor, reference_name: str, reference: Tensor) -> None:
    if value.shape[-1] != reference.shape[-1]:
        raise DataError(
            f"{name}: expected D = {reference.shape[-1]} latent dimensions like {reference_name}, "
            f"got shape {tuple(value.shape)}"
        )


def _endpoints(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    a, b = _codes("a", a, (1, 2)), _codes("b", b, (1, 2))
    if a.shape != b.shape:
        raise DataError(f"b: expected the shape of a, {tuple(a.shape)}, got {tuple(b.shape)}")
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype), b.to(dtype)


def _check_steps(steps: int) -> int:
    try:
        count = operator.index(steps)
    except TypeError:
        count = None
    if count is None or isinstance(steps, bool) or count < 2:
        raise DataError(f"steps: expected an integer >= 2 (both endpoints are included), got {steps!r}")
    return count


def _fractions(steps: int, like: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """t = 0, 1/(steps-1), ..., 1; linspace makes both ends exact, so the paths hit their endpoints exactly."""
    return torch.linspace(0.0, 1.0, _check_steps(steps), dtype=dtype or like.dtype, device=like.device)  # (S,)


def lerp(a: Tensor, b: Tensor, steps: int) -> Tensor:
    """Points evenly spaced on the segment from ``a`` to ``b``, both included: ``(1 - t) a + t b``.

    Parameters
    ----------
    a, b : Tensor
        Endpoints, (D,), or (B, D) for B paths at once; same shape.
    steps : int
        Number of points, >= 2.

    Returns
    -------
    Tensor
        (steps, D), or (B, steps, D) for batched endpoints; row 0 is exactly ``a``, the last exactly ``b``.
    """
    a, b = _endpoints(a, b)
    t = _fractions(steps, a)[:, None]  # (S, 1)
    return (1 - t) * a[..., None, :] + t * b[..., None, :]  # (..., S, D)


def slerp(a: Tensor, b: Tensor, steps: int) -> Tensor:
    """Spherical linear interpolation from ``a`` to ``b`` (Shoemake 1985; White 2016).

    In a high-dimensional Gaussian latent space almost all prior mass lies near the sphere of radius
    sqrt(D); the midpoint of a straight line between two typical codes is shorter than either and
    atypical, so its decoding is blurred. Slerp keeps the path near the shell instead.

    The endpoints need not have equal norms, so the direction and the norm are interpolated separately:
    the unit direction moves along the great circle from ``a/|a|`` to ``b/|b|`` at a constant angular
    rate, ``u(t) = [sin((1 - t) W) a/|a| + sin(t W) b/|b|] / sin W`` with ``W`` the angle between them,
    and is scaled by the linearly interpolated norm ``(1 - t)|a| + t|b|``. For ``|a| = |b|`` this is
    Shoemake's slerp. Where the direction is undefined or the great circle is not unique (a zero
    endpoint, or ``a`` and ``b`` parallel or antiparallel, ``sin W < PARALLEL_SIN``) the path falls back
    to :func:`lerp`: for parallel and zero endpoints that is the same path, for antiparallel ones it
    passes through (or beside) the origin.

    Parameters
    ----------
    a, b : Tensor
        Endpoints, (D,), or (B, D) for B paths at once; same shape.
    steps : int
        Number of points, >= 2.

    Returns
    -------
    Tensor
        (steps, D), or (B, steps, D) for batched endpoints; row 0 is exactly ``a``, the last exactly ``b``.
    """
    a, b = _endpoints(a, b)
    # Weights in float64: near-antiparallel endpoints give large weights on a and b that must cancel.
    t = _fractions(steps, a, torch.float64)  # (S,)
    a64, b64 = a.double(), b.double()  # (..., D)
    norm_a = torch.linalg.vector_norm(a64, dim=-1, keepdim=True)  # (..., 1)
    norm_b = torch.linalg.vector_norm(b64, dim=-1, keepdim=True)  # (..., 1)
    nonzero = (norm_a > 0) & (norm_b > 0)  # (..., 1)
    norm_a_safe, norm_b_safe = norm_a.where(nonzero, 1.0), norm_b.where(nonzero, 1.0)  # (..., 1)
    unit_a, unit_b = a64 / norm_a_safe, b64 / norm_b_safe  # (..., D)
    # 2 atan2(|u_a - u_b|, |u_a + u_b|) is accurate at every angle, unlike acos(u_a . u_b) near 0 and pi.
    angle = 2 * torch.atan2(
        torch.linalg.vector_norm(unit_a - unit_b, dim=-1, keepdim=True),
        torch.linalg.vector_norm(unit_a + unit_b, dim=-1, keepdim=True),
    )  # (..., 1)
    sin_angle = torch.sin(angle)  # (..., 1)
    spherical = nonzero & (sin_angle > PARALLEL_SIN)  # (..., 1)
    sin_angle = sin_angle.where(spherical, 1.0)
    radius = (1 - t) * norm_a + t * norm_b  # (..., S)
    # Weights on a and b themselves (not on the unit vectors) so that t = 0 and t = 1 give exactly 1 and 0.
    weight_a = radius / norm_a_safe * torch.sin((1 - t) * angle) / sin_angle  # (..., S)
    weight_b = radius / norm_b_safe * torch.sin(t * angle) / sin_angle  # (..., S)
    weight_a = weight_a.where(spherical, 1 - t)
    weight_b = weight_b.where(spherical, t)
    path = weight_a[..., None] * a64[..., None, :] + weight_b[..., None] * b64[..., None, :]  # (..., S, D)
    return path.to(a.dtype)


INTERPOLATIONS: dict[str, Callable[[Tensor, Tensor, int], Tensor]] = {"linear": lerp, "spherical": slerp}


def interpolation_path(a: Tensor, b: Tensor, steps: int, path: Literal["linear", "spherical"] = "linear") -> Tensor:
    """Points from ``a`` to ``b`` along a straight line (:func:`lerp`) or a great circle (:func:`slerp`).

    Parameters
    ----------
    a, b : Tensor
        Endpoints, (D,), or (B, D) for B paths at once; same shape.
    steps : int
        Number of points, >= 2.
    path : {"linear", "spherical"}
        ``"spherical"`` suits codes compared against a Gaussian prior (White 2016).

    Returns
    -------
    Tensor
        (steps, D), or (B, steps, D) for batched endpoints.
    """
    if path not in INTERPOLATIONS:
        raise ConfigError(f"interpolation path {path!r}: expected one of {', '.join(map(repr, INTERPOLATIONS))}")
    return INTERPOLATIONS[path](a, b, steps)


def latent_std(codes: Tensor) -> Tensor:
    """Per-dimension standard deviation (unbiased) of a set of codes, (N, D) -> (D,).

    The ``scale`` for :func:`traversal_grid` that makes ``span`` count standard deviations of the codes
    actually used (e.g. the posterior means of a data set), rather than of the N(0, I) prior.
    """
    codes = _codes("codes", codes, (2,))
    if codes.shape[0] < 2:
        raise DataError(f"codes: expected at least 2 codes to estimate a spread, got shape {tuple(codes.shape)}")
    return codes.std(dim=0)  # (D,)


def traversal_grid(
    center: Tensor, dims: Sequence[int], span: float = 3.0, steps: int = 9, scale: Tensor | None = None
) -> Tensor:
    """Latent traversals: one row per dimension in ``dims``, varying that coordinate alone (Higgins et al. 2017).

    Row ``r`` holds ``steps`` codes equal to ``center`` except in dimension ``dims[r]``, which runs evenly
    from ``center[d] - span * scale[d]`` to ``center[d] + span * scale[d]`` ("±k σ").

    Parameters
    ----------
    center : Tensor
        (D,) code to traverse around, e.g. one input's posterior mean or zeros (the prior's mode).
    dims : sequence of int
        Latent dimensions, one row each, in ``[0, D)``; :func:`order_by_kl` gives the informative ones first.
    span : float
        Half-width of each row in units of ``scale``; > 0.
    steps : int
        Codes per row, >= 2; odd counts include ``center`` itself in the middle.
    scale : Tensor, optional
        (D,) non-negative scale per dimension, e.g. :func:`latent_std`; default ones (the prior's std).

    Returns
    -------
    Tensor
        (len(dims), steps, D).
    """
    center = _codes("center", center, (1,))
    size = center.shape[0]
    try:
        rows = [operator.index(dim) for dim in dims]
    except TypeError:
        raise DataError(f"dims: expected a sequence of integer latent dimensions, got {dims!r}") from None
    if not rows or not all(0 <= dim < size for dim in rows):
        raise DataError(f"dims: expected at least one latent dimension in [0, {size}), got {rows}")
    try:
        half_width = float(span)
    except (TypeError, ValueError):
        half_width = float("nan")
    if not 0 < half_width < float("inf"):
        raise DataError(f"span: expected a finite number > 0 (in units of scale), got {span!r}")
    if scale is None:
        scale = torch.ones_like(center)  # (D,)
    scale = _codes("scale", scale, (1,))
    _same_dim("scale", scale, "center", center)
    if (scale < 0).any():
        raise DataError("scale: expected non-negative standard deviations per dimension")
    count = _check_steps(steps)
    offsets = torch.linspace(-half_width, half_width, count, dtype=center.dtype, device=center.device)  # (S,)
    grid = center.expand(len(rows), count, size).clone()  # (R, S, D)
    for row, dim in enumerate(rows):
        grid[row, :, dim] = center[dim] + offsets * scale[dim]  # (S,)
    return grid


def order_by_kl(kl_per_dim: Tensor) -> list[int]:
    """Latent dimensions by mean KL(q(z_d | x) || p(z_d)), largest first; ties keep index order.

    Dimensions with near-zero KL are inactive (posterior collapse, Burda et al. 2016, sec. 5.2), so
    traversing them changes nothing; this puts the informative dimensions first.

    Parameters
    ----------
    kl_per_dim : Tensor
        (N, D) KL per code and dimension (see :func:`vaekit.distributions.kl.kl_per_dim`), or (D,) means.

    Returns
    -------
    list of int
        All D dimension indices.
    """
    kl_per_dim = _codes("kl_per_dim", kl_per_dim, (1, 2))
    mean_kl = kl_per_dim.double().mean(0) if kl_per_dim.ndim == 2 else kl_per_dim  # (D,)
    return torch.sort(mean_kl, descending=True, stable=True).indices.tolist()


def _group(name: str, selector: Tensor | Sequence[int] | Sequence[bool], n: int) -> Tensor:
    """A boolean mask (N,) or integer indices -> indices (K,), K >= 1."""
    selector = torch.as_tensor(selector)
    if selector.numel() == 0:
        raise DataError(f"{name}: selects no codes; expected at least one code in each group")
    if selector.dtype == torch.bool:
        if selector.shape != (n,):
            raise DataError(
                f"{name}: a boolean mask needs shape ({n},), one entry per code; got {tuple(selector.shape)}"
            )
        indices = selector.nonzero().squeeze(1)  # (K,)
    elif not (selector.is_floating_point() or selector.is_complex()):
        if selector.ndim != 1:
            raise DataError(f"{name}: expected 1-D integer indices, got shape {tuple(selector.shape)}")
        if not ((selector >= 0) & (selector < n)).all():
            low, high = selector.min().item(), selector.max().item()
            raise DataError(f"{name}: expected integer indices in [0, {n}), got values from {low} to {high}")
        indices = selector
    else:
        raise DataError(f"{name}: expected a boolean mask or integer indices, got dtype {selector.dtype}")
    if indices.numel() == 0:
        raise DataError(f"{name}: selects no codes; expected at least one code in each group")
    return indices


def attribute_vector(
    codes: Tensor, in_a: Tensor | Sequence[int] | Sequence[bool], in_b: Tensor | Sequence[int] | Sequence[bool]
) -> Tensor:
    """Mean code of group A minus mean code of group B (White 2016; Larsen et al. 2016).

    With A the codes of inputs that have an attribute (e.g. smiling) and B those that lack it, adding the
    vector to a code of B moves it toward A; with strength 1 the mean of B lands exactly on the mean of A.

    Parameters
    ----------
    codes : Tensor
        (N, D) latent codes, e.g. posterior means.
    in_a, in_b : Tensor or sequence
        Each a boolean mask (N,) or integer indices into ``codes``, selecting at least one code.

    Returns
    -------
    Tensor
        (D,).
    """
    codes = _codes("codes", codes, (2,))
    indices_a = _group("in_a", in_a, codes.shape[0]).to(codes.device)  # (K_a,)
    indices_b = _group("in_b", in_b, codes.shape[0]).to(codes.device)  # (K_b,)
    return codes[indices_a].mean(0) - codes[indices_b].mean(0)  # (D,)


def apply_attribute(codes: Tensor, vector: Tensor, strengths: Tensor | Sequence[float]) -> Tensor:
    """Each code shifted along ``vector`` by each strength: ``codes[:, None] + strengths[None, :, None] * vector``.

    Parameters
    ----------
    codes : Tensor
        (N, D) codes, or one code (D,).
    vector : Tensor
        (D,) direction, e.g. from :func:`attribute_vector`.
    strengths : Tensor or sequence of float
        (S,) multiples of ``vector``; 0 gives the code back, negative values remove the attribute.

    Returns
    -------
    Tensor
        (N, S, D), or (S, D) for one code.
    """
    codes = _codes("codes", codes, (1, 2))
    vector = _codes("vector", vector, (1,))
    _same_dim("vector", vector, "codes", codes)
    strengths = torch.as_tensor(strengths, dtype=codes.dtype, device=codes.device)
    if strengths.ndim != 1 or strengths.numel() == 0:
        raise DataError(f"strengths: expected a non-empty 1-D sequence (S,), got shape {tuple(strengths.shape)}")
    if not torch.isfinite(strengths).all():
        raise DataError("strengths: contains NaN or inf; expected finite multiples of the vector")
    return codes[..., None, :] + strengths[:, None] * vector  # (..., S, D)


def analogy(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """Complete "a is to b as c is to ?" with ``c + (b - a)`` (White 2016; Mikolov et al. 2013).

    Parameters
    ----------
    a, b, c : Tensor
        Codes (D,) or (N, D), same D; batch sizes broadcast, so one (D,) pair can be applied to many ``c``.

    Returns
    -------
    Tensor
        The broadcast shape of ``a``, ``b`` and ``c``.
    """
    a, b, c = _codes("a", a, (1, 2)), _codes("b", b, (1, 2)), _codes("c", c, (1, 2))
    _same_dim("b", b, "a", a)
    _same_dim("c", c, "a", a)
    try:
        torch.broadcast_shapes(a.shape, b.shape, c.shape)
    except RuntimeError:
        raise DataError(
            f"a, b, c: expected the same number of codes N (or single codes), got shapes "
            f"{tuple(a.shape)}, {tuple(b.shape)}, {tuple(c.shape)}"
        ) from None
    return c + (b - a)  # (..., D)


def nearest(codes: Tensor, query: Tensor, k: int = 8) -> tuple[Tensor, Tensor]:
    """The ``k`` codes nearest to each query code (Euclidean distance in latent space).

    Parameters
    ----------
    codes : Tensor
        (N, D) codes to search, e.g. the posterior means of a data set.
    query : Tensor
        (M, D) codes to find neighbours for.
    k : int
        Neighbours per query (at most N).

    Returns
    -------
    tuple of Tensor
        Indices (M, k) into ``codes`` and distances (M, k), nearest first.
    """
    codes = _codes("codes", codes, (2,))
    query = _codes("query", query, (2,))
    _same_dim("query", query[0], "codes", codes[0])
    if not 1 <= k <= len(codes):
        raise DataError(f"k: expected 1..{len(codes)} neighbours, got {k}")
    distances = torch.cdist(query.double(), codes.double())  # (M, N)
    found = torch.topk(distances, k, dim=1, largest=False)
    return found.indices, found.values.to(codes.dtype)
