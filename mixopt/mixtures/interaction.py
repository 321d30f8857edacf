"""How domains interact, seen from the swarm, and how two estimates of it agree.

The swarm trains proxies on many mixtures and measures every domain's held-out loss, so each
domain's loss can be modelled as a function of the mixture: `L_i(p)` (by default the data mixing law
`c + exp(b + t . p)`, one per domain; `mixopt.mixtures.mixing_law`). At a fixed token budget the
mixture lives on the simplex, where "more of domain j" always means "less of something else", so the
swarm can only say whether j helps i *more than the others do*. The swarm estimate is therefore

    S[i, j] = -dL_i/dd  along  d = e_j - u_{-i}   at the point p0 (the proposal),

where `u_{-i}` is the uniform mixture over the domains other than i: moving a unit of weight from
the average other domain to j lowers domain i's loss by S[i, j] (positive: j helps i more than the
average other domain; negative: less, or it hurts). S[i, i] is the gain from moving weight from the
others to i itself. The derivative is a central finite difference of any regressor's prediction
(one-sided at the simplex's edge), so it works for the law and for the chosen regressor alike.

The gradient estimate (`mixopt.models.interaction`) is an absolute cosine; `row_contrast` turns it
into the same "relative to the average other domain" form so the two can be compared entry by entry
(`agreement`: sign agreement and Spearman rho over the off-diagonal entries).

Pure numpy/scipy: no deep-learning imports here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from mixopt.mixtures.mixing_law import MixingLawRegressor

Predict = Callable[[np.ndarray], np.ndarray]
INTERIOR = 0.05
"""`swarm_interaction` differentiates at (1 - INTERIOR) * point + INTERIOR * uniform: a proposal with
zero weights sits on the simplex's edge, where moving weight between two absent domains is impossible."""


def _direction(k: int, i: int, j: int) -> np.ndarray:
    d = np.zeros(k)
    others = [m for m in range(k) if m != i]
    d[others] -= 1.0 / len(others)
    d[j] += 1.0
    return d


def directional_effects(predict: Predict, point: np.ndarray, i: int, h: float = 1e-3) -> np.ndarray:
    """Row i of S: -dL_i/dd for d = e_j - u_{-i}, j = 0..k-1, by finite differences of `predict`
    (a function of mixtures (n, k) -> losses (n,)) around `point`, staying on the simplex."""
    p = np.asarray(point, dtype=float)
    k = len(p)
    if k < 2:
        return np.zeros(k)
    out = np.zeros(k)
    for j in range(k):
        d = _direction(k, i, j)
        neg = d < 0
        room_fwd = float(np.min(p[neg] / -d[neg])) if neg.any() else np.inf  # p + s d >= 0 for s <= room
        pos = d > 0
        room_back = float(np.min(p[pos] / d[pos])) if pos.any() else np.inf
        fwd, back = min(h, room_fwd), min(h, room_back)
        if fwd <= 0 and back <= 0:
            out[j] = np.nan
            continue
        y = predict(np.vstack([p + fwd * d, p - back * d]))
        out[j] = -(y[0] - y[1]) / (fwd + back)
    return out


def swarm_interaction(X: np.ndarray, Y: np.ndarray, point: np.ndarray,
                      regressor: Callable[[], object] | None = None) -> np.ndarray:
    """S (k x k) from mixtures `X` (n, k) and per-domain held-out losses `Y` (n, k): one regressor
    per domain (default the linear mixing law), differentiated at `point` moved `INTERIOR` of the way
    to uniform (see the module doc)."""
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    k = X.shape[1]
    p = np.asarray(point, dtype=float)
    point = (1 - INTERIOR) * p / p.sum() + INTERIOR / k  # every direction has room on the simplex
    make = regressor or (lambda: MixingLawRegressor(features="linear"))
    S = np.full((k, k), np.nan)
    for i in range(k):
        ok = np.isfinite(Y[:, i])
        if ok.sum() < k + 2:  # the law has k + 2 parameters
            continue
        model = make().fit(X[ok], Y[ok, i])  # type: ignore[attr-defined]
        S[i] = directional_effects(model.predict, point, i)  # type: ignore[attr-defined]
    return S


def row_contrast(M: np.ndarray) -> np.ndarray:
    """`M[i, j] - mean_{k != i} M[i, k]` off the diagonal (the diagonal is kept): an absolute
    effect turned into "more or less than the average other domain", the swarm estimate's form."""
    M = np.asarray(M, dtype=float)
    out = M.copy()
    k = len(M)
    for i in range(k):
        others = [m for m in range(k) if m != i]
        ref = np.nanmean(M[i, others]) if others else 0.0
        out[i, others] = M[i, others] - ref
    return out


def off_diagonal(M: np.ndarray) -> np.ndarray:
    M = np.asarray(M, dtype=float)
    return M[~np.eye(len(M), dtype=bool)]


@dataclass
class Agreement:
    """How two interaction matrices agree over their off-diagonal entries (both finite)."""

    n: int
    sign_agreement: float | None
    """Share of entries whose signs agree (entries that are exactly 0 in either count as disagreeing)."""
    spearman: float | None
    """Spearman rho between the entries (None with fewer than 3, or constant ones)."""


def agreement(a: np.ndarray, b: np.ndarray) -> Agreement:
    x, y = off_diagonal(a), off_diagonal(b)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if not len(x):
        return Agreement(0, None, None)
    sign = float(np.mean(np.sign(x) * np.sign(y) > 0))
    rho = None
    if len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
        r = spearmanr(x, y).statistic
        rho = float(r) if np.isfinite(r) else None
    return Agreement(int(len(x)), sign, rho)


def strongest_pairs(M: np.ndarray, names: list[str], n: int = 2) -> tuple[list[tuple[str, str, float]],
                                                                             list[tuple[str, str, float]]]:
    """The `n` most helping (largest positive) and most hurting (most negative) off-diagonal entries,
    as (i, j, value): training on j changes the loss of i."""
    k = len(names)
    entries = [(names[i], names[j], float(M[i, j])) for i in range(k) for j in range(k)
               if i != j and np.isfinite(M[i, j])]
    helps = sorted((e for e in entries if e[2] > 0), key=lambda e: -e[2])[:n]
    hurts = sorted((e for e in entries if e[2] < 0), key=lambda e: e[2])[:n]
    return helps, hurts
