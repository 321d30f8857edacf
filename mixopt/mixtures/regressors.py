"""Regressors from a mixture (a point on the simplex) to a held-out loss.

Every regressor has ``fit(X, y) -> self``, ``predict(X) -> np.ndarray`` and
``predict_std(X) -> np.ndarray | None`` (``None`` where the model has no uncertainty).
:func:`make_regressor` builds one by name:

========================  ====================================================================
``"linear"``              ridge regression on ``p`` (tiny penalty; the simplex makes ``p``
                          collinear with the intercept)
``"lightgbm"``            gradient-boosted trees with RegMix's settings, sized for few runs
``"mixing_law"``          ``c + exp(b + t . p)``, Huber-fitted (:mod:`mixopt.mixtures.mixing_law`)
``"mixing_law_sqrt"``     the same law on ``[p, sqrt(p)]``
``"gp"``                  ARD Matern-5/2 Gaussian process on ``sqrt(p)`` with log-warped
                          targets (:mod:`mixopt.mixtures.gp`)
``"auto"``                cross-validated choice or ensemble of the above
                          (:class:`mixopt.mixtures.auto.AutoRegressor`)
========================  ====================================================================

Pure numpy / scipy / scikit-learn / lightgbm: no deep-learning imports in this package.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
from sklearn.linear_model import Ridge

from mixopt.mixtures.gp import GPRegressor
from mixopt.mixtures.mixing_law import MixingLawRegressor


class Regressor(Protocol):
    """What every mixture regressor provides."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> "Regressor": ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def predict_std(self, X: np.ndarray) -> np.ndarray | None: ...


class LinearRegressor:
    """Ridge regression ``y ~ a + w . p`` with a tiny penalty (``alpha``)."""

    name = "linear"

    def __init__(self, alpha: float = 1e-4) -> None:
        self.alpha = alpha
        self.model_: Ridge | None = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> "LinearRegressor":
        """Least squares on the raw weights."""
        self.model_ = Ridge(alpha=self.alpha).fit(np.asarray(X, dtype=float), np.asarray(y, dtype=float))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted loss for each mixture."""
        if self.model_ is None:
            raise RuntimeError("LinearRegressor is not fitted")
        return self.model_.predict(np.asarray(X, dtype=float))

    def predict_std(self, X: np.ndarray) -> None:
        """No uncertainty: ``None``."""
        return None


class LightGBMRegressor:
    """LightGBM with RegMix's settings (gbdt, L2 objective, learning rate 0.01, 1000 rounds).

    The number of rounds is fixed (RegMix early-stopped on the data it then scored; we never do).
    ``min_child_samples`` is scaled to the number of runs, ``n // 10`` clipped to ``[2, 20]``, so
    that trees can split at all with a few dozen runs.
    """

    name = "lightgbm"

    def __init__(self, n_estimators: int = 1000, learning_rate: float = 0.01, num_leaves: int = 31,
                 seed: int = 0, n_jobs: int = 1) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.seed = seed
        self.n_jobs = n_jobs
        self.model_ = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> "LightGBMRegressor":
        """Fit a fixed number of boosting rounds on ``(X, y)``."""
        import lightgbm as lgb

        X = np.asarray(X, dtype=float)
        n = len(X)
        self.model_ = lgb.LGBMRegressor(
            objective="regression", boosting_type="gbdt", n_estimators=self.n_estimators,
            learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            min_child_samples=int(np.clip(n // 10, 2, 20)), min_data_in_bin=1,
            random_state=self.seed, n_jobs=self.n_jobs, verbose=-1,
        ).fit(X, np.asarray(y, dtype=float))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted loss for each mixture."""
        if self.model_ is None:
            raise RuntimeError("LightGBMRegressor is not fitted")
        return np.asarray(self.model_.predict(np.asarray(X, dtype=float)), dtype=float)

    def predict_std(self, X: np.ndarray) -> None:
        """No uncertainty: ``None``."""
        return None


def _auto(seed: int) -> Regressor:
    from mixopt.mixtures.auto import AutoRegressor

    return AutoRegressor(seed=seed)


_FACTORIES: dict[str, Callable[[int], Regressor]] = {
    "linear": lambda seed: LinearRegressor(),
    "lightgbm": lambda seed: LightGBMRegressor(seed=seed),
    "mixing_law": lambda seed: MixingLawRegressor(features="linear", seed=seed),
    "mixing_law_sqrt": lambda seed: MixingLawRegressor(features="linear+sqrt", seed=seed),
    "gp": lambda seed: GPRegressor(seed=seed),
    "auto": _auto,
}

REGRESSOR_NAMES: tuple[str, ...] = tuple(_FACTORIES)
"""Names accepted by :func:`make_regressor`."""


def make_regressor(name: str, seed: int = 0) -> Regressor:
    """A fresh, unfitted regressor by name (see the module docstring for the list)."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown regressor {name!r}; choose one of {list(_FACTORIES)}") from None
    return factory(seed)


def __getattr__(attr: str):  # AutoRegressor lives in auto.py (it needs cv.py, which needs us).
    if attr == "AutoRegressor":
        from mixopt.mixtures.auto import AutoRegressor

        return AutoRegressor
    raise AttributeError(attr)
