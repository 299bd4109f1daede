"""dSprites drawn on the fly: 737,280 binary 64x64 sprites from five known factors, no download.

Matthey, Higgins, Hassabis & Lerchner 2017, "dSprites: Disentanglement testing Sprites dataset".
The grid of factors is the original one; the drawing is our own (close, not pixel-identical), so
the ground truth stays available to disentanglement metrics through :class:`DSprites`.
"""

from __future__ import annotations

import math

import numpy as np

from vaekit.data.sources.base import RawData, Source, Splits, register_source
from vaekit.errors import DataError
from vaekit.sections import DataConfig

SHAPES = ("square", "ellipse", "heart")
CANVAS = 64
# Side of the patch each sprite is drawn in: it holds the largest sprite (the scale-1 square,
# radius 8 * sqrt(2) = 11.3 px) at any angle, so only 24 x 24 of the 64 x 64 pixels are evaluated.
WINDOW = 24
POSITION_PIXELS = (10.0, 54.0)  # where the sprite's centre lies for position 0 and position 1
HALF_SIDE = 8.0  # half the side of the scale-1 square: a quarter of the canvas wide
# The heart (x^2 + y^2 - 1)^3 <= x^2 y^3 spans x in [-1.139, 1.139] and y in [-1, 1.236]: scaled
# to the square's width and centred on its bounding box.
HEART_WIDTH, HEART_CENTRE = 1.139, 0.118
CHUNK = 1024  # images drawn at once: the float32 work arrays (CHUNK, 24, 24) stay in cache


class DSprites:
    """The dSprites simulator: factor indices to images, and grid indices to factors and back.

    Factors, slowest to fastest in the grid: shape (square, ellipse, heart), scale (6 values
    linear in [0.5, 1]), orientation (40 values in [0, 2 pi), counter-clockwise as displayed),
    pos_x (32 values in [0, 1], left to right) and pos_y (32 values in [0, 1], top to bottom:
    a larger pos_y moves the sprite down, to larger row indices). Positions map to sprite centres
    at pixels 10 to 54; a scale-1 square is 16 px wide, the ellipse 16 x 8 px, the heart 16 px wide.
    """

    factor_names = ("shape", "scale", "orientation", "pos_x", "pos_y")
    factor_sizes = (3, 6, 40, 32, 32)
    scales = np.linspace(0.5, 1.0, 6)
    orientations = np.linspace(0.0, 2.0 * np.pi, 40, endpoint=False)
    positions = np.linspace(0.0, 1.0, 32)

    def __len__(self) -> int:
        return math.prod(self.factor_sizes)

    def index_to_factors(self, index: np.ndarray | int) -> np.ndarray:
        """Grid indices (n,) to factor indices (n, 5) int64, shape slowest and pos_y fastest."""
        index = np.asarray(index, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise DataError(f"dSprites index out of range: expected 0..{len(self) - 1}")
        return np.stack(np.unravel_index(index, self.factor_sizes), axis=-1).astype(np.int64)

    def factors_to_index(self, factors: np.ndarray) -> np.ndarray:
        """Factor indices (n, 5) to grid indices (n,) int64: the inverse of :meth:`index_to_factors`."""
        factors = self._check(factors)
        return np.ravel_multi_index(tuple(factors.T), self.factor_sizes).astype(np.int64)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` factor vectors (n, 5) int64, each factor uniform over its values."""
        return rng.integers(0, self.factor_sizes, size=(n, len(self.factor_sizes)), dtype=np.int64)

    def render(self, factors: np.ndarray) -> np.ndarray:
        """Draw the sprites of factor indices (n, 5): (n, 1, 64, 64) uint8 images of 0 and 1.

        Vectorised over images, in chunks of 1,024 that bound the working memory; deterministic.
        """
        factors = self._check(factors)
        images = np.zeros((len(factors), 1, CANVAS, CANVAS), dtype=np.uint8)
        for start in range(0, len(factors), CHUNK):
            _draw(images[start : start + CHUNK, 0], factors[start : start + CHUNK], WINDOW)
        return images

    def _check(self, factors: np.ndarray) -> np.ndarray:
        factors = np.asarray(factors)
        if factors.ndim != 2 or factors.shape[1] != len(self.factor_sizes):
            raise DataError(f"dSprites factors: expected shape (n, 5), got {factors.shape}")
        if not np.issubdtype(factors.dtype, np.integer):
            raise DataError(f"dSprites factors: expected integer indices, got dtype {factors.dtype}")
        if len(factors) and ((factors < 0).any() or (factors >= self.factor_sizes).any()):
            raise DataError(f"dSprites factors out of range: each must lie in 0..size-1 of {self.factor_sizes}")
        return factors.astype(np.int64, copy=False)


def _inside(shape: int, u: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Whether points (u, w) of the sprite's own frame, in units of half the square side, are inside.

    ``u`` and ``w`` are scratch arrays and are overwritten.
    """
    if shape == 0:  # square
        np.abs(u, out=u)
        np.abs(w, out=w)
        return np.maximum(u, w, out=u) <= 1.0
    if shape == 1:  # ellipse with semi-axes 1 and 1/2
        u *= u
        w *= 2.0
        w *= w
        return (u + w) <= 1.0
    u *= HEART_WIDTH
    w *= HEART_WIDTH
    w += HEART_CENTRE
    u *= u  # x^2
    radius = u + w * w - 1.0
    w *= w * w  # y^3
    return radius * radius * radius <= u * w


def _draw(canvas: np.ndarray, factors: np.ndarray, window: int) -> None:
    """Draw each sprite into its (window x window) patch of the zeroed canvas (m, 64, 64)."""
    half = (HALF_SIDE * DSprites.scales[factors[:, 1]])[:, None]  # (m, 1)
    angle = DSprites.orientations[factors[:, 2]][:, None]
    low, high = POSITION_PIXELS
    centre_x = (low + (high - low) * DSprites.positions[factors[:, 3]])[:, None]
    centre_y = (low + (high - low) * DSprites.positions[factors[:, 4]])[:, None]
    origin_x = np.clip(np.round(centre_x - window / 2), 0, CANVAS - window).astype(np.int64)
    origin_y = np.clip(np.round(centre_y - window / 2), 0, CANVAS - window).astype(np.int64)
    pixels = np.arange(window) + 0.5  # pixel centres
    dx = (origin_x + pixels - centre_x) / half  # (m, window), rightwards
    up = (centre_y - origin_y - pixels) / half  # (m, window), upwards (rows grow downwards)
    cos, sin = np.cos(angle), np.sin(angle)
    # The sprite turned by +angle: a pixel's sprite-frame coordinates are it turned by -angle.
    u_x, u_y = (cos * dx).astype(np.float32), (sin * up).astype(np.float32)
    w_x, w_y = (-sin * dx).astype(np.float32), (cos * up).astype(np.float32)
    patches = np.lib.stride_tricks.sliding_window_view(
        canvas, (window, window), axis=(1, 2), writeable=True
    )  # (m, 65 - window, 65 - window, window, window), views into the canvas
    for shape in range(len(SHAPES)):
        rows = np.flatnonzero(factors[:, 0] == shape)
        if not len(rows):
            continue
        u = u_x[rows, None, :] + u_y[rows, :, None]  # (k, window, window)
        w = w_x[rows, None, :] + w_y[rows, :, None]
        inside = _inside(shape, u, w)
        patches[rows, origin_y[rows, 0], origin_x[rows, 0]] = inside.view(np.uint8)


def load_dsprites(config: DataConfig) -> Splits:
    """The full grid, or with ``max_samples`` only a seeded random part of it (see the source)."""
    sprites = DSprites()
    index = np.arange(len(sprites))
    if config.max_samples is not None:
        # Big enough that the training split keeps max_samples once prepare_data has taken the
        # test and validation fractions; each rounded split can cost one more sample.
        kept = (1.0 - config.test_fraction) * (1.0 - config.val_fraction)
        n = math.ceil(config.max_samples / kept) + 2
        if n < len(sprites):
            rng = np.random.default_rng([config.split_seed, len(sprites)])
            index = np.sort(rng.choice(len(sprites), size=n, replace=False))
    factors = sprites.index_to_factors(index)  # (N, 5)
    train = RawData(
        x=sprites.render(factors),
        y=factors[:, 0].copy(),
        kind="image",
        max_level=1.0,
        class_names=list(SHAPES),
        factors=factors,
        factor_names=list(DSprites.factor_names),
    )
    return Splits(train=train)


register_source(
    Source(
        name="dsprites",
        description=(
            "dSprites (Matthey et al. 2017), 737,280 binary 64x64 sprites over 5 known factors, "
            "drawn on the fly; labels are the shape; with data.max_samples only a "
            "seeded random part of the grid is drawn, and val/test are taken from that part"
        ),
        load=load_dsprites,
    )
)
