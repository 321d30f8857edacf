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
``"gp_multi_fidelity"``   a GP over mixture and proxy size, given the cheaper proxies too
                          (:mod:`mixopt.mixtures.multifidelity`; needs ``low_fidelity``)
``"auto"``                cross-validated choice or ensemble of the above
                          (:class:`mixopt.mixtures.auto.AutoRegressor`)
========================  ====================================================================

Each regressor registers itself next to its class (``@register_regressor(name, ...)``, see
:mod:`mixopt.mixtures.registry`); adding one is that decorator on a new class, plus its module in the
registry's catalogue when it lives in a new module.  ``default_candidate=True`` puts it among
``auto``'s default candidates (and the config's default ``regressor.candidates``); a regressor that
needs more than ``(X, y)`` declares it (``needs=("low_fidelity",)``) and the fit step provides it.

Pure numpy / scipy / scikit-learn / lightgbm: no deep-learning imports in this package.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from sklearn.linear_model import Ridge

from mixopt.mixtures.registry import (
    REGRESSORS,
    candidate_regressors,
    default_candidates,
    make_regressor,
    plain_regressors,
    register_regressor,
)

__all__ = ["REGRESSORS", "REGRESSOR_NAMES", "LightGBMRegressor", "LinearRegressor", "Regressor",
           "candidate_regressors", "default_candidates", "make_regressor", "register_regressor"]


class Regressor(Protocol):
    """What every mixture regressor provides."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> "Regressor": ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def predict_std(self, X: np.ndarray) -> np.ndarray | None: ...


@register_regressor("linear", default_candidate=True)
class LinearRegressor:
    """Ridge regression ``y ~ a + w . p`` with a tiny penalty (``alpha``)."""

    name = "linear"

    def __init__(self, alpha: float = 1e-4, seed: int = 0) -> None:
        self.alpha = alpha
        self.seed = seed  # unused: the fit is deterministic
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


@register_regressor("lightgbm", default_candidate=True)
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


REGRESSOR_NAMES: tuple[str, ...] = tuple(plain_regressors())
"""Names :func:`make_regressor` builds from a seed alone (every registered one but those that need
more than ``(X, y)``), in catalogue order."""
