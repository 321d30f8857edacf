"""K-fold cross-validation of mixture regressors, scored by rank correlation.

What matters when choosing a mixture is the *ranking* of candidate mixtures, so regressors are
compared by the Spearman correlation of their out-of-fold (OOF) predictions with the observed
losses (Kendall's tau, R^2 and RMSE are reported too).  Everything here sees only the rows it is
given.

With 12-24 rows one k-fold split is a coin toss: the score moves a lot with the shuffle.  So the
CV is *repeated*: ``repeats`` shuffles of k folds (:func:`fold_splits`), each scored on its own;
the reported metrics are the means over the repeats, their standard deviations across repeats
are reported next to them (``spearman_sd``, ...), and the OOF predictions are averaged over the
repeats.  The folds depend only on the number of rows (in the order given: nothing is sorted) and
on ``seed``; ``repeats=1`` is the former single ``KFold(shuffle=True, random_state=seed)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence, Union

import numpy as np
from scipy.stats import kendalltau, spearmanr
from sklearn.model_selection import KFold

from mixopt.mixtures.registry import make_regressor

DEFAULT_REPEATS = 5
"""Shuffles of k folds unless told otherwise (``repeats=1``: a single k-fold split)."""

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
    """Out-of-fold predictions aligned with the rows, averaged over the repeats."""
    n: int
    spearman_sd: float = float("nan")
    """Standard deviation across repeats (ddof=1) of each metric; NaN with a single repeat."""
    kendall_sd: float = float("nan")
    r2_sd: float = float("nan")
    rmse_sd: float = float("nan")
    repeats: int = 1
    """Number of k-fold shuffles the metrics are averaged over."""

    def sort_key(self) -> tuple[float, float]:
        """Key for "best first" ordering: higher Spearman, ties broken by higher R^2 (NaN last)."""
        s = self.spearman if np.isfinite(self.spearman) else -np.inf
        r = self.r2 if np.isfinite(self.r2) else -np.inf
        return (s, r)


def _resolve(name_or_factory: NameOrFactory, seed: int) -> tuple[str, Factory]:
    """Turn a registered name or a zero-argument factory into ``(label, factory)``."""
    if isinstance(name_or_factory, str):
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


def _repeat_state(seed: int, r: int) -> int:
    """The shuffle seed of repeat ``r``: ``seed`` itself for the first, then one derived from both."""
    if r == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed) % 2**63, r]).generate_state(1)[0])


def fold_splits(n: int, folds: int = 5, seed: int = 0,
                repeats: int = DEFAULT_REPEATS) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """``repeats`` lists of ``(train, test)`` row indices, each a shuffled k-fold split of ``range(n)``.

    ``folds`` is capped at ``n`` (and raised to 2).  Only ``n``, ``folds``, ``seed`` and the repeat
    index decide the folds.  Raises ``ValueError`` when there are fewer than 2 rows.
    """
    if n < 2:
        raise ValueError(f"cross-validation needs at least 2 rows, got {n}")
    k = int(min(max(2, folds), n))
    rows = np.arange(n)
    return [list(KFold(n_splits=k, shuffle=True, random_state=_repeat_state(seed, r)).split(rows))
            for r in range(max(1, int(repeats)))]


def oof_repeats(factory: Factory, X: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0,
                repeats: int = DEFAULT_REPEATS) -> np.ndarray:
    """Out-of-fold predictions of every repeat, shape ``(repeats, n)`` (see :func:`fold_splits`).

    In each repeat every row is predicted by a model fitted on the other folds only.
    """
    X, y = _check_xy(X, y)
    splits = fold_splits(len(y), folds, seed, repeats)
    oof = np.full((len(splits), len(y)), np.nan)
    for r, split in enumerate(splits):
        for train, test in split:
            model = factory()
            model.fit(X[train], y[train])
            oof[r, test] = np.asarray(model.predict(X[test]), dtype=float).ravel()
    return oof


def oof_predictions(factory: Factory, X: np.ndarray, y: np.ndarray, folds: int = 5,
                    seed: int = 0, repeats: int = DEFAULT_REPEATS) -> np.ndarray:
    """Out-of-fold predictions averaged over ``repeats`` shuffles of k folds.

    ``folds`` is capped at ``n``.  Raises ``ValueError`` when there are fewer than 2 rows.
    """
    return oof_repeats(factory, X, y, folds=folds, seed=seed, repeats=repeats).mean(axis=0)


def report_from_repeats(name: str, oof: np.ndarray, y: np.ndarray) -> CVReport:
    """A :class:`CVReport` from per-repeat OOF predictions ``(repeats, n)``: metric means and sds.

    Each repeat is scored on its own; a metric undefined in any repeat (constant predictions) is
    NaN.  With fewer than 4 rows the rank metrics and R^2 are NaN (only RMSE is kept).
    """
    oof = np.atleast_2d(np.asarray(oof, dtype=float))
    y = np.asarray(y, dtype=float).ravel()
    per = [rank_metrics(row, y) for row in oof]
    keys = ("spearman", "kendall", "r2", "rmse")
    values = {key: np.array([m[key] for m in per]) for key in keys}
    if len(y) < 4:
        values |= {key: np.full(len(per), np.nan) for key in ("spearman", "kendall", "r2")}
    mean = {key: float(np.mean(v)) for key, v in values.items()}
    sd = {f"{key}_sd": float(np.std(v, ddof=1)) if len(v) > 1 else float("nan") for key, v in values.items()}
    return CVReport(name=name, oof_pred=oof.mean(axis=0), n=len(y), repeats=len(oof), **mean, **sd)


def cross_validate(name_or_factory: NameOrFactory, X: np.ndarray, y: np.ndarray, folds: int = 5,
                   seed: int = 0, repeats: int = DEFAULT_REPEATS) -> CVReport:
    """Repeated K-fold CV of one regressor (a registered name or a zero-argument factory) on ``(X, y)``.

    Returns a :class:`CVReport` of metric means and sds over ``repeats`` shuffles, whose
    ``oof_pred`` (averaged over the repeats) is aligned with the rows given.  With fewer than 4
    rows or constant ``y`` the rank metrics are NaN (predictions are still computed when there are
    at least 2 rows); fewer than 2 rows is a ``ValueError``.
    """
    name, factory = _resolve(name_or_factory, seed)
    X, y = _check_xy(X, y)
    return report_from_repeats(name, oof_repeats(factory, X, y, folds=folds, seed=seed, repeats=repeats), y)


def choose_regressor(candidates: Sequence[NameOrFactory], X: np.ndarray, y: np.ndarray,
                     folds: int = 5, seed: int = 0,
                     repeats: int = DEFAULT_REPEATS) -> tuple[str, list[CVReport]]:
    """Cross-validate every candidate and return the best name (highest Spearman, ties -> R^2).

    The reports come back best first.  When no candidate has a finite Spearman (constant ``y``,
    fewer than 4 rows) the first candidate is returned.
    """
    if not candidates:
        raise ValueError("no candidate regressors given")
    reports = [cross_validate(c, X, y, folds=folds, seed=seed, repeats=repeats) for c in candidates]
    order = sorted(range(len(reports)), key=lambda i: reports[i].sort_key(), reverse=True)
    ranked = [reports[i] for i in order]
    if not any(np.isfinite(r.spearman) for r in reports):
        return reports[0].name, ranked
    return ranked[0].name, ranked
