"""K-fold cross-validation of mixture regressors, scored by rank correlation.

What matters when choosing a mixture is the *ranking* of candidate mixtures, so regressors are
compared by the Spearman correlation of their out-of-fold (OOF) predictions with the observed
losses (Kendall's tau, R^2 and RMSE are reported too).  Everything here sees only the rows it is
given: folds are ``KFold(shuffle=True, random_state=seed)`` over those rows.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence, Union

import numpy as np
from scipy.stats import kendalltau, spearmanr
from sklearn.model_selection import KFold

Factory = Callable[[], object]
NameOrFactory = Union[str, Factory]


@dataclass
class CVReport:
    """Cross-validation result of one regressor on one data set.

    Metrics are NaN when undefined (constant targets or constant predictions).
    """

    name: str
    spearman: float
    kendall: float
    r2: float
    rmse: float
    oof_pred: np.ndarray = field(repr=False)
    n: int

    def sort_key(self) -> tuple[float, float]:
        """Key for "best first" ordering: higher Spearman, ties broken by higher R^2 (NaN last)."""
        s = self.spearman if np.isfinite(self.spearman) else -np.inf
        r = self.r2 if np.isfinite(self.r2) else -np.inf
        return (s, r)


def _resolve(name_or_factory: NameOrFactory, seed: int) -> tuple[str, Factory]:
    """Turn a registered name or a zero-argument factory into ``(label, factory)``."""
    if isinstance(name_or_factory, str):
        from mixopt.mixtures.regressors import make_regressor

        name = name_or_factory
        make_regressor(name, seed)  # fail early on an unknown name
        return name, lambda: make_regressor(name, seed)
    if not callable(name_or_factory):
        raise TypeError("expected a regressor name or a zero-argument factory")
    label = getattr(name_or_factory, "__name__", None) or type(name_or_factory).__name__
    return label, name_or_factory


def _check_xy(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be (n, k) with n == len(y); got X {X.shape}, y {y.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("X and y must be finite")
    return X, y


def rank_metrics(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Spearman, Kendall, R^2 and RMSE of predictions against targets (NaN where undefined)."""
    pred = np.asarray(pred, dtype=float)
    y = np.asarray(y, dtype=float)
    nan = float("nan")
    rmse = float(np.sqrt(np.mean((pred - y) ** 2))) if len(y) else nan
    if len(y) < 2 or np.ptp(y) == 0:
        return {"spearman": nan, "kendall": nan, "r2": nan, "rmse": rmse}
    r2 = float(1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))
    if np.ptp(pred) == 0:
        return {"spearman": nan, "kendall": nan, "r2": r2, "rmse": rmse}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = float(spearmanr(pred, y)[0])
        tau = float(kendalltau(pred, y)[0])
    return {"spearman": rho, "kendall": tau, "r2": r2, "rmse": rmse}


def oof_predictions(factory: Factory, X: np.ndarray, y: np.ndarray, folds: int = 5,
                    seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions: each row predicted by a model fitted on the other folds only.

    ``folds`` is capped at ``n``.  Raises ``ValueError`` when there are fewer than 2 rows.
    """
    X, y = _check_xy(X, y)
    n = len(y)
    if n < 2:
        raise ValueError(f"cross-validation needs at least 2 rows, got {n}")
    k = int(min(max(2, folds), n))
    oof = np.full(n, np.nan)
    for train, test in KFold(n_splits=k, shuffle=True, random_state=seed).split(X):
        model = factory()
        model.fit(X[train], y[train])
        oof[test] = model.predict(X[test])
    return oof


def cross_validate(name_or_factory: NameOrFactory, X: np.ndarray, y: np.ndarray, folds: int = 5,
                   seed: int = 0) -> CVReport:
    """K-fold CV of one regressor (a registered name or a zero-argument factory) on ``(X, y)``.

    Returns a :class:`CVReport` whose ``oof_pred`` is aligned with the rows given.  With fewer
    than 4 rows or constant ``y`` the rank metrics are NaN (predictions are still computed when
    there are at least 2 rows); fewer than 2 rows is a ``ValueError``.
    """
    name, factory = _resolve(name_or_factory, seed)
    X, y = _check_xy(X, y)
    oof = oof_predictions(factory, X, y, folds=folds, seed=seed)
    metrics = rank_metrics(oof, y)
    if len(y) < 4:
        metrics = {key: float("nan") for key in metrics} | {"rmse": metrics["rmse"]}
    return CVReport(name=name, oof_pred=oof, n=len(y), **metrics)


def choose_regressor(candidates: Sequence[NameOrFactory], X: np.ndarray, y: np.ndarray,
                     folds: int = 5, seed: int = 0) -> tuple[str, list[CVReport]]:
    """Cross-validate every candidate and return the best name (highest Spearman, ties -> R^2).

    The reports come back best first.  When no candidate has a finite Spearman (constant ``y``,
    fewer than 4 rows) the first candidate is returned.
    """
    if not candidates:
        raise ValueError("no candidate regressors given")
    reports = [cross_validate(c, X, y, folds=folds, seed=seed) for c in candidates]
    order = sorted(range(len(reports)), key=lambda i: reports[i].sort_key(), reverse=True)
    ranked = [reports[i] for i in order]
    if not any(np.isfinite(r.spearman) for r in reports):
        return reports[0].name, ranked
    return ranked[0].name, ranked
