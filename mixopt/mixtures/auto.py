"""AutoRegressor: pick or ensemble mixture regressors by cross-validation on the fit data.

``fit(X, y)`` computes out-of-fold (OOF) predictions of every candidate on ``(X, y)`` only
(``repeats`` shuffles of K folds, :func:`mixopt.mixtures.cv.fold_splits`, seeded from ``seed``), then

1. scores each candidate by OOF Spearman (mean over repeats; ties -> R^2);
2. builds an ensemble by Caruana et al.'s (2004) ensemble selection: start from the equal average
   of the ``init_size`` best candidates ("sorted initialisation", which curbs over-fitting of
   the greedy search), then repeatedly add, with replacement, the candidate that most raises
   the OOF Spearman of the averaged predictions, stopping when nothing helps or after
   ``max_steps`` members;
3. keeps the ensemble only if its OOF Spearman is at least the best single candidate's plus
   ``min_gain``, otherwise the best single candidate;
4. refits the chosen member(s) on all of ``(X, y)``.

Nothing outside ``(X, y)`` is ever seen, so the choice is the same whatever else exists in the
process.  With fewer than 4 rows, or when no candidate has a finite CV score (e.g. constant
``y``), it uses ``fallback`` without cross-validating.

The candidates are registered regressors (:mod:`mixopt.mixtures.registry`); by default those
registered with ``default_candidate=True``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mixopt.mixtures.cv import DEFAULT_REPEATS, CVReport, oof_repeats, rank_metrics, report_from_repeats
from mixopt.mixtures.registry import REGRESSORS, default_candidates, make_regressor, register_regressor


@register_regressor("auto", candidate=False, summary="cross-validated choice or ensemble of the candidates")
class AutoRegressor:
    """Cross-validated choice or ensemble among named candidate regressors.

    Parameters
    ----------
    candidates:
        Registered regressor names (see :func:`mixopt.mixtures.registry.make_regressor`); ``None``:
        the registered default candidates.
    folds:
        Number of CV folds (capped at the number of rows).
    seed:
        Seed for the folds and for every candidate.
    repeats:
        Number of K-fold repetitions (different shuffles) whose scores are averaged (the
        folds of repeat ``r`` are those of :func:`mixopt.mixtures.cv.fold_splits`).
    ensemble:
        Whether to consider an ensemble at all (``False``: best single candidate).
    init_size:
        Number of best candidates the ensemble search starts from.
    max_steps:
        Maximum number of members (with repetition) in the ensemble.
    min_gain:
        OOF-Spearman margin the ensemble needs over the best single candidate.
    fallback:
        Candidate used without CV when there are fewer than 4 rows or no finite CV score.
    """

    name = "auto"

    def __init__(self, candidates: Sequence[str] | None = None, folds: int = 5, seed: int = 0,
                 repeats: int = DEFAULT_REPEATS, ensemble: bool = True, init_size: int = 2, max_steps: int = 8,
                 min_gain: float = 0.0, fallback: str = "gp") -> None:
        candidates = default_candidates() if candidates is None else candidates
        if not candidates:
            raise ValueError("AutoRegressor needs at least one candidate")
        if "auto" in candidates:
            raise ValueError("'auto' cannot be its own candidate")
        for c in [*candidates, fallback]:
            if not REGRESSORS.get(c).candidate:  # validates the name early, too
                raise ValueError(f"regressor {c!r} cannot be an auto candidate (it needs more than (X, y))")
        self.candidates = tuple(candidates)
        self.folds = folds
        self.seed = seed
        self.repeats = max(1, int(repeats))
        self.ensemble = ensemble
        self.init_size = max(1, int(init_size))
        self.max_steps = max(1, int(max_steps))
        self.min_gain = min_gain
        self.fallback = fallback
        self.reports_: list[CVReport] = []
        self.weights_: dict[str, float] = {}
        self.members_: dict[str, object] = {}
        self.cv_score_: float = float("nan")

    # -- selection -------------------------------------------------------------------------
    @staticmethod
    def _score(oof: dict[str, list[np.ndarray]], counts: dict[str, int], y: np.ndarray) -> tuple:
        """(mean OOF Spearman, -mean RMSE) of the count-weighted average; NaN -> -inf."""
        total = sum(counts.values())
        rho, rmse = [], []
        for r in range(len(next(iter(oof.values())))):
            pred = sum(c * oof[name][r] for name, c in counts.items()) / total
            m = rank_metrics(pred, y)
            rho.append(m["spearman"] if np.isfinite(m["spearman"]) else -np.inf)
            rmse.append(m["rmse"])
        return float(np.mean(rho)), -float(np.mean(rmse))

    def _select(self, oof: dict[str, list[np.ndarray]], y: np.ndarray) -> dict[str, float]:
        """Sorted-initialisation greedy ensemble selection, or the best single candidate."""
        single = {name: self._score(oof, {name: 1}, y) for name in oof}
        ranked = sorted(single, key=single.__getitem__, reverse=True)
        best = ranked[0]
        if not self.ensemble or len(ranked) == 1:
            return {best: 1.0}
        counts = {name: 1 for name in ranked[: self.init_size] if np.isfinite(single[name][0])}
        score = self._score(oof, counts, y)
        while sum(counts.values()) < self.max_steps:
            trials = {name: self._score(oof, {**counts, name: counts.get(name, 0) + 1}, y)
                      for name in oof}
            pick = max(trials, key=trials.__getitem__)
            if trials[pick] <= score:
                break
            counts[pick] = counts.get(pick, 0) + 1
            score = trials[pick]
        if len(counts) < 2 or score[0] < single[best][0] + self.min_gain:
            self.cv_score_ = single[best][0]
            return {best: 1.0}
        self.cv_score_ = score[0]
        total = sum(counts.values())
        return {name: c / total for name, c in counts.items()}

    def fit(self, X: np.ndarray, y: np.ndarray) -> "AutoRegressor":
        """Choose by CV on ``(X, y)``, then refit the chosen member(s) on all of it."""
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float).ravel()
        self.reports_ = []
        self.cv_score_ = float("nan")
        weights: dict[str, float] = {self.fallback: 1.0}
        if len(y) >= 4 and np.ptp(y) > 0:
            oof: dict[str, list[np.ndarray]] = {}
            for name in self.candidates:
                runs = oof_repeats(lambda n=name: make_regressor(n, self.seed), X, y,
                                   folds=self.folds, seed=self.seed, repeats=self.repeats)
                oof[name] = list(runs)
                self.reports_.append(report_from_repeats(name, runs, y))
            self.reports_.sort(key=lambda rep: rep.sort_key(), reverse=True)
            if any(np.isfinite(rep.spearman) for rep in self.reports_):
                weights = self._select(oof, y)
        self.weights_ = weights
        self.members_ = {name: make_regressor(name, self.seed).fit(X, y) for name in weights}
        return self

    # -- prediction ------------------------------------------------------------------------
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Weighted average of the chosen members' predictions."""
        if not self.members_:
            raise RuntimeError("AutoRegressor is not fitted")
        X = np.asarray(X, dtype=float)
        return np.asarray(sum(w * self.members_[n].predict(X) for n, w in self.weights_.items()))

    def predict_std(self, X: np.ndarray) -> np.ndarray | None:
        """Weighted sum of the members' std (a conservative bound), or ``None`` if any has none."""
        if not self.members_:
            raise RuntimeError("AutoRegressor is not fitted")
        total = 0.0
        for name, w in self.weights_.items():
            std = self.members_[name].predict_std(X)
            if std is None:
                return None
            total = total + w * std
        return np.asarray(total)

    @property
    def choice_(self) -> str:
        """Readable description of the choice, e.g. ``"gp"`` or ``"0.50 gp + 0.50 mixing_law"``."""
        if len(self.weights_) == 1:
            return next(iter(self.weights_))
        return " + ".join(f"{w:.2f} {n}" for n, w in sorted(self.weights_.items(), key=lambda t: -t[1]))
