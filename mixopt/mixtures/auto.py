"""AutoRegressor: pick (or ensemble) mixture regressors by cross-validation on the fit data.

``fit(X, y)`` computes K-fold out-of-fold predictions of every candidate on ``(X, y)`` only, then

1. ranks the candidates by OOF Spearman (ties -> R^2);
2. greedily builds an equal-step weighted average (Caruana et al., 2004: forward selection with
   replacement) that maximises the OOF Spearman of the averaged predictions;
3. keeps the ensemble only if it beats the best single candidate by at least ``min_gain``;
4. refits the chosen member(s) on all of ``(X, y)``.

Nothing outside ``(X, y)`` is ever seen, so the choice is the same whatever else exists in the
process.  With fewer than 4 rows, or when no candidate has a finite CV score (e.g. constant
``y``), it falls back to ``fallback`` without cross-validating.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mixopt.mixtures.cv import CVReport, oof_predictions, rank_metrics

DEFAULT_CANDIDATES: tuple[str, ...] = ("linear", "lightgbm", "mixing_law", "mixing_law_sqrt", "gp")


class AutoRegressor:
    """Cross-validated choice or greedy ensemble among named candidates.

    Parameters
    ----------
    candidates:
        Registered regressor names (see :func:`mixopt.mixtures.regressors.make_regressor`).
    folds:
        Number of CV folds (capped at the number of rows).
    seed:
        Seed for the folds and for every candidate.
    ensemble:
        Whether to try a greedy weighted average of candidates.
    min_gain:
        Minimum OOF-Spearman improvement over the best single candidate for the ensemble to be
        used instead.
    max_steps:
        Number of greedy steps (each adds weight ``1/steps`` to one candidate).
    fallback:
        Candidate used without CV when there are fewer than 4 rows or no finite CV score.
    """

    name = "auto"

    def __init__(self, candidates: Sequence[str] = DEFAULT_CANDIDATES, folds: int = 5, seed: int = 0,
                 ensemble: bool = True, min_gain: float = 1e-3, max_steps: int = 8,
                 fallback: str = "gp") -> None:
        from mixopt.mixtures.regressors import make_regressor

        if not candidates:
            raise ValueError("AutoRegressor needs at least one candidate")
        for c in [*candidates, fallback]:
            make_regressor(c)  # validate names early
        if "auto" in candidates:
            raise ValueError("'auto' cannot be its own candidate")
        self.candidates = tuple(candidates)
        self.folds = folds
        self.seed = seed
        self.ensemble = ensemble
        self.min_gain = min_gain
        self.max_steps = max(1, int(max_steps))
        self.fallback = fallback
        self.reports_: list[CVReport] = []
        self.weights_: dict[str, float] = {}
        self.members_: dict[str, object] = {}

    # -- selection -------------------------------------------------------------------------
    def _greedy(self, oof: dict[str, np.ndarray], y: np.ndarray) -> tuple[dict[str, float], float]:
        """Forward selection with replacement on the OOF Spearman of the running average."""
        counts = {name: 0 for name in oof}
        total = np.zeros(len(y))
        best_score = -np.inf
        for step in range(1, self.max_steps + 1):
            trial = []
            for name, pred in oof.items():
                m = rank_metrics((total + pred) / step, y)
                s = m["spearman"] if np.isfinite(m["spearman"]) else -np.inf
                r = -m["rmse"] if np.isfinite(m["rmse"]) else -np.inf
                trial.append((s, r, name))
            s, _, name = max(trial, key=lambda t: (t[0], t[1]))
            if step > 1 and s <= best_score:
                break
            best_score = s
            counts[name] += 1
            total += oof[name]
        used = sum(counts.values())
        return {k: v / used for k, v in counts.items() if v}, best_score

    def fit(self, X: np.ndarray, y: np.ndarray) -> "AutoRegressor":
        """Choose by CV on ``(X, y)``, then refit the chosen member(s) on all of it."""
        from mixopt.mixtures.regressors import make_regressor

        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float).ravel()
        self.reports_ = []
        weights: dict[str, float] = {self.fallback: 1.0}
        if len(y) >= 4 and np.ptp(y) > 0:
            oof = {}
            for name in self.candidates:
                pred = oof_predictions(lambda n=name: make_regressor(n, self.seed), X, y,
                                       folds=self.folds, seed=self.seed)
                oof[name] = pred
                self.reports_.append(CVReport(name=name, oof_pred=pred, n=len(y),
                                              **rank_metrics(pred, y)))
            self.reports_.sort(key=lambda r: r.sort_key(), reverse=True)
            best = self.reports_[0]
            if np.isfinite(best.spearman):
                weights = {best.name: 1.0}
                if self.ensemble and len(self.candidates) > 1:
                    mix, score = self._greedy(oof, y)
                    if len(mix) > 1 and score >= best.spearman + self.min_gain:
                        weights = mix
        self.weights_ = weights
        self.members_ = {name: make_regressor(name, self.seed).fit(X, y) for name in weights}
        return self

    # -- prediction ------------------------------------------------------------------------
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Weighted average of the chosen members' predictions."""
        if not self.members_:
            raise RuntimeError("AutoRegressor is not fitted")
        X = np.asarray(X, dtype=float)
        return sum(w * self.members_[n].predict(X) for n, w in self.weights_.items())

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
        """Human-readable description of the choice, e.g. ``"gp"`` or ``"0.5 gp + 0.5 mixing_law"``."""
        if len(self.weights_) == 1:
            return next(iter(self.weights_))
        return " + ".join(f"{w:.2f} {n}" for n, w in sorted(self.weights_.items(), key=lambda t: -t[1]))
