"""Sequential (batch Bayesian-optimisation) design: choose the next proxies where they teach the most.

RegMix trains every proxy at once on random mixtures.  Here a Gaussian process
(:class:`~mixopt.mixtures.gp.GPRegressor`: ARD Matérn-5/2 on ``sqrt(p)``, log-warped targets) is
fitted to the proxies trained so far, and the next batch is chosen among feasible candidates by an
acquisition over its posterior:

* ``"thompson"`` (default) — batch Thompson sampling: ``batch_size`` joint posterior draws of the
  latent loss over the whole candidate set, each draw votes for its argmin; a draw whose argmin is
  already taken votes for its best candidate not yet taken, so the rows are distinct.
* ``"qei"`` — batch expected improvement by the kriging believer: pick the EI maximiser, pretend
  its loss equals the posterior mean, condition the GP on it (hyperparameters fixed), repeat.
* ``"ucb"`` — the same kriging-believer loop with the lower confidence bound ``mu - beta * sd``
  (the believed points shrink the sd around them, which spreads the batch).

All acquisitions work in the GP's latent (warped, standardised) space; the warp is monotone, so
minimisers are the same.  Candidates are Dirichlet draws around the prior with the design's
concentration sweep (:func:`~mixopt.mixtures.proposers.feasible_candidates`) plus local
perturbations of the best mixtures seen (Dirichlet draws centred on them, projected onto the caps).
Every returned row is on the simplex, within the caps, and differs after rounding to 1e-4 from every
row of ``X`` and every other returned row.

Multi-fidelity (``fidelity=`` the per-row fidelity of ``X``, e.g. log proxy size or log tokens,
with the levels one may train at and their relative costs): the GP gets one more input, the
fidelity rescaled to ``s in [0, 1]`` (0 = cheapest level, 1 = the target level), and

* WHERE — the batch's mixtures are chosen by batch Thompson sampling of the posterior *at the
  target (highest) fidelity*, so the search always aims at the mixture that is best for the final
  run;
* WHICH — each chosen mixture ``x`` is then trained at the level ``l`` maximising
  ``information / cost``, with information the reduction of the posterior variance of the latent
  loss at ``(x, target)`` from one noisy observation at ``(x, l)``:
  ``cov[(x, target), (x, l)]^2 / (var[(x, l)] + noise)``.  A cheap level wins while it is still
  correlated with the target there; once the low fidelity is explained, the target level does.

The proposal for the final run should be made at the target fidelity (e.g. :func:`target_model`).

Pure numpy / scipy / scikit-learn.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.stats import norm
from sklearn.gaussian_process import GaussianProcessRegressor

from mixopt.mixtures.design import _dedup_key, check_caps, project_to_caps, sample_design
from mixopt.mixtures.gp import _JITTER, GPRegressor, gp_transform
from mixopt.mixtures.proposers import feasible_candidates

METHODS = ("thompson", "qei", "ucb")


class FixedThetaGP(GPRegressor):
    """:class:`GPRegressor` whose kernel hyperparameters are given, not re-estimated.

    ``theta`` is the log-parameter vector of a previous fit (``model.theta_``); with ``None`` (or
    a vector of the wrong length) it behaves exactly like :class:`GPRegressor`.  Used to refit the
    posterior on new proxies every round while re-estimating hyperparameters only every few rounds.
    """

    def __init__(self, theta: np.ndarray | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.theta = None if theta is None else np.asarray(theta, dtype=float).copy()

    def _fit_hyper(self, Z: np.ndarray, z: np.ndarray) -> np.ndarray:
        if self.theta is not None and self.theta.size == Z.shape[1] + 2:
            return self.theta.copy()
        return super()._fit_hyper(Z, z)


def fit_gp(X: np.ndarray, y: np.ndarray, seed: int = 0,
           theta: np.ndarray | None = None) -> GPRegressor:
    """The GP that :func:`next_batch` uses, fitted on ``(X, y)`` (hyperparameters fixed to
    ``theta`` when given, else by marginal likelihood)."""
    return FixedThetaGP(theta=theta, seed=seed).fit(np.asarray(X, float), np.asarray(y, float))


def candidate_set(prior: np.ndarray, caps: np.ndarray, n_candidates: int, seed: int,
                  X: np.ndarray | None = None, y: np.ndarray | None = None,
                  local_fraction: float = 0.25, n_best: int = 5,
                  local_concentration: float = 200.0, concentration_min: float = 0.1,
                  concentration_max: float = 5.0) -> np.ndarray:
    """Feasible candidate mixtures: global Dirichlet draws plus local moves around the best rows.

    About ``(1 - local_fraction) * n_candidates`` rows come from
    :func:`~mixopt.mixtures.proposers.feasible_candidates` (the design's Dirichlet sweep around the
    cap-projected prior, infeasible draws discarded); the rest are
    ``Dirichlet(local_concentration * x_best + 0.05)`` draws around the ``n_best`` lowest-loss rows
    of ``X``, projected onto the caps.  All rows lie on the simplex within ``caps``.
    """
    rng = np.random.default_rng([seed, 1])
    n_local = int(round(local_fraction * n_candidates)) if X is not None and len(X) else 0
    F, _ = feasible_candidates(prior, caps, max(1, n_candidates - n_local), seed,
                               concentration_min, concentration_max)
    F = F[: max(1, n_candidates - n_local)]
    if n_local:
        best = np.asarray(X, float)[np.argsort(np.asarray(y, float), kind="stable")[:n_best]]
        centres = best[rng.integers(0, len(best), n_local)]
        scale = local_concentration * np.exp(rng.uniform(-1.5, 1.5, (n_local, 1)))
        L = rng.gamma(np.clip(centres, 0.0, None) * scale + 0.05)
        L = L / L.sum(axis=1, keepdims=True)
        L = np.array([project_to_caps(w, caps) for w in L])
        F = np.vstack([F, L])
    return F


def _distinct(F: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Rows of ``F`` whose 1e-4-rounded key is new (not in ``X``, first occurrence in ``F``)."""
    seen = {_dedup_key(r) for r in X}
    keep = []
    for i, r in enumerate(F):
        key = _dedup_key(r)
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return F[keep]


def _latent_noise(model: GPRegressor) -> float:
    """White-noise variance of the fitted GP in its standardised latent units."""
    return float(np.exp(model.theta_[-1]))


def _thompson(model: GPRegressor, F: np.ndarray, batch: int, rng: np.random.Generator) -> list[int]:
    """Batch Thompson sampling over ``F``: one joint posterior draw of the latent f per pick."""
    Z = gp_transform(F, model.transform)
    mu, cov = model.gp_.predict(Z, return_cov=True)
    cov = cov - _latent_noise(model) * np.eye(len(F))  # sample f, not f + noise
    cov = 0.5 * (cov + cov.T)
    jitter = 1e-8 * max(float(np.mean(np.diag(cov))), 1e-12)
    for _ in range(8):
        try:
            L = np.linalg.cholesky(cov + jitter * np.eye(len(F)))
            break
        except np.linalg.LinAlgError:
            jitter *= 10.0
    else:  # fall back on the eigen-decomposition (clip negative eigenvalues)
        vals, vecs = np.linalg.eigh(cov)
        L = vecs * np.sqrt(np.clip(vals, 0.0, None))
    S = mu[:, None] + L @ rng.standard_normal((len(F), batch))
    taken: list[int] = []
    for j in range(batch):
        for i in np.argsort(S[:, j], kind="stable"):
            if int(i) not in taken:
                taken.append(int(i))
                break
    return taken


def _believer(model: GPRegressor, X: np.ndarray, y: np.ndarray, F: np.ndarray, batch: int,
              method: str, beta: float) -> list[int]:
    """Kriging-believer batch for ``"qei"`` (expected improvement) or ``"ucb"`` (lower bound)."""
    Zx = gp_transform(X, model.transform)
    zx = (model._warp(y) - model.z_mean_) / model.z_scale_
    Zf = gp_transform(F, model.transform)
    noise = _latent_noise(model)
    best = float(np.min(zx))
    gp: GaussianProcessRegressor = model.gp_
    taken: list[int] = []
    for _ in range(batch):
        mu, sd = gp.predict(Zf, return_std=True)
        sd = np.sqrt(np.clip(sd**2 - noise, 1e-12, None))
        if method == "qei":
            u = (best - mu) / sd
            score = (best - mu) * norm.cdf(u) + sd * norm.pdf(u)  # maximise EI
        else:
            score = -(mu - beta * sd)  # minimise the lower bound
        score[taken] = -np.inf
        i = int(np.argmax(score))
        taken.append(i)
        Zx = np.vstack([Zx, Zf[i]])
        zx = np.append(zx, mu[i])
        gp = GaussianProcessRegressor(model.gp_.kernel_, optimizer=None, alpha=_JITTER).fit(Zx, zx)
    return taken


def _fidelity_scale(levels: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Fidelity rescaled to ``[0, 1]`` over ``levels`` (1 = highest), stored squared so that the
    GP's ``sqrt`` input transform turns it back into the rescaled value."""
    lo, hi = float(levels.min()), float(levels.max())
    s = (np.asarray(f, float) - lo) / (hi - lo) if hi > lo else np.ones(len(f))
    return np.clip(s, 0.0, 1.0) ** 2


class target_model:  # noqa: N801 - a thin adapter, used like a function
    """Predict with a multi-fidelity GP at the target (highest) fidelity: ``predict(W)`` for
    mixtures ``W (m, k)``, so :func:`~mixopt.mixtures.proposers.propose_regmix` can use it."""

    name = "gp_target_fidelity"

    def __init__(self, model: GPRegressor) -> None:
        self.model = model

    def predict(self, W: np.ndarray) -> np.ndarray:
        W = np.atleast_2d(np.asarray(W, float))
        return self.model.predict(np.hstack([W, np.ones((len(W), 1))]))


def _which_fidelity(model: GPRegressor, W: np.ndarray, s_levels: np.ndarray,
                    costs: np.ndarray) -> np.ndarray:
    """Index of the level maximising (variance reduction at the target) / cost, per row of W."""
    noise = _latent_noise(model)
    out = np.zeros(len(W), dtype=int)
    for i, w in enumerate(W):
        A = np.hstack([np.repeat(w[None, :], len(s_levels) + 1, axis=0),
                       np.append(s_levels, 1.0)[:, None]])
        _, cov = model.gp_.predict(gp_transform(A, model.transform), return_cov=True)
        cov = cov - noise * np.eye(len(A))
        gain = cov[-1, :-1] ** 2 / (np.clip(np.diag(cov)[:-1], 0.0, None) + noise)
        out[i] = int(np.argmax(gain / costs))
    return out


def next_batch(X: np.ndarray, y: np.ndarray, prior: Sequence[float] | np.ndarray,
               caps: Sequence[float] | np.ndarray | None, batch_size: int, seed: int,
               method: str = "thompson", n_candidates: int = 2000,
               fidelity: Sequence[float] | np.ndarray | None = None,
               model: GPRegressor | None = None, theta: np.ndarray | None = None,
               beta: float = 2.0, local_fraction: float = 0.25,
               concentration_min: float = 0.1, concentration_max: float = 5.0,
               fidelity_levels: Sequence[float] | None = None,
               costs: Sequence[float] | None = None) -> np.ndarray:
    """The next ``batch_size`` proxy mixtures, chosen by ``method`` over a GP fitted to ``(X, y)``.

    Parameters
    ----------
    X, y:
        Mixtures trained so far ``(n, k)`` and their losses ``(n,)`` (lower is better).
    prior, caps:
        Centre of the candidate Dirichlet draws (the token prior) and per-domain weight caps
        (``None``: no caps).
    batch_size, seed:
        Number of rows to return; the result is a deterministic function of the arguments.
    method:
        ``"thompson"``, ``"qei"`` or ``"ucb"`` (see the module docstring).
    n_candidates:
        Size of the candidate set (a quarter are local moves around the 5 best rows seen).
    fidelity:
        Per-row fidelity of ``X`` (e.g. log proxy size); ``None``: single fidelity.  With it,
        only ``method="thompson"`` is supported and the result has one more column, the level
        chosen for each row (see the module docstring for the rule).
    fidelity_levels, costs:
        Levels one may train at (default: those in ``fidelity``; the highest is the target) and
        their relative costs (default ``exp(level - max level)``, i.e. fidelity = log compute).
    model:
        A GP already fitted on ``(X, y)`` (e.g. by :func:`fit_gp`); else one is fitted here.
        With ``fidelity``, it must have been fitted on ``multi_fidelity_inputs(X, fidelity, levels)``.
    theta:
        Fixed GP log-hyperparameters for that fit (``model.theta_`` of an earlier round).
    beta:
        Width of the ``"ucb"`` lower confidence bound.
    local_fraction, concentration_min, concentration_max:
        Candidate-set settings (see :func:`candidate_set`).

    With fewer than 3 rows in ``X`` (or a constant ``y``) there is nothing to learn from yet and the
    batch is a RegMix-style Dirichlet design (:func:`~mixopt.mixtures.design.sample_design`).
    Raises ``ValueError`` for bad arguments, infeasible caps, or when fewer than ``batch_size``
    new feasible candidates exist.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    p0 = np.asarray(prior, dtype=float).ravel()
    if p0.size == 0 or np.any(~np.isfinite(p0)) or np.any(p0 < 0) or p0.sum() <= 0:
        raise ValueError("prior must be a non-negative vector with a positive sum")
    p0 = p0 / p0.sum()
    k = p0.size
    c = check_caps(caps, k)
    X = np.asarray(X, dtype=float).reshape(-1, k)
    y = np.asarray(y, dtype=float).ravel()
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)} values")
    if not np.all(np.isfinite(y)):
        raise ValueError("y must be finite (drop failed proxies first)")
    if batch_size < 0:
        raise ValueError(f"batch_size must be non-negative, got {batch_size}")
    if batch_size == 0:
        return np.zeros((0, k))
    if fidelity is not None:
        return _next_batch_mf(X, y, p0, c, batch_size, seed, n_candidates, fidelity, model, theta,
                              local_fraction, concentration_min, concentration_max,
                              fidelity_levels, costs, method)
    if len(X) < 3 or np.ptp(y) == 0:
        return sample_design(p0, batch_size, c, seed, concentration_min=concentration_min,
                             concentration_max=concentration_max, existing=X)
    if model is None:
        model = fit_gp(X, y, seed=seed, theta=theta)
    F = candidate_set(p0, c, max(n_candidates, batch_size), seed, X, y, local_fraction,
                      concentration_min=concentration_min, concentration_max=concentration_max)
    F = _distinct(F, X)
    if len(F) < batch_size:
        raise ValueError(f"only {len(F)} new feasible candidates for a batch of {batch_size}; "
                         "raise n_candidates or loosen the caps")
    rng = np.random.default_rng([seed, 2])
    if method == "thompson":
        idx = _thompson(model, F, batch_size, rng)
    else:
        idx = _believer(model, X, y, F, batch_size, method, beta)
    return F[idx]


def multi_fidelity_inputs(X: np.ndarray, fidelity: Sequence[float] | np.ndarray,
                          levels: Sequence[float] | np.ndarray) -> np.ndarray:
    """GP inputs ``[X, s^2]`` with ``s`` the fidelity rescaled to [0, 1] over ``levels``."""
    X = np.asarray(X, float)
    return np.hstack([X, _fidelity_scale(np.asarray(levels, float), fidelity)[:, None]])


def _next_batch_mf(X, y, p0, c, batch_size, seed, n_candidates, fidelity, model, theta,
                   local_fraction, cmin, cmax, levels, costs, method) -> np.ndarray:
    """Multi-fidelity batch: WHERE by Thompson at the target level, WHICH by gain per cost."""
    if method != "thompson":
        raise ValueError("multi-fidelity designs support method='thompson' only")
    f = np.asarray(fidelity, float).ravel()
    if len(f) != len(X) or not np.all(np.isfinite(f)):
        raise ValueError("fidelity must be finite with one value per row of X")
    if costs is not None and levels is None:
        raise ValueError("costs need fidelity_levels (one cost per level, in the same order)")
    lv = np.unique(np.asarray(levels if levels is not None else f, float))
    if lv.size == 0:
        raise ValueError("no fidelity levels given")
    cost = (np.exp(lv - lv.max()) if costs is None
            else np.asarray(costs, float).ravel()[np.argsort(np.asarray(levels, float))])
    if cost.shape != lv.shape or np.any(cost <= 0):
        raise ValueError("costs needs one positive value per fidelity level")
    if len(X) < 3 or np.ptp(y) == 0:  # nothing to learn from: a design at the cheapest level
        W = sample_design(p0, batch_size, c, seed, concentration_min=cmin,
                          concentration_max=cmax, existing=X)
        return np.hstack([W, np.full((batch_size, 1), lv[0])])
    if model is None:
        model = fit_gp(multi_fidelity_inputs(X, f, lv), y, seed=seed, theta=theta)
    top = target_model(model)
    F = candidate_set(p0, c, max(n_candidates, batch_size), seed, X, top.predict(X),
                      local_fraction, concentration_min=cmin, concentration_max=cmax)
    F = _distinct(F, X)
    if len(F) < batch_size:
        raise ValueError(f"only {len(F)} new feasible candidates for a batch of {batch_size}")
    idx = _thompson(model, np.hstack([F, np.ones((len(F), 1))]), batch_size,
                    np.random.default_rng([seed, 2]))
    W = F[idx]
    which = _which_fidelity(model, W, _fidelity_scale(lv, lv), cost)
    return np.hstack([W, lv[which][:, None]])
