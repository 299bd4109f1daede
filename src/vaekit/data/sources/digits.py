"""scikit-learn's 8x8 handwritten digits: 1,797 images with 17 grey levels, the offline default."""

from __future__ import annotations

import numpy as np

from vaekit.data.sources.base import RawData, Source, Splits, register_source
from vaekit.sections import DataConfig


def load_digits(config: DataConfig) -> Splits:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = bunch.images.astype(np.uint8)[:, None, :, :]  # (N, 1, 8, 8), levels 0..16
    y = bunch.target.astype(np.int64)
    names = [str(int(t)) for t in bunch.target_names]
    return Splits(train=RawData(x=x, y=y, kind="image", max_level=16.0, class_names=names))


register_source(
    Source(
        name="digits",
        description="scikit-learn 8x8 digits, 1,797 images, 10 classes (bundled with scikit-learn)",
        load=load_digits,
    )
)
