"""The log-linear data mixing law, fitted robustly.

Data Mixing Laws (Ye et al., 2024) and Aioli's static law model the loss of a model trained on the
mixture ``p`` as

    L(p) = c + exp(b + t . phi(p))

with ``phi(p) = p`` in the papers.  ``c`` is the irreducible part of the loss, ``exp(b)`` its
reducible scale and ``t`` one log-rate per domain (negative: more of that domain lowers the loss).
:class:`MixingLawRegressor` fits ``(c, b, t)`` by robust least squares (Huber loss,
``scipy.optimize.least_squares``) from several starts and keeps the best.  ``features="sqrt"`` or
``"linear+sqrt"`` swap ``phi`` for ``sqrt(p)`` or ``[p, sqrt(p)]``: the square root makes the law
steep near zero weight, which is how small proxies react to a domain appearing at all.

Pure numpy/scipy: no deep-learning imports here.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from mixopt.mixtures.registry import register_regressor

_EXP_CLIP = 50.0
FEATURES = ("linear", "sqrt", "linear+sqrt")


def law_features(X: np.ndarray, features: str = "linear") -> np.ndarray:
    """Map mixtures ``X`` (n, k) to the law's inputs ``phi(X)``: ``p``, ``sqrt(p)`` or both."""
    P = np.clip(np.asarray(X, dtype=float), 0.0, None)
    if features == "linear":
        return P
    if features == "sqrt":
        return np.sqrt(P)
    if features == "linear+sqrt":
        return np.hstack([P, np.sqrt(P)])
    raise ValueError(f"unknown mixing-law features {features!r}; choose one of {FEATURES}")


@register_regressor("mixing_law", default_candidate=True, features="linear",
                    summary="c + exp(b + t . p), Huber-fitted (the published mixing law)")
class MixingLawRegressor:
    """``L(p) = c + exp(b + t . phi(p))`` fitted with a Huber loss from several starts.

    Parameters
    ----------
    features:
        ``"linear"`` (the published law), ``"sqrt"`` or ``"linear+sqrt"``.
    n_starts:
        Number of starting points.  Each start fixes a guess of ``c`` below ``min(y)``, linearises
        ``log(y - c) = b + t . phi`` and solves it by ridge least squares; the non-linear fit then
        refines all parameters jointly.  The lowest robust cost wins.
    ridge:
        Strength of a small ridge penalty on ``t`` (relative to the target's spread), which keeps
        the fit well posed when there are few runs per domain.
    huber_scale:
        Residual size where the Huber loss turns linear; ``None`` estimates it from the residuals
        of a plain least-squares fit (1.345 robust standard deviations).
    seed:
        Seed for the jitter of the extra starts.
    """

    name = "mixing_law"

    def __init__(self, features: str = "linear", n_starts: int = 5, ridge: float = 1e-3,
                 huber_scale: float | None = None, seed: int = 0) -> None:
        if features not in FEATURES:
            raise ValueError(f"unknown mixing-law features {features!r}; choose one of {FEATURES}")
        self.features = features
        self.n_starts = max(1, int(n_starts))
        self.ridge = float(ridge)
        self.huber_scale = huber_scale
        self.seed = seed
        self.params_: np.ndarray | None = None

    # -- model -----------------------------------------------------------------------------
    @staticmethod
    def _law(theta: np.ndarray, F: np.ndarray) -> np.ndarray:
        return theta[0] + np.exp(np.clip(theta[1] + F @ theta[2:], -_EXP_CLIP, _EXP_CLIP))

    def _residuals(self, theta: np.ndarray, F: np.ndarray, y: np.ndarray, pen: float) -> np.ndarray:
        return np.concatenate([self._law(theta, F) - y, pen * theta[2:]])

    @staticmethod
    def _jacobian(theta: np.ndarray, F: np.ndarray, y: np.ndarray, pen: float) -> np.ndarray:
        e = np.exp(np.clip(theta[1] + F @ theta[2:], -_EXP_CLIP, _EXP_CLIP))
        top = np.hstack([np.ones((len(y), 1)), e[:, None], e[:, None] * F])
        m = F.shape[1]
        bottom = np.hstack([np.zeros((m, 2)), pen * np.eye(m)])
        return np.vstack([top, bottom])

    def _starts(self, F: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        """Initial ``(c, b, t)``: several guesses of ``c``, each with a linearised ridge fit."""
        spread = float(np.ptp(y)) or float(abs(y.mean())) * 1e-3 or 1e-3
        gaps = [0.5, 0.1, 1.0, 3.0, 0.02]
        rng = np.random.default_rng(self.seed)
        A = np.hstack([np.ones((len(y), 1)), F])
        reg = 1e-3 * np.eye(A.shape[1])
        reg[0, 0] = 0.0
        starts = []
        for i in range(self.n_starts):
            c0 = float(y.min()) - gaps[i % len(gaps)] * spread
            z = np.log(y - c0)
            w = np.linalg.solve(A.T @ A + reg, A.T @ z)
            theta = np.concatenate([[c0], w])
            if i >= len(gaps):
                theta[1:] += rng.normal(0.0, 0.1, size=theta.size - 1)
            starts.append(theta)
        return starts

    # -- API -------------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray) -> "MixingLawRegressor":
        """Fit the law to mixtures ``X`` (n, k) and losses ``y`` (n,)."""
        F = law_features(X, self.features)
        y = np.asarray(y, dtype=float)
        sd = float(y.std()) or 1.0
        pen = np.sqrt(self.ridge) * sd
        args = (F, y, pen)
        spread = float(np.ptp(y)) or sd
        lo = np.full(F.shape[1] + 2, -np.inf)
        hi = np.full(F.shape[1] + 2, np.inf)
        lo[0], hi[0] = float(y.min()) - 100.0 * spread, float(y.min()) + 0.05 * spread
        best = None
        for theta0 in self._starts(F, y):
            theta0[0] = np.clip(theta0[0], lo[0] + 1e-9 * spread, hi[0] - 1e-9 * spread)
            # A plain least-squares pass gives a residual scale for the Huber loss.
            r = least_squares(self._residuals, theta0, jac=self._jacobian, args=args,
                              bounds=(lo, hi), method="trf", max_nfev=100)
            scale = self.huber_scale
            if scale is None:
                res = r.fun[: len(y)]
                mad = float(np.median(np.abs(res - np.median(res)))) / 0.6745
                scale = 1.345 * max(mad, 1e-6 * sd)
            r = least_squares(self._residuals, r.x, jac=self._jacobian, args=args, loss="huber",
                              f_scale=scale, bounds=(lo, hi), method="trf", max_nfev=200)
            cost = float(np.sum(_huber(r.fun[: len(y)], scale))) + float(np.sum(r.fun[len(y):] ** 2))
            if best is None or cost < best[0]:
                best = (cost, r.x)
        assert best is not None
        self.params_ = best[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted loss for each mixture row of ``X``."""
        if self.params_ is None:
            raise RuntimeError("MixingLawRegressor is not fitted")
        return self._law(self.params_, law_features(X, self.features))

    def predict_std(self, X: np.ndarray) -> None:
        """The law has no predictive uncertainty: always ``None``."""
        return None

    @property
    def c_(self) -> float:
        """Fitted irreducible loss ``c``."""
        return float(self.params_[0])  # type: ignore[index]

    @property
    def b_(self) -> float:
        """Fitted log-scale ``b``."""
        return float(self.params_[1])  # type: ignore[index]

    @property
    def t_(self) -> np.ndarray:
        """Fitted per-feature log-rates ``t``."""
        return np.asarray(self.params_[2:])  # type: ignore[index]


register_regressor("mixing_law_sqrt", default_candidate=True, features="linear+sqrt",
                   summary="the mixing law on [p, sqrt(p)]")(MixingLawRegressor)


def _huber(r: np.ndarray, scale: float) -> np.ndarray:
    """Huber loss of residuals ``r`` at the given scale (same convention as least_squares)."""
    z = (r / scale) ** 2
    rho = np.where(z <= 1.0, z, 2.0 * np.sqrt(z) - 1.0)
    return 0.5 * scale**2 * rho
