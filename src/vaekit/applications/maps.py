"""2-D and 3-D maps of a latent space: PCA, t-SNE (scikit-learn) or UMAP (the ``[umap]`` extra),
drawn as a scatter plot coloured by label."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaekit.errors import ConfigError, DataError
from vaekit.files import atomic_write_bytes


def _pca(codes: np.ndarray, dims: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    return PCA(dims, random_state=seed).fit_transform(codes)


def _tsne(codes: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """van der Maaten & Hinton 2008; perplexity 30 (or less for tiny sets), PCA initialisation."""
    from sklearn.manifold import TSNE

    perplexity = min(30.0, (len(codes) - 1) / 3)
    return TSNE(dims, perplexity=perplexity, init="pca", random_state=seed).fit_transform(codes)


def _umap(codes: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """McInnes et al. 2018; random initialisation for tiny sets, where the spectral one needs N > dims + 1."""
    try:
        import umap
    except ImportError:
        raise ConfigError("--method umap needs the umap extra: pip install 'vaekit[umap]'") from None
    init = "spectral" if len(codes) > dims + 1 else "random"
    return umap.UMAP(n_components=dims, init=init, random_state=seed).fit_transform(codes)


PROJECTIONS: dict[str, Callable[[np.ndarray, int, int], np.ndarray]] = {"pca": _pca, "tsne": _tsne, "umap": _umap}


def _checked(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or len(codes) < 3 or not np.isfinite(codes).all():
        raise DataError(f"latent codes: expected a finite (N, L) array with N >= 3, got shape {codes.shape}")
    return codes


def project(codes: np.ndarray, method: str = "pca", dims: int = 2, seed: int = 0) -> np.ndarray:
    """Codes (N, L) -> map coordinates (N, dims). Codes with no more than ``dims`` dimensions are
    returned as they are (padded with zeros), since there is nothing to reduce."""
    if method not in PROJECTIONS:
        raise ConfigError(f"method {method!r}: expected one of {', '.join(PROJECTIONS)}")
    if dims not in (2, 3):
        raise ConfigError(f"dims={dims}: a map has 2 or 3 dimensions")
    codes = _checked(codes)
    if codes.shape[1] <= dims:
        return np.pad(codes, ((0, 0), (0, dims - codes.shape[1])))
    return np.asarray(PROJECTIONS[method](codes, dims, seed), dtype=np.float64)


@dataclass
class LatentMap:
    """A 2-D map of codes (N, L): ``points`` (N, 2), and :meth:`to_latent` for the way back."""

    method: str
    codes: np.ndarray  # (N, L)
    points: np.ndarray  # (N, 2)
    mean: np.ndarray | None = None  # PCA: the mean code (L,) and the two principal directions (2, L)
    components: np.ndarray | None = None

    def to_latent(self, xy: np.ndarray, neighbours: int = 5) -> np.ndarray:
        """Map positions (M, 2) -> codes (M, L). PCA has an inverse: the code on the plane of the
        two principal directions through the mean. t-SNE and UMAP have none: the codes of the
        ``neighbours`` nearest mapped points, averaged with inverse-distance weights."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if self.components is not None:
            return self.mean + xy @ self.components
        distance = np.linalg.norm(self.points[None, :, :] - xy[:, None, :], axis=-1)  # (M, N)
        nearest = np.argsort(distance, axis=1)[:, :neighbours]  # (M, k)
        weights = 1.0 / np.maximum(np.take_along_axis(distance, nearest, 1), 1e-9)  # (M, k)
        weights /= weights.sum(1, keepdims=True)
        return np.einsum("mk,mkl->ml", weights, self.codes[nearest])


def fit_map(codes: np.ndarray, method: str = "pca", seed: int = 0) -> LatentMap:
    """A 2-D :class:`LatentMap` of codes (N, L) by PCA, t-SNE or UMAP (see :func:`project`)."""
    if method != "pca":
        return LatentMap(method, _checked(codes), project(codes, method, 2, seed))
    codes = _checked(codes)
    if codes.shape[1] <= 2:  # mapped as they are (padded): the way back drops the padding
        points = project(codes, method, 2, seed)
        return LatentMap(method, codes, points, np.zeros(codes.shape[1]), np.eye(2)[:, : codes.shape[1]])
    from sklearn.decomposition import PCA

    pca = PCA(2, random_state=seed).fit(codes)
    return LatentMap(method, codes, pca.transform(codes), pca.mean_, pca.components_)


def save_map(points: np.ndarray, path: str | Path, labels: np.ndarray | None = None,
             class_names: Sequence[str] | None = None, title: str = "") -> Path:
    """A scatter plot of map coordinates (N, 2) or (N, 3) as PNG, one colour per label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    three_d = points.shape[1] == 3
    figure = plt.figure(figsize=(6.4, 5.6), dpi=120)
    axis = figure.add_subplot(projection="3d" if three_d else None)
    columns = [points[:, i] for i in range(points.shape[1])]
    size = max(1.0, min(12.0, 6000 / len(points)))
    if labels is None:
        axis.scatter(*columns, s=size, alpha=0.6)
    else:
        palette = plt.get_cmap("tab10" if len(np.unique(labels)) <= 10 else "tab20")
        for index, value in enumerate(np.unique(labels)):
            chosen = labels == value
            known = class_names is not None and 0 <= int(value) < len(class_names)
            name = class_names[int(value)] if known else str(value)
            axis.scatter(*(c[chosen] for c in columns), s=size, alpha=0.6, color=palette(index % palette.N),
                         label=name)
        axis.legend(markerscale=max(1.0, 24 / size) ** 0.5, fontsize=7, loc="best", framealpha=0.8)
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())
