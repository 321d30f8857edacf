"""A scale-aware mixing law: the target as a function of the mixture AND the training compute.

Proxies are trained at a ladder of scales (cheapest first); the final model is larger and longer.
A single-scale regressor ranks mixtures as the proxies see them, which is not how the final model
sees them (a domain dropped costs a tiny proxy little and the final model a lot). This law fits

    y(w, z) = c0 + a . phi(w) + z * (c1 + b . phi(w)),     phi(w) = [w, sqrt(w)],
    z = log10(compute / reference compute),   compute = 6 * parameters * tokens,

i.e. at every mixture the target moves linearly in log compute, with a slope that depends on the
mixture: the first-order form of a joint law L(w, N, D) (compare Data Mixing Laws' nested laws and
AutoScale, which let each domain's contribution change with scale). It is fitted by ridge regression
with its penalty chosen by leave-one-out (GCV), and predicts at the final run's compute.

`leave_largest_scale_out` judges it (and any single-scale regressor) honestly: fit on the smaller
scales only, predict the largest proxy scale, score Spearman, RMSE and regret@1. `scale_gate` uses
the same split to decide whether the law earns its place: the law (with the level regressor actually
used) against that regressor alone, by regret@1 then Spearman; it also returns the residuals of the
winner, from which `transfer_tau2` measures how wrong a predicted GAIN between two mixtures is when
it crosses scales. `hedge` picks the point on the path from a safe anchor to the law's optimum whose
predicted gain is largest after subtracting kappa x its sd, where

    sd(gain at w)^2 = bootstrap variance of the gain + tau2 * TV(start, w),

the second term being the transfer error (a linear variogram in total-variation distance, zero at
the start), so a proposal never moves where the law cannot vouch for it. Pure numpy / scipy / scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from scipy.stats import spearmanr
from sklearn.linear_model import RidgeCV

ALPHAS = np.logspace(-4, 3, 15)


def mixture_features(W: np.ndarray) -> np.ndarray:
    """phi(w) = [w, sqrt(w)] per row (the sqrt term lets a domain's first tokens count the most)."""
    W = np.clip(np.asarray(W, dtype=float), 0.0, None)
    return np.hstack([W, np.sqrt(W)])


def log_compute(n_params: float | np.ndarray, tokens: float | np.ndarray) -> np.ndarray:
    """log10 of the training FLOPs 6 * N * D."""
    return np.log10(6.0 * np.asarray(n_params, dtype=float) * np.asarray(tokens, dtype=float))


class ScaleAwareLaw:
    """y(w, s) = f(w) + (s - s_ref) * g(w): a level at the largest proxy scale and a mixture slope.

    `fit(W, s, y, groups)` takes mixtures W (n x k), log compute s (n,), targets y (n,) and a group
    label per row (the mixture's id; rows of one mixture at several scales share it).

    * f is the level at the largest scale seen (s_ref): `base()` (any regressor with fit/predict;
      default a ridge on phi(w) = [w, sqrt(w)]) fitted on the rows at s_ref.
    * g is the slope: each mixture seen at >= 2 scales gives the least-squares slope of its target
      in s, and a ridge on phi(w) (penalty by GCV) spreads those slopes to every mixture.

    With one scale only, g is 0 and the law is the base regressor.
    """

    name = "scale_law"

    def __init__(self, base: Callable[[], Any] | None = None, alphas: Sequence[float] = tuple(ALPHAS)) -> None:
        self.base = base
        self.alphas = tuple(float(a) for a in alphas)

    def fit(self, W: np.ndarray, s: np.ndarray, y: np.ndarray, groups: Sequence[str] | None = None) -> "ScaleAwareLaw":
        W = np.asarray(W, dtype=float)
        s = np.round(np.asarray(s, dtype=float).reshape(-1), 6)
        y = np.asarray(y, dtype=float).reshape(-1)
        if W.ndim != 2 or not (len(W) == len(s) == len(y)) or len(y) < 3:
            raise ValueError("scale law: W must be (n, k) with n == len(s) == len(y) >= 3")
        g = np.asarray(groups) if groups is not None else np.array([mixture_key(w) for w in W])
        self.s_ref_ = float(s.max())
        self.n_scales_ = int(len(np.unique(s)))
        top = s == self.s_ref_
        if top.sum() < 3:
            raise ValueError(f"scale law: only {int(top.sum())} runs at the largest scale; need >= 3")
        self.level_ = (self.base() if self.base else _Ridge(self.alphas)).fit(W[top], y[top])
        slopes, rows = [], []
        for u in np.unique(g):
            idx = np.flatnonzero(g == u)
            if len(np.unique(s[idx])) < 2:
                continue
            slopes.append(float(np.polyfit(s[idx], y[idx], 1)[0]))
            rows.append(W[idx[0]])
        self.n_slopes_ = len(slopes)
        self.slope_ = _Ridge(self.alphas).fit(np.array(rows), np.array(slopes)) if len(slopes) >= 3 else None
        self.mean_slope_ = float(np.mean(slopes)) if slopes else 0.0
        return self

    def slope(self, W: np.ndarray) -> np.ndarray:
        """d target / d log10 compute at each mixture."""
        W = np.atleast_2d(np.asarray(W, dtype=float))
        if self.slope_ is None:
            return np.full(len(W), self.mean_slope_)
        return self.slope_.predict(W)

    def predict_at(self, W: np.ndarray, s: float | np.ndarray) -> np.ndarray:
        """Predicted target of mixtures W at log compute s (a scalar or one per row)."""
        W = np.atleast_2d(np.asarray(W, dtype=float))
        level = np.asarray(self.level_.predict(W), dtype=float).ravel()
        dz = np.broadcast_to(np.asarray(s, dtype=float), (len(W),)) - self.s_ref_
        return level + dz * self.slope(W)

    def at(self, s: float) -> "FixedScale":
        """A regressor-like view (`predict(W)`) at one scale, for the proposers."""
        return FixedScale(self, float(s))


def mixture_key(w: np.ndarray) -> str:
    """A mixture's group label: its weights to 6 decimals (all scales of one mixture share it)."""
    return ",".join(f"{v:.6f}" for v in w)


class _Ridge:
    """Ridge regression on phi(w) with standardised features and its penalty chosen by GCV."""

    def __init__(self, alphas: Sequence[float] = tuple(ALPHAS)) -> None:
        self.alphas = alphas

    def fit(self, W: np.ndarray, y: np.ndarray) -> "_Ridge":
        F = mixture_features(W)
        self.mu_, self.sd_ = F.mean(axis=0), F.std(axis=0)
        self.sd_[self.sd_ < 1e-12] = 1.0
        self.model_ = RidgeCV(alphas=self.alphas).fit((F - self.mu_) / self.sd_, np.asarray(y, float))
        return self

    def predict(self, W: np.ndarray) -> np.ndarray:
        return self.model_.predict((mixture_features(np.atleast_2d(W)) - self.mu_) / self.sd_)


@dataclass
class FixedScale:
    """`predict(W)` of a fitted scale-aware law at one fixed log compute."""

    law: ScaleAwareLaw
    s: float
    name: str = "scale_law"

    def predict(self, W: np.ndarray) -> np.ndarray:
        return self.law.predict_at(W, self.s)


def bootstrap_laws(W: np.ndarray, s: np.ndarray, y: np.ndarray, groups: Sequence[str], B: int = 50,
                   seed: int = 0, base: Callable[[], Any] | None = None) -> list[ScaleAwareLaw]:
    """B laws refitted on mixtures resampled with replacement (all scales of a mixture together)."""
    W, s, y = np.asarray(W, float), np.asarray(s, float), np.asarray(y, float)
    g = np.asarray(groups)
    ids = np.unique(g)
    rows = {u: np.flatnonzero(g == u) for u in ids}
    rng = np.random.default_rng(seed)
    laws = []
    for _ in range(B):
        pick = rng.choice(ids, size=len(ids), replace=True)
        idx = np.concatenate([rows[u] for u in pick])
        try:
            laws.append(ScaleAwareLaw(base).fit(W[idx], s[idx], y[idx], g[idx]))
        except ValueError:  # too few rows at the largest scale in this resample
            continue
    return laws


@dataclass
class ScaleCheck:
    """Leave-largest-scale-out scores of one regressor."""

    name: str
    spearman: float
    rmse: float
    regret: float
    """Measured target of the mixture predicted best, minus the best measured (largest scale)."""
    n: int


def _scores(name: str, pred: np.ndarray, y: np.ndarray) -> ScaleCheck:
    rho = float(spearmanr(pred, y)[0]) if np.ptp(pred) > 0 and np.ptp(y) > 0 else float("nan")
    rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
    regret = float(y[int(np.argmin(pred))] - y.min())
    return ScaleCheck(name, rho, rmse, regret, int(len(y)))


def leave_largest_scale_out(W: np.ndarray, s: np.ndarray, y: np.ndarray, groups: Sequence[str] | None = None,
                            single_scale: dict[str, Callable[[], Any]] | None = None) -> list[ScaleCheck]:
    """Fit on every scale but the largest, predict the largest; one `ScaleCheck` per regressor.

    `scale_law` (ridge level) and, for each single-scale factory, `scale_law[name]` (that regressor
    as the level) see all smaller scales and extrapolate to the largest; each single-scale regressor
    alone is fitted on the next-largest scale (the best it can do without a scale axis). A
    regressor that fails to fit is left out.
    """
    W, s, y = np.asarray(W, float), np.round(np.asarray(s, float), 6), np.asarray(y, float)
    g = np.asarray(groups) if groups is not None else np.array([mixture_key(w) for w in W])
    scales = np.unique(s)
    if len(scales) < 3:
        raise ValueError(f"leave-largest-scale-out needs >= 3 scales, got {len(scales)}")
    top, second = s == scales[-1], s == scales[-2]
    fits: list[tuple[str, Callable[[], Any]]] = [("scale_law", lambda: ScaleAwareLaw())]
    for name, factory in (single_scale or {}).items():
        fits.append((name, factory))
        fits.append((f"scale_law[{name}]", lambda f=factory: ScaleAwareLaw(f)))
    out = []
    for name, make in fits:
        try:
            model = make()
            if isinstance(model, ScaleAwareLaw):
                pred = model.fit(W[~top], s[~top], y[~top], g[~top]).predict_at(W[top], scales[-1])
            else:
                pred = model.fit(W[second], y[second]).predict(W[top])
            out.append(_scores(name, np.asarray(pred, float).ravel(), y[top]))
        except Exception:  # a regressor that cannot fit this few rows is simply not scored
            continue
    return out


@dataclass
class Gate:
    """Does the scale-aware law earn its place? Leave-largest-scale-out, law against its own level."""

    use_law: bool
    """True: propose with the law at the final compute; False: with the level regressor alone."""
    reason: str
    law: ScaleCheck | None
    """LLSO scores of the law (level = the regressor used), fitted on every scale but the largest."""
    single: ScaleCheck | None
    """LLSO scores of that regressor alone, fitted on the next-largest scale."""
    residuals: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    """"law" / "single" -> per mixture at the largest scale: LLSO prediction minus the measured mean."""
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    """The mixtures of `residuals` (one row each)."""
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    """Runs behind each measured mean (seeds)."""
    noise_var: float = 0.0
    """Pooled between-seed variance of one run at the largest scale (0 without repeated mixtures)."""


def _top_means(W: np.ndarray, y: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per mixture: weights, mean target, run count; and the pooled between-seed variance of one run."""
    ids = list(dict.fromkeys(g.tolist()))
    idx = [np.flatnonzero(g == u) for u in ids]
    Wm = np.array([W[i[0]] for i in idx])
    ym = np.array([y[i].mean() for i in idx])
    n = np.array([len(i) for i in idx], float)
    ss = sum(float(((y[i] - y[i].mean()) ** 2).sum()) for i in idx)
    dof = float((n - 1).sum())
    return Wm, ym, n, ss / dof if dof > 0 else 0.0


def scale_gate(W: np.ndarray, s: np.ndarray, y: np.ndarray, groups: Sequence[str] | None, base: Callable[[], Any],
               name: str = "level", tol: float = 0.0) -> Gate:
    """Law or single-scale regressor? Fit on every scale but the largest, predict the largest.

    * the law: `ScaleAwareLaw(base)` on all smaller scales (needs >= 2 of them), at the largest;
    * the single-scale regressor: `base()` on the next-largest scale only (what a proposal without a
      scale axis would trust), at the largest.

    Both are scored on the mixtures measured at the largest scale (their mean over seeds) by regret@1
    (measured target of the one predicted best minus the best measured) and Spearman. The law wins
    when its regret is lower by more than `tol`, or within `tol` and its Spearman is higher; otherwise
    (a tie, a law that cannot be fitted, fewer than 3 scales) the single-scale regressor is used.
    The winner's residuals are returned for `transfer_tau2`. With one scale there is nothing to test:
    the single-scale regressor, no residuals.
    """
    W, s, y = np.asarray(W, float), np.round(np.asarray(s, float), 6), np.asarray(y, float)
    g = np.asarray(groups) if groups is not None else np.array([mixture_key(w) for w in W])
    scales = np.unique(s)
    if len(scales) < 2:
        return Gate(False, "one proxy scale: nothing to extrapolate", None, None)
    top, second = s == scales[-1], s == scales[-2]
    Wm, ym, n, noise = _top_means(W[top], y[top], g[top])
    preds: dict[str, np.ndarray] = {}
    try:
        preds["single"] = np.asarray(base().fit(W[second], y[second]).predict(Wm), float).ravel()
    except Exception:  # too few rows at the next scale for this regressor: not scored
        pass
    if len(scales) >= 3:
        try:
            preds["law"] = ScaleAwareLaw(base).fit(W[~top], s[~top], y[~top], g[~top]).predict_at(Wm, scales[-1])
        except Exception:  # a law that cannot be fitted on the smaller scales is not scored
            pass
    checks = {k: _scores(f"scale_law[{name}]" if k == "law" else name, v, ym) for k, v in preds.items()}
    law, single = checks.get("law"), checks.get("single")
    if law is None:
        use, why = False, ("fewer than 3 proxy scales: the law cannot be tested" if len(scales) < 3
                           else "the law could not be fitted on the smaller scales")
    elif single is None:
        use, why = True, "the single-scale regressor could not be fitted on the next scale"
    else:
        use = law.regret < single.regret - tol or (abs(law.regret - single.regret) <= tol
                                                   and _nan0(law.spearman) > _nan0(single.spearman))
        why = (f"leave-largest-scale-out regret@1 {law.regret:.4f} (law) vs {single.regret:.4f} (single), "
               f"Spearman {law.spearman:.3f} vs {single.spearman:.3f}")
    return Gate(use, why, law, single, {k: v - ym for k, v in preds.items()}, Wm, n, noise)


def _nan0(x: float) -> float:
    return float(x) if np.isfinite(x) else -np.inf


def transfer_tau2(gate: Gate, model: str | None = None) -> float:
    """Transfer variance of a predicted gain per unit of total-variation distance (a linear variogram).

    For every pair (i, j) of mixtures measured at the largest scale, q_ij = (r_i - r_j)^2 with r the
    gate's residuals of `model` ("law" or "single"; default: the one the gate chose), i.e. its
    prediction across one scale minus the measured mean, is the squared error of the
    predicted gain between them; a level offset common to all mixtures cancels. The measured means
    carry proxy noise, E[q_ij] = tau2 * TV(w_i, w_j) + noise_var * (1/n_i + 1/n_j), so

        tau2 = max(mean(q_ij) - mean(noise_var * (1/n_i + 1/n_j)), 0) / mean(TV(w_i, w_j)).

    0 when that model has fewer than 3 residuals. The hedge adds tau2 * TV(start, w)
    to the bootstrap variance of the gain at w. This is the error of one rung of extrapolation; the
    final run usually lies further away, so it is a floor, not a bound.
    """
    r = gate.residuals.get(model or ("law" if gate.use_law else "single"), np.zeros(0))
    Wm, n = gate.weights, gate.counts
    if len(r) < 3:
        return 0.0
    i, j = np.triu_indices(len(r), 1)
    q = (r[i] - r[j]) ** 2
    d = 0.5 * np.abs(Wm[i] - Wm[j]).sum(axis=1)
    noise = gate.noise_var * (1.0 / n[i] + 1.0 / n[j])
    if d.mean() <= 0:
        return 0.0
    return float(max(q.mean() - noise.mean(), 0.0) / d.mean())


@dataclass
class Hedge:
    """The point chosen on the path from a safe start to the law's optimum."""

    weights: np.ndarray
    lam: float
    """0: the start mixture; 1: the unconstrained optimum."""
    gain: float
    """Predicted final-scale target of the start minus that of the chosen point (> 0: better)."""
    gain_sd: float
    """sd of that predicted gain: sqrt(bootstrap variance + transfer variance)."""
    path: list[dict] = field(default_factory=list)
    """Every point tried: lam, predicted gain, its sd (and both parts), the score."""
    boot_sd: float = 0.0
    """The bootstrap part of `gain_sd` at the chosen point."""
    transfer_sd: float = 0.0
    """The transfer part of `gain_sd` at the chosen point: sqrt(tau2 * TV(start, point))."""


def hedge(start: np.ndarray, optimum: np.ndarray, laws: Sequence[ScaleAwareLaw], s_final: float,
          kappa: float = 1.0, steps: int = 21, transfer_tau2: float = 0.0) -> Hedge:
    """The mixture on the segment start -> optimum with the largest lower-confidence predicted gain.

    For each lam in [0, 1], the bootstrap laws predict the final-scale gain over `start`; the score
    is mean - kappa * sd with sd^2 = (bootstrap variance of that paired gain) + transfer_tau2 *
    TV(start, point) (see `transfer_tau2`). lam = 0 scores exactly 0, so the hedge never picks a
    point the laws cannot vouch for. Both ends must be feasible (within the caps); so is the segment.
    """
    start, optimum = np.asarray(start, float), np.asarray(optimum, float)
    if not laws:
        return Hedge(start.copy(), 0.0, 0.0, 0.0, [])
    lams = np.linspace(0.0, 1.0, steps)
    P = np.array([(1 - a) * start + a * optimum for a in lams])
    preds = np.array([law.predict_at(np.vstack([start[None], P]), s_final) for law in laws])
    gains = preds[:, :1] - preds[:, 1:]  # B x steps: start minus point
    mean = gains.mean(axis=0)
    boot = gains.std(axis=0, ddof=1) if len(laws) > 1 else np.zeros(steps)
    tr = np.sqrt(max(float(transfer_tau2), 0.0) * 0.5 * np.abs(P - start).sum(axis=1))
    sd = np.sqrt(boot ** 2 + tr ** 2)
    score = mean - kappa * sd
    i = int(np.argmax(score))
    path = [{"lam": float(a), "gain": float(m), "gain_sd": float(d), "boot_sd": float(b), "transfer_sd": float(t),
             "score": float(c)} for a, m, d, b, t, c in zip(lams, mean, sd, boot, tr, score)]
    w = P[i] / P[i].sum()
    return Hedge(w, float(lams[i]), float(mean[i]), float(sd[i]), path, float(boot[i]), float(tr[i]))
