"""A regressor that learns from proxies of two sizes and predicts at the target (larger) size.

:class:`MultiFidelityGP` is the GP of the sequential design (:func:`~mixopt.mixtures.sequential.fit_gp`
on ``[mixture, fidelity]`` inputs, :func:`~mixopt.mixtures.sequential.multi_fidelity_inputs`) wrapped
as an ordinary regressor: ``fit(X, y)`` takes the *target-size* rows, and the cheaper rows are given
once at construction, so it cross-validates like every other regressor — scored on target-size rows
only (registered as ``gp_multi_fidelity``, which ``needs=("low_fidelity",)``: the fit step gives it
a :class:`LowFidelityData`).  Inside a CV fold, the cheap rows of the mixtures held out at the target
size are dropped too, so no held-out mixture is seen at any size.  ``predict`` is at the target fidelity.

Pure numpy / scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mixopt.mixtures.design import _dedup_key
from mixopt.mixtures.registry import register_regressor
from mixopt.mixtures.sequential import fit_gp, multi_fidelity_inputs, target_model


class MultiFidelityGP:
    """GP over (mixture, fidelity) fitted on target rows plus cheap rows; predicts at the target.

    Parameters
    ----------
    X_low, y_low:
        Mixtures trained at the cheap size and their target losses at that size.
    level_low, level_target:
        Fidelity levels of the two sizes (e.g. log relative compute; ``level_low < level_target``).
    X_all:
        Every target-size mixture available (the rows CV splits); cheap rows of those of them not
        passed to :meth:`fit` are left out of that fit.  ``None``: keep every cheap row.
    seed:
        Seed of the GP's hyperparameter search.
    """

    name = "gp_multi_fidelity"

    def __init__(self, X_low: np.ndarray, y_low: np.ndarray, level_low: float, level_target: float = 0.0,
                 X_all: np.ndarray | None = None, seed: int = 0) -> None:
        self.X_low = np.asarray(X_low, dtype=float).reshape(len(y_low), -1) if len(y_low) else np.zeros((0, 0))
        self.y_low = np.asarray(y_low, dtype=float).ravel()
        if not level_low < level_target:
            raise ValueError(f"level_low ({level_low}) must be below level_target ({level_target})")
        self.levels = np.array([level_low, level_target], dtype=float)
        self.X_all = None if X_all is None else np.asarray(X_all, dtype=float)
        self.seed = seed
        self.model_ = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> "MultiFidelityGP":
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float).ravel()
        keep = np.ones(len(self.y_low), dtype=bool)
        if self.X_all is not None and len(self.y_low):
            held = {_dedup_key(r) for r in self.X_all} - {_dedup_key(r) for r in X}
            keep = np.array([_dedup_key(r) not in held for r in self.X_low], dtype=bool)
        Xl, yl = (self.X_low[keep], self.y_low[keep]) if len(self.y_low) else (np.zeros((0, X.shape[1])), self.y_low)
        W = np.vstack([Xl, X])
        f = np.concatenate([np.full(len(yl), self.levels[0]), np.full(len(y), self.levels[1])])
        self.n_low_ = len(yl)
        self.model_ = fit_gp(multi_fidelity_inputs(W, f, self.levels), np.concatenate([yl, y]), seed=self.seed)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted target-size loss of each mixture."""
        if self.model_ is None:
            raise RuntimeError("MultiFidelityGP is not fitted")
        return target_model(self.model_).predict(X)

    def predict_std(self, X: np.ndarray) -> None:
        """No calibrated target-size uncertainty exposed here: ``None``."""
        return None


@dataclass(frozen=True)
class LowFidelityData:
    """The `low_fidelity` input of a regressor: the cheap proxies and where they sit."""

    X: np.ndarray
    """Mixtures trained at the cheap size."""
    y: np.ndarray
    """Their target losses at that size."""
    level: float
    """Fidelity level of the cheap size (log of its compute relative to the target size, < 0)."""
    X_all: np.ndarray | None = None
    """Every target-size mixture CV may split (see :class:`MultiFidelityGP`); None: keep every cheap row."""


@register_regressor("gp_multi_fidelity", needs=("low_fidelity",),
                    summary="GP over mixture and proxy size, predicting at the target size")
def _multi_fidelity_gp(low_fidelity: LowFidelityData, seed: int = 0) -> MultiFidelityGP:
    return MultiFidelityGP(low_fidelity.X, low_fidelity.y, low_fidelity.level, X_all=low_fidelity.X_all, seed=seed)
