"""scikit-learn estimators over vaekit: a VAE as a transformer, an outlier detector, an imputer and a
synthesizer of tables.

They follow scikit-learn's contract (``__init__`` stores its arguments verbatim, ``fit`` validates
and trains, learned attributes end in ``_``, the same ``random_state`` gives the same model) and
work in ``Pipeline``, ``GridSearchCV`` and ``set_output(transform="pandas")``. Missing values (NaN)
are welcome in every one of them: the table model masks them (:mod:`vaekit.distributions.tabular`).
A pandas DataFrame (or an object array) with text or categorical columns is taken as it is: each
column gets its own likelihood (:func:`vaekit.data.columns.infer_columns`), so no one-hot encoder is
needed in front. Each fitted estimator holds its trained :class:`~vaekit.api.Run` as ``run_``.

Values handed back in the data's units (``VAEImputer.transform``, ``VAETransformer.inverse_transform``
and ``sample``) are values of each column's own kind, as ``vaekit impute`` writes them: the most
probable category of a binary or categorical column, a whole count, the mean of a continuous one.
``VAESynthesizer.sample`` draws each value instead, as ``vaekit synthesize`` does.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted as sklearn_check_is_fitted
from sklearn.utils.validation import validate_data as sklearn_validate_data
from torch import Tensor

from vaekit.data.sources import RawData
from vaekit.errors import ConfigError, DataError
from vaekit.sections import deep_merge

__all__ = ["NotFittedError", "VAEEstimator", "VAEImputer", "VAESynthesizer", "VAETransformer"]


class NotFittedError(ConfigError, SklearnNotFittedError):
    """An estimator used before ``fit``: scikit-learn's NotFittedError and one of vaekit's errors."""


def check_is_fitted(estimator, attributes: str) -> None:
    try:
        sklearn_check_is_fitted(estimator, attributes)
    except SklearnNotFittedError as error:
        raise NotFittedError(str(error)) from None


def validate_data(estimator, X, **options):
    """scikit-learn's checks of X, their ValueError as one DataError line (scikit-learn's own words)."""
    try:
        return sklearn_validate_data(estimator, X, **options)
    except ValueError as error:
        if isinstance(error, DataError):
            raise
        raise DataError(" ".join(str(error).split())) from None


def _whole(name: str, value, least: int = 1, most: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least or (
            most is not None and value > most):
        bound = f"from {least} to {most:,}" if most is not None else f"at least {least}"
        raise ConfigError(f"{name}={value!r}: expected a whole number {bound}")


class _VAE(BaseEstimator):
    """Shared parameters and training of the three estimators."""

    # Settings an estimator trains with beyond its parameters (config sections, merged over the
    # defaults): each subclass's are the ones its benchmark measured best, and its docstring says why.
    _settings: dict = {}

    def __init__(self, n_components: int = 8, *, hidden: tuple[int, ...] = (128, 128), preset: str = "vae",
                 beta: float = 1.0, max_epochs: int = 200, batch_size: int = 64, learning_rate: float = 1e-3,
                 k: int = 100, device: str = "cpu", random_state: int | None = None) -> None:
        self.n_components = n_components
        self.hidden = hidden
        self.preset = preset
        self.beta = beta
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.k = k
        self.device = device
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def _seed(self) -> int:
        return int(check_random_state(self.random_state).randint(0, 2**31 - 1))

    def _validate(self, X, reset: bool) -> np.ndarray:
        """Checked rows: float64 for an all-number table, an object array (text, numbers, None) for
        one with text columns (fitted as such: ``transform`` then takes the same kind of table)."""
        if reset:
            self._text_table = _has_text(X)
        if not getattr(self, "_text_table", False):
            return validate_data(self, X, ensure_all_finite="allow-nan", dtype=np.float64, reset=reset)
        validate_data(self, X, reset=reset, skip_check_array=True)  # feature names and count only
        if hasattr(X, "iloc"):
            from vaekit.data.sources.tabular import from_frame

            return from_frame(X).x.astype(object)
        X = np.asarray(X, dtype=object)
        if X.ndim != 2 or 0 in X.shape:
            raise DataError(f"expected a non-empty 2-D table, got shape {X.shape}")
        return X

    def _check_params(self) -> None:
        """Each parameter named in one ConfigError line when it cannot be used (scikit-learn checks in ``fit``)."""
        _whole("n_components", self.n_components)
        _whole("max_epochs", self.max_epochs, most=1_000_000)
        _whole("batch_size", self.batch_size)
        _whole("k", self.k)
        hidden = self.hidden if isinstance(self.hidden, list | tuple) else [self.hidden]
        for width in hidden:
            _whole("hidden", width, most=100_000)
        for name, least in (("learning_rate", "above 0"), ("beta", "at least 0")):
            value = getattr(self, name)
            usable = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
            if not usable or value < 0 or (value == 0 and least == "above 0"):
                raise ConfigError(f"{name}={value!r}: expected a finite number {least}")

    def _fit_vae(self, X, reset: bool = True) -> np.ndarray:
        import vaekit
        from vaekit.data.columns import is_missing

        self._check_params()
        X = self._validate(X, reset)
        names = [str(n) for n in getattr(self, "feature_names_in_", [])] or None
        X, names, labels = self._split_labels(X, names)
        fitted = X[self._training_rows(len(X))]  # every row, but the outlier detector's validation share
        missing = np.isnan(fitted) if X.dtype != object else np.vectorize(is_missing, otypes=[bool])(fitted)
        if missing.all(axis=0).any():
            empty = np.flatnonzero(missing.all(axis=0))
            named = [names[i] if names else f"column {i}" for i in empty]
            more = f" (and of {len(named) - 1} more columns)" if len(named) > 1 else ""
            raise DataError(f"every value of {named[0]!r} is missing{more}; nothing to learn it from: drop it "
                            "before fitting")
        model = {"latent_dim": int(self.n_components), "hidden": list(self.hidden), "beta": self.beta}
        if labels is not None:  # a conditional VAE with a Gaussian prior per class, as the cvae preset
            model.update(condition="label", prior="class_conditional")
        config = vaekit.resolve_config(preset=self.preset, values=deep_merge({
            "model": model,
            "train": {"epochs": int(self.max_epochs), "batch_size": int(self.batch_size),
                      "lr": float(self.learning_rate), "seed": self._seed(), "device": self.device,
                      "progress": False, "log_every": 1_000_000},
            "eval": {"enabled": False},
            "data": {"val_fraction": 0, "test_fraction": 0, "source": "array",
                     "column_types": self._column_types(X, names)},
        }, self._settings))
        y, class_names = labels if labels is not None else (None, None)
        with torch.random.fork_rng(devices=[]):
            self.run_ = vaekit.train(config, data=RawData(x=fitted, y=y, kind="table", class_names=class_names,
                                                          feature_names=names))
        # Inference runs in float64: a row's result must not move with the batch it is computed in
        # (scikit-learn checks subset invariance to 1e-7, finer than float32 matmuls keep).
        self._run64 = dataclasses.replace(self.run_, model=copy.deepcopy(self.run_.model).double().eval())
        return X

    def _split_labels(self, X: np.ndarray, names: list[str] | None):
        """(features, their names, (labels, class names) or None); only a synthesizer has a label column."""
        return X, names, None

    def _training_rows(self, n: int) -> slice | np.ndarray:
        """The rows the VAE is fitted on (the outlier detector keeps a validation share out)."""
        return slice(None)

    def _column_types(self, X: np.ndarray, names: list[str] | None) -> dict[str, str] | None:
        """Column kinds declared rather than inferred (``data.column_types``); None: all inferred."""
        return None

    def _check(self, X) -> tuple[Tensor, Tensor | None]:
        """Validated rows in the model's space, float64 on its device, and their classes (a
        conditional synthesizer's label column) or None."""
        check_is_fitted(self, "run_")
        X, _, labels = self._split_labels(self._validate(X, reset=False), None)
        condition = None if labels is None else torch.as_tensor(labels[0], device=self.run_.device)
        return self.run_.spec.transform(X).double().to(self.run_.device), condition

    def _table(self, values: Tensor) -> np.ndarray:
        """Model-space rows -> the data's units and kinds (float64, or objects for text columns)."""
        table = self.run_.spec.to_table(values.cpu())
        return table if table.dtype == object else table.astype(np.float64)

    def score_samples(self, X) -> np.ndarray:
        """log p(x) per sample, the importance-sampled estimate with ``k`` draws (higher = more
        typical); the missing values of a row are left out of its likelihood."""
        return self._log_likelihood(*self._check(X))

    def _log_likelihood(self, values: Tensor, condition: Tensor | None = None) -> np.ndarray:
        from vaekit.applications.anomaly import score_samples

        scores = score_samples(self._run64.model, values, "nll", self.k, seed=0, condition=condition)
        return -scores.numpy().astype(np.float64)


VAEEstimator = _VAE  # the shared base, public for the estimators' other modules (estimators/outlier.py)


class VAETransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _VAE):
    """A VAE as a dimensionality reduction: ``transform`` gives the posterior means (n_components
    wide), ``inverse_transform`` decodes codes, ``sample`` draws new rows, ``score_samples`` the
    log-likelihood of each row."""

    def fit(self, X, y=None):
        self._fit_vae(X)
        self._n_features_out = int(self.n_components)
        return self

    @torch.no_grad()
    def transform(self, X) -> np.ndarray:
        values, _ = self._check(X)
        model = self._run64.model
        means = [model.encode(values[i : i + 1024]).mean.cpu() for i in range(0, len(values), 1024)]
        return torch.cat(means).numpy()

    @torch.no_grad()
    def inverse_transform(self, X) -> np.ndarray:
        check_is_fitted(self, "run_")
        codes = np.asarray(X, dtype=np.float64)
        if codes.ndim != 2 or codes.shape[1] != self.n_components:
            raise DataError(f"expected codes of shape (n_samples, {self.n_components}), got {codes.shape}")
        return self._table(self._run64.model.decode(torch.from_numpy(codes).to(self.run_.device)).mean)

    def score(self, X, y=None) -> float:
        """The mean log-likelihood of the rows (higher is better), for model selection."""
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples: int = 1, random_state: int | None = None) -> np.ndarray:
        check_is_fitted(self, "run_")
        _whole("n_samples", n_samples)
        seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
        generator = torch.Generator(device=self.run_.device).manual_seed(seed)
        return self._table(self.run_.model.sample(int(n_samples), generator=generator).mean)


class VAEImputer(TransformerMixin, _VAE):
    """Fills missing values (NaN) with the VAE: ``method`` "importance" (MIWAE, Mattei & Frellsen
    2019) or "pseudo-gibbs"; observed values are kept. Columns with no value at fit time are refused.
    Trained with the importance-weighted bound (``preset="iwae"``: the MIWAE bound on rows with holes),
    which imputed better than the ELBO in bench/impute.py (breast cancer, 50% missing: RMSE 0.551 vs
    0.583, two seeds). Wider (256 units) and longer (300 epochs) than the other estimators: why in
    :mod:`vaekit.applications.impute`. Continuous columns are standardised, not quantile-transformed:
    the conditional mean of a standardised column is what RMSE rewards (wine, seed 0, 100 epochs,
    MLP 128-128: RMSE 0.752 vs 0.799 at 20% MCAR, 1.004 vs 1.104 at 50% MNAR). The learning rate
    decays to 0 on a cosine over the epochs: on the 8 settings of bench/peers_impute.py (seed 0) it
    lowered the RMSE in 6 (wine 50% MCAR 0.818 -> 0.794) and raised it in one (breast cancer 20%
    MCAR 0.452 -> 0.462).
    """

    _settings = {"data": {"continuous_transform": "standardize"}, "train": {"schedule": "cosine"}}

    def __init__(self, n_components: int = 8, *, method: str = "importance", hidden: tuple[int, ...] = (256, 256),
                 preset: str = "iwae", beta: float = 1.0, max_epochs: int = 300, batch_size: int = 64,
                 learning_rate: float = 1e-3, k: int = 100, device: str = "cpu",
                 random_state: int | None = None) -> None:
        super().__init__(n_components, hidden=hidden, preset=preset, beta=beta, max_epochs=max_epochs,
                         batch_size=batch_size, learning_rate=learning_rate, k=k, device=device,
                         random_state=random_state)
        self.method = method

    def fit(self, X, y=None):
        from vaekit.applications.impute import METHODS

        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}, got {self.method!r}")
        self._fit_vae(X)
        return self

    def transform(self, X) -> np.ndarray:
        from sklearn.utils._set_output import _get_output_config

        from vaekit.applications.impute import impute

        check_is_fitted(self, "run_")
        table = impute(self._run64, self._validate(X, reset=False), self.method, k=self.k, seed=0)  # observed as given
        if _get_output_config("transform", self)["dense"] == "pandas":
            return self._frame(table, X)
        return table

    def _frame(self, table: np.ndarray, X):
        """A completed table as a DataFrame of typed columns: numbers as float64 (or the input's
        integer dtype where every value is whole), text as objects. scikit-learn would make one
        frame of the object array that a table with text is, every column ``object``."""
        import pandas as pd

        from vaekit.data.columns import is_numeric

        given = dict(zip(self.feature_names_in_, X.dtypes, strict=True)) if hasattr(X, "dtypes") else {}
        frame = {}
        for j, column in enumerate(self.run_.spec.columns):
            name = self.feature_names_in_[j] if hasattr(self, "feature_names_in_") else j
            values = table[:, j]
            if is_numeric(column):
                values = values.astype(np.float64)
                dtype = given.get(name)
                if dtype is not None and dtype.kind in "iu" and np.all(np.mod(values, 1) == 0):
                    values = values.astype(dtype)
            frame[name] = values
        return pd.DataFrame(frame, index=X.index if hasattr(X, "index") else None)

    def get_feature_names_out(self, input_features=None):
        from sklearn.utils.validation import _check_feature_names_in

        check_is_fitted(self, "run_")
        return _check_feature_names_in(self, input_features)


class VAESynthesizer(_VAE):
    """Synthetic copies of a table: ``fit`` on a table (a DataFrame or an array; text columns and
    holes welcome), ``sample`` new rows with the same columns, in their order and kinds: categories by
    name, whole numbers as integers, numbers within their training range, and each column as often
    empty as in training (:func:`vaekit.applications.synthesize.synthesize`, what ``vaekit
    synthesize`` writes). Fitted on a DataFrame, ``sample`` gives a DataFrame of the same dtypes.

    ``label_column`` (a column name, or an index for an array) makes it conditional: a VAE given each
    row's class (a Gaussian prior per class, as the cvae preset), whose ``sample`` draws the classes
    in their training shares or, with ``label``, gives rows of one class. ``score_samples`` is log
    p(x) of each row (given its class), as :class:`VAETransformer`'s."""

    def __init__(self, n_components: int = 8, *, label_column: str | int | None = None,
                 hidden: tuple[int, ...] = (128, 128), preset: str = "vae", beta: float = 1.0, max_epochs: int = 200,
                 batch_size: int = 64, learning_rate: float = 1e-3, k: int = 100, device: str = "cpu",
                 random_state: int | None = None) -> None:
        super().__init__(n_components, hidden=hidden, preset=preset, beta=beta, max_epochs=max_epochs,
                         batch_size=batch_size, learning_rate=learning_rate, k=k, device=device,
                         random_state=random_state)
        self.label_column = label_column

    def fit(self, X, y=None):
        self._label_at, self._classes = None, None
        self._dtypes = list(X.dtypes) if hasattr(X, "dtypes") and hasattr(X, "iloc") else None
        self._fit_vae(X)
        return self

    def _split_labels(self, X: np.ndarray, names: list[str] | None):
        """The label column taken out of X: its position is kept, its values become classes (at
        ``fit``) or are coded by the fitted classes (afterwards)."""
        if self.label_column is None:
            return X, names, None
        from vaekit.applications.synthesize import class_codes, column_position

        if self._label_at is None:  # fitting
            self._label_at = column_position(self.label_column, names, X.shape[1], "label_column")
        at = self._label_at
        y, self._classes = class_codes(X[:, at], self._classes, f"label_column={self.label_column!r}")
        features = np.delete(X, at, axis=1)
        return features, None if names is None else names[:at] + names[at + 1 :], (y, self._classes)

    def sample(self, n_samples: int = 1, *, random_state: int | None = None, label: str | int | None = None,
               clip: bool = True, missing: bool = True):
        """``n_samples`` synthetic rows, seeded by ``random_state``: rows of class ``label`` (a value
        of the label column) when given; ``clip`` keeps numbers within their training range, and
        ``missing`` empties each column as often as in training (False: every value filled)."""
        from vaekit.applications.synthesize import numbers, synthesize
        from vaekit.data.columns import category_name

        check_is_fitted(self, "run_")
        _whole("n_samples", n_samples)
        if label is not None and self._classes is not None and category_name(label) in self._classes:
            label = category_name(label)  # a value of the column, before an index
        seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
        table = synthesize(self.run_, int(n_samples), seed=seed, label=label, clip=clip, missing=missing)
        if self._label_at is not None:
            table = table.last_to(self._label_at)
        if self._dtypes is not None:
            return table.to_frame(list(self.feature_names_in_), self._dtypes)
        return table.rows if "text" in table.types else numbers(table)


def _has_text(X) -> bool:
    """Whether a table has columns that are not numbers: a DataFrame's text, categorical or object
    columns, or an object array whose values are not all numbers (a value that is neither, like a
    dict, is left to scikit-learn's own error)."""
    if hasattr(X, "dtypes") and hasattr(X, "iloc"):
        return any(getattr(dtype, "kind", "O") not in "biuf" for dtype in X.dtypes)
    array = np.asarray(X) if not hasattr(X, "toarray") else None
    if array is None or array.dtype.kind not in "OUS":
        return False
    try:
        array.astype(np.float64)
    except ValueError:
        return True
    except TypeError:
        return False
    return False
