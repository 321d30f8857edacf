"""Gaussian-process regressor for mixture -> loss, with per-domain length scales.

Design (all choices fixed a priori or made by marginal likelihood on the training rows):

* Inputs are ``sqrt(p)``.  On the simplex the square root maps mixtures onto a sphere where the
  Euclidean distance is the Hellinger distance; it also stretches small weights, which matter most
  (a domain going from 0 to 1 % changes a small model's loss more than going from 40 to 41 %).
* One length scale per domain (ARD), so irrelevant domains get long length scales.
* Targets are log-warped, ``log(y - floor)`` with ``floor = min(y) - 0.5 * range(y)``, then
  standardised.  Losses approach an irreducible floor and the reducible part moves
  multiplicatively (the mixing law ``c + exp(b + t . p)``), so on the log scale the response is
  closer to linear and a stationary kernel fits it with fewer runs.
* Kernel ``C * Matern52(ARD) + White`` (or Matern 3/2 / RBF), hyperparameters by maximising the
  marginal likelihood with L-BFGS-B from a few deterministic starts.  The likelihood and its
  gradient are computed here (:func:`neg_log_ml`, same value as scikit-learn's but without its
  (n, n, k) gradient tensor); the posterior is scikit-learn's ``GaussianProcessRegressor``.  For large training sets the
  hyperparameters are estimated on a seeded subset of at most ``max_hyper_rows`` rows and the GP
  is then conditioned on all rows (this keeps n = 512 fits to a few seconds).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Kernel, Matern, WhiteKernel

from mixopt.mixtures.registry import register_regressor

KERNELS = ("rbf", "matern52", "matern32")
_JITTER = 1e-10


def _radial(r: np.ndarray, kernel: str) -> tuple[np.ndarray, np.ndarray]:
    """Unit-amplitude kernel ``k(r)`` and ``-k'(r) / r`` (finite at ``r = 0``)."""
    if kernel == "rbf":
        k = np.exp(-0.5 * r**2)
        return k, k
    if kernel == "matern52":
        s = np.sqrt(5.0) * r
        e = np.exp(-s)
        return (1.0 + s + s**2 / 3.0) * e, (5.0 / 3.0) * (1.0 + s) * e
    if kernel == "matern32":
        s = np.sqrt(3.0) * r
        e = np.exp(-s)
        return (1.0 + s) * e, 3.0 * e
    raise ValueError(f"unknown GP kernel {kernel!r}; choose one of {KERNELS}")


def neg_log_ml(theta: np.ndarray, Z: np.ndarray, z: np.ndarray,
               kernel: str = "matern52") -> tuple[float, np.ndarray]:
    """Negative log marginal likelihood of a zero-mean GP and its gradient.

    ``theta = [log amplitude, log length_1..k, log noise]`` for the kernel
    ``amplitude * k(r) + noise * I`` with ``r^2 = sum_d (x_d - x'_d)^2 / length_d^2`` (the same
    parameterisation and value as scikit-learn's ``C * Matern/RBF + White``).  The gradient uses
    ``d NLML = -1/2 tr((a a^T - K^-1) dK)`` with the length-scale terms contracted by matrix
    products, O(n^2 k) memory-light instead of an (n, n, k) tensor.
    """
    n, k = Z.shape
    amp, ls, noise = np.exp(theta[0]), np.exp(theta[1:-1]), np.exp(theta[-1])
    S = Z / ls
    sq = np.sum(S**2, axis=1)
    r = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * S @ S.T, 0.0))
    kr, dk = _radial(r, kernel)
    Kf = amp * kr
    K = Kf + (noise + _JITTER) * np.eye(n)
    try:
        L = cho_factor(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return 1e25, np.zeros_like(theta)
    alpha = cho_solve(L, z, check_finite=False)
    nlml = 0.5 * z @ alpha + np.sum(np.log(np.diag(L[0]))) + 0.5 * n * np.log(2.0 * np.pi)
    A = np.outer(alpha, alpha) - cho_solve(L, np.eye(n), check_finite=False)
    M = A * (amp * dk)
    grad_ls = -((S**2).T @ M.sum(axis=1) - np.sum(S * (M @ S), axis=0))
    grad = np.concatenate([[-0.5 * np.sum(A * Kf)], grad_ls, [-0.5 * noise * np.trace(A)]])
    return float(nlml), grad

TRANSFORMS = ("sqrt", "linear", "log")


def gp_transform(X: np.ndarray, transform: str = "sqrt") -> np.ndarray:
    """Map mixtures to GP inputs: ``sqrt(p)`` (default), ``p`` or ``log(p + 0.01)``."""
    P = np.clip(np.asarray(X, dtype=float), 0.0, None)
    if transform == "sqrt":
        return np.sqrt(P)
    if transform == "linear":
        return P
    if transform == "log":
        return np.log(P + 1e-2)
    raise ValueError(f"unknown GP transform {transform!r}; choose one of {TRANSFORMS}")


@register_regressor("gp", default_candidate=True,
                    summary="ARD Matern-5/2 Gaussian process on sqrt(p), log-warped targets")
class GPRegressor:
    """ARD Gaussian process on ``sqrt(p)`` with log-warped, standardised targets and predictive std.

    Parameters
    ----------
    kernel:
        ``"matern52"`` (default, the usual Bayesian-optimisation choice), ``"matern32"`` or
        ``"rbf"`` (stationary part; a white-noise term is added).
    transform:
        Input transform, see :func:`gp_transform`.
    warp:
        Log-warp of the targets: the GP models ``log(y - floor)`` with
        ``floor = min(y) - warp * (max(y) - min(y))`` (``None``: model ``y`` itself).
    n_starts:
        Number of L-BFGS-B starts for the kernel hyperparameters (deterministic, seeded).
    max_iter:
        L-BFGS-B iteration cap per start.
    max_hyper_rows:
        Estimate hyperparameters on at most this many (seeded, random) training rows.
    seed:
        Seed for the extra starts and the hyperparameter subset.
    """

    name = "gp"

    def __init__(self, kernel: str = "matern52", transform: str = "sqrt", warp: float | None = 0.5,
                 n_starts: int = 2, max_iter: int = 100, max_hyper_rows: int = 256,
                 seed: int = 0) -> None:
        if kernel not in KERNELS:
            raise ValueError(f"unknown GP kernel {kernel!r}; choose one of {KERNELS}")
        if warp is not None and warp <= 0:
            raise ValueError("warp must be positive or None")
        gp_transform(np.zeros((1, 1)), transform)  # validates the name
        self.kernel = kernel
        self.transform = transform
        self.warp = warp
        self.n_starts = max(1, int(n_starts))
        self.max_iter = int(max_iter)
        self.max_hyper_rows = int(max_hyper_rows)
        self.seed = seed
        self.gp_: GaussianProcessRegressor | None = None

    # -- helpers ---------------------------------------------------------------------------
    def _kernel(self, theta: np.ndarray) -> Kernel:
        """The scikit-learn kernel for log-hyperparameters ``theta`` (see :func:`neg_log_ml`)."""
        amp, ls, noise = np.exp(theta[0]), np.exp(theta[1:-1]), np.exp(theta[-1])
        if self.kernel == "rbf":
            base: Kernel = RBF(ls)
        else:
            base = Matern(ls, nu=2.5 if self.kernel == "matern52" else 1.5)
        return ConstantKernel(amp) * base + WhiteKernel(noise)

    def _fit_hyper(self, Z: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Multi-start L-BFGS-B on the negative log marginal likelihood; returns log-params."""
        k = Z.shape[1]
        spread = float(np.median(Z.std(axis=0))) if len(Z) > 1 else 1.0
        spread = spread if spread > 0 else 1.0
        ls0 = np.log(3.0 * spread)
        theta0 = np.concatenate([[0.0], np.full(k, ls0), [np.log(0.05)]])
        bounds = np.array([(np.log(1e-2), np.log(1e2))]
                          + [(ls0 + np.log(0.05 / 3.0), ls0 + np.log(1e3))] * k
                          + [(np.log(1e-6), np.log(1.0))])
        rng = np.random.default_rng(self.seed)
        best_x, best_f = theta0, np.inf
        for i in range(self.n_starts):
            start = theta0 if i == 0 else np.clip(theta0 + rng.normal(0.0, 1.0, theta0.size),
                                                  bounds[:, 0], bounds[:, 1])
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                res = minimize(neg_log_ml, start, args=(Z, z, self.kernel), method="L-BFGS-B",
                               jac=True, bounds=bounds, options={"maxiter": self.max_iter})
            if np.isfinite(res.fun) and res.fun < best_f:
                best_x, best_f = res.x, float(res.fun)
        return best_x

    def _warp(self, y: np.ndarray) -> np.ndarray:
        return np.log(y - self.floor_) if self.floor_ is not None else y

    def _unwarp(self, z: np.ndarray) -> np.ndarray:
        return self.floor_ + np.exp(z) if self.floor_ is not None else z

    # -- API -------------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray) -> "GPRegressor":
        """Fit the GP hyperparameters and posterior on ``(X, y)`` only."""
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        n = len(y)
        spread = float(np.ptp(y)) if n else 0.0
        self.floor_ = None
        if self.warp is not None and spread > 0:
            self.floor_ = float(y.min()) - self.warp * spread
        w = self._warp(y)
        self.z_mean_ = float(w.mean())
        self.z_scale_ = float(w.std()) or 1.0
        z = (w - self.z_mean_) / self.z_scale_
        Z = gp_transform(X, self.transform)
        rows = np.arange(n)
        if n > self.max_hyper_rows:
            rows = np.random.default_rng(self.seed).choice(n, self.max_hyper_rows, replace=False)
        self.theta_ = self._fit_hyper(Z[rows], z[rows])
        self.gp_ = GaussianProcessRegressor(self._kernel(self.theta_), optimizer=None,
                                            alpha=_JITTER).fit(Z, z)
        return self

    def _latent(self, X: np.ndarray, return_std: bool = False):
        if self.gp_ is None:
            raise RuntimeError("GPRegressor is not fitted")
        Z = gp_transform(np.asarray(X, dtype=float), self.transform)
        if not return_std:
            return self.z_mean_ + self.z_scale_ * self.gp_.predict(Z)
        mu, std = self.gp_.predict(Z, return_std=True)
        return self.z_mean_ + self.z_scale_ * mu, self.z_scale_ * std

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted loss at each mixture (posterior median when the targets are warped)."""
        return self._unwarp(self._latent(X))

    def predict_std(self, X: np.ndarray) -> np.ndarray:
        """Posterior predictive std in loss units (includes the noise term).

        With the log warp it is the delta-method std ``exp(mu) * std_latent``.
        """
        mu, std = self._latent(X, return_std=True)
        if self.floor_ is None:
            return std
        return np.exp(mu) * std

    @property
    def kernel_(self) -> Kernel:
        """The fitted kernel (for inspection)."""
        if self.gp_ is None:
            raise RuntimeError("GPRegressor is not fitted")
        return self.gp_.kernel_
