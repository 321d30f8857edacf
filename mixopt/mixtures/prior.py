"""A zero-proxy prior: how close each domain, and any mixture, is to the target's text (numpy/scipy only).

The inputs are bucket counts of hashed n-gram features (`mixopt.corpus.similarity` computes them, as in
DSIR, Xie et al. 2023): one row per training domain (its train split) and the target's bucket
distribution `q` (its held-out text, each term weighted by its weight in the target). No proxy is
trained, so the prior is available before the swarm; its scores can be compared with the swarm's
measured target losses by a plain Spearman (the prior never sees a proxy result, so there is nothing
to hold out).

Two methods, both scoring a mixture `w` (lower = closer to the target) through `m(w) = sum_i w_i p_i`,
the mixture's bucket distribution:

- `xent` ("mixture cross-entropy"): each domain is a smoothed categorical over buckets,
  `p_i = (1 - eps) c_i / |c_i| + eps / B` (mixing with the uniform distribution at a fixed `eps` makes
  the penalty for a target bucket no domain has the same for every mixture). `score(w) = -sum_b q_b log
  m_b(w)`, the cross-entropy of a unigram-over-buckets model of the mixture on the target: a zero-proxy
  stand-in for the target loss. It is convex in `w`; the prior mixture is its minimiser over the
  simplex (EM on the mixture weights: `w_i <- w_i sum_b q_b p_ib / m_b`, which never leaves the
  simplex and decreases the score monotonically), or, when per-domain caps bind, SLSQP with the exact
  gradient started from the capped EM solution.
- `js`, `hellinger`, `tv` (distribution distances, an embedding-free stand-in for optimal transport
  between token distributions): `score(w) = D(q, m(w))` with Jensen-Shannon divergence (bits),
  Hellinger or total-variation distance, unsmoothed. A domain's score is `d_i = D(q, p_i)`; the prior
  weights are `softmax(-d_i / T)` with `T = mean(d) / ln(contrast)`: a domain at distance 0 would get
  `contrast` (default 100) times the weight of one at the domains' mean distance. The temperature is
  fixed this way, without any swarm result (scaling by the mean keeps near-equal distances near-uniform
  instead of blowing their small differences up), then the weights are projected onto the caps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import xlogy

from mixopt.mixtures.design import check_caps, project_to_caps

METHODS = ("xent", "js", "hellinger", "tv")
"""`xent`: mixture cross-entropy (method A); the others: distances between bucket distributions (method B)."""
DEFAULT_EPS = 0.01
"""Weight of the uniform distribution mixed into each domain's bucket distribution (method A)."""
DEFAULT_CONTRAST = 100.0
"""Method B: weight ratio between the nearest and the farthest domain, which sets the softmax temperature."""
_CELLS = 1 << 22  # mixtures x buckets evaluated at once by a score function (32 MiB of float64)
_TOL = 1e-9


@dataclass
class PriorResult:
    """The prior: per-domain scores, the prior mixture and a score function for any mixtures."""

    names: list[str]
    """Domain names, in the order of the weights."""
    domain_scores: np.ndarray
    """Each domain's score alone (the pure-domain mixture's score; lower = closer to the target)."""
    weights: np.ndarray
    """The prior mixture (on the simplex, within the caps when given)."""
    method: str
    """One of `METHODS`."""
    score_fn: Callable[[np.ndarray], np.ndarray]
    """`score_fn(W)`: the score of each row of `W` (n x k mixtures); lower = predicted better."""
    details: dict = field(default_factory=dict)
    """Method settings and diagnostics (eps, temperature, iterations, the prior's own score)."""


def bucket_distributions(counts: np.ndarray, what: str = "domain") -> np.ndarray:
    """Rows of non-negative counts normalised to distributions; a row of zeros is a ValueError."""
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ValueError(f"{what} bucket counts must be finite and >= 0")
    s = c.sum(axis=1)
    if np.any(s <= 0):
        raise ValueError(f"{what} {int(np.flatnonzero(s <= 0)[0])} has no features (all bucket counts are 0)")
    return c / s[:, None]


def smooth(P: np.ndarray, eps: float = DEFAULT_EPS) -> np.ndarray:
    """`(1 - eps) P + eps / B`: every bucket gets probability at least eps / B."""
    if not 0.0 < eps < 1.0:
        raise ValueError(f"eps must be in (0, 1), got {eps}")
    return (1.0 - eps) * P + eps / P.shape[1]


def _check_mixtures(W: np.ndarray, k: int) -> np.ndarray:
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    if W.shape[1] != k:
        raise ValueError(f"mixtures have {W.shape[1]} weights for {k} domains")
    if not np.all(np.isfinite(W)) or np.any(W < 0):
        raise ValueError("mixture weights must be finite and >= 0")
    s = W.sum(axis=1)
    if np.any(s <= 0):
        raise ValueError("a mixture's weights must not all be zero")
    return W / s[:, None]


def mixture_cross_entropy(W: np.ndarray, P: np.ndarray, q: np.ndarray) -> np.ndarray:
    """`-sum_b q_b log (W P)_b` for each row of `W` (n x k); `P` (k x B) must be smoothed (no zero)."""
    W = _check_mixtures(W, P.shape[0])
    support = q > 0
    R, qs = P[:, support], q[support]
    out = np.empty(len(W))
    step = max(1, _CELLS // max(R.shape[1], 1))
    for lo in range(0, len(W), step):
        out[lo: lo + step] = -(np.log(W[lo: lo + step] @ R) @ qs)
    return out


def _distance(q: np.ndarray, M: np.ndarray, kind: str) -> np.ndarray:
    if kind == "tv":
        return 0.5 * np.abs(M - q).sum(axis=1)
    if kind == "hellinger":
        return np.sqrt(np.maximum(0.5 * ((np.sqrt(M) - np.sqrt(q)) ** 2).sum(axis=1), 0.0))
    mid = 0.5 * (M + q)
    kl_q = (xlogy(q, q) - xlogy(q, mid)).sum(axis=1)
    kl_m = (xlogy(M, M) - xlogy(M, mid)).sum(axis=1)
    return np.maximum(0.5 * (kl_q + kl_m), 0.0) / np.log(2.0)


def mixture_distance(W: np.ndarray, P: np.ndarray, q: np.ndarray, kind: str = "js") -> np.ndarray:
    """`D(q, W P)` for each row of `W`: Jensen-Shannon divergence in bits (`js`), Hellinger or total variation."""
    if kind not in ("js", "hellinger", "tv"):
        raise ValueError(f"unknown distance {kind!r}; expected js, hellinger or tv")
    W = _check_mixtures(W, P.shape[0])
    used = (q > 0) | (P > 0).any(axis=0)
    R, qs = P[:, used], q[used]
    out = np.empty(len(W))
    step = max(1, _CELLS // max(R.shape[1], 1))
    for lo in range(0, len(W), step):
        out[lo: lo + step] = _distance(qs, W[lo: lo + step] @ R, kind)
    return out


def fit_cross_entropy(P: np.ndarray, q: np.ndarray, caps: np.ndarray | None = None, max_iter: int = 3000,
                      tol: float = 1e-9) -> tuple[np.ndarray, dict]:
    """The mixture minimising `mixture_cross_entropy` over the simplex (within `caps` when given).

    EM from the uniform mixture until no weight moves by more than `tol`; if the result exceeds a cap,
    SLSQP with the exact gradient from its projection onto the caps. Deterministic."""
    k = P.shape[0]
    support = q > 0
    R, qs = P[:, support], q[support]
    w = np.full(k, 1.0 / k)
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        new = w * (R @ (qs / (w @ R)))
        new /= new.sum()
        moved = float(np.max(np.abs(new - w)))
        w = new
        if moved < tol:
            break
    info = {"em_iterations": iterations, "solver": "em"}
    c = check_caps(caps, k)
    if np.all(w <= c + _TOL):
        return w, info

    def f(x: np.ndarray) -> tuple[float, np.ndarray]:
        m = np.maximum(x @ R, 1e-300)
        return float(-(np.log(m) @ qs)), -(R @ (qs / m))

    start = project_to_caps(w, c)
    res = minimize(f, start, jac=True, method="SLSQP", bounds=[(0.0, float(ci)) for ci in c],
                   constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1.0, "jac": lambda x: np.ones_like(x)}],
                   options={"maxiter": 500, "ftol": 1e-12})
    x = project_to_caps(np.clip(res.x, 0.0, None), c) if np.all(np.isfinite(res.x)) else start
    best = x if f(x)[0] <= f(start)[0] else start
    info.update(solver="slsqp", slsqp_success=bool(res.success), slsqp_iterations=int(res.nit))
    return best, info


def softmax_weights(d: np.ndarray, caps: np.ndarray | None = None,
                    contrast: float = DEFAULT_CONTRAST) -> tuple[np.ndarray, float]:
    """`softmax(-d / T)` with `T = mean(d) / ln(contrast)`, projected onto `caps`; and `T` (0 when every
    distance is 0: then the uniform mixture)."""
    if contrast <= 1:
        raise ValueError(f"contrast must be > 1, got {contrast}")
    d = np.asarray(d, dtype=np.float64)
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ValueError("distances must be finite and >= 0")
    scale = float(d.mean())
    if scale <= 0:
        w, t = np.full(d.size, 1.0 / d.size), 0.0
    else:
        t = scale / np.log(contrast)
        z = np.exp(-(d - d.min()) / t)
        w = z / z.sum()
    return project_to_caps(w, check_caps(caps, d.size)), t


def prior_from_counts(domain_counts: np.ndarray, target: np.ndarray, names: Sequence[str] | None = None,
                      method: str = "xent", caps: Sequence[float] | np.ndarray | None = None,
                      eps: float = DEFAULT_EPS, contrast: float = DEFAULT_CONTRAST) -> PriorResult:
    """The prior from bucket counts: `domain_counts` (k x B, one row per domain) and the target's
    bucket distribution or counts `target` (B,). `method` is one of `METHODS`; `caps` bound the weights."""
    if method not in METHODS:
        raise ValueError(f"unknown prior method {method!r}; expected one of {list(METHODS)}")
    P = bucket_distributions(domain_counts)
    k, b = P.shape
    names = list(names) if names is not None else [f"d{i}" for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} names for {k} domains")
    t = np.asarray(target, dtype=np.float64).ravel()
    if t.size != b:
        raise ValueError(f"target has {t.size} buckets, the domains {b}")
    q = bucket_distributions(t[None, :], "target")[0]
    c = check_caps(caps, k)
    eye = np.eye(k)
    if method == "xent":
        Ps = smooth(P, eps)
        w, info = fit_cross_entropy(Ps, q, c)

        def score(W: np.ndarray) -> np.ndarray:
            return mixture_cross_entropy(W, Ps, q)

        details = {"eps": eps, **info}
    else:
        def score(W: np.ndarray) -> np.ndarray:
            return mixture_distance(W, P, q, method)

        w, temperature = softmax_weights(score(eye), c, contrast)
        details = {"contrast": contrast, "temperature": temperature}
    details.update(buckets=b, prior_score=float(score(w[None, :])[0]))
    return PriorResult(names, score(eye), w, method, score, details)
