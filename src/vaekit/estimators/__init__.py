"""scikit-learn estimators over vaekit: a VAE as a transformer, an outlier detector, an imputer and a
synthesizer of tables (:mod:`vaekit.estimators.base`: their shared contract; the outlier detector in
:mod:`vaekit.estimators.outlier`)."""

from vaekit.estimators.base import NotFittedError, VAEImputer, VAESynthesizer, VAETransformer
from vaekit.estimators.outlier import VAEOutlierDetector

__all__ = ["NotFittedError", "VAEImputer", "VAEOutlierDetector", "VAESynthesizer", "VAETransformer"]
