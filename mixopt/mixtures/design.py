"""Mixtures to train proxies on: token caps, reference mixtures and a RegMix-style design.

A mixture is a weight vector on the probability simplex over ``k`` data domains.  A run that reads
``budget_tokens`` tokens may read domain ``i`` at most ``max_epochs`` times, so its weight is
capped at ``max_epochs * train_tokens[i] / budget_tokens`` (:func:`token_caps`).  Every function
here returns mixtures that respect such caps, or raises ``ValueError`` when no mixture can
(the caps sum to less than one).

Pure numpy: no deep-learning imports in this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from mixopt.mixtures.hierarchy import Hierarchy

_TOL = 1e-9
_DEDUP_DECIMALS = 4


def _as_vector(x: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(x, dtype=float).ravel()
    if v.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite")
    return v


def check_caps(caps: Sequence[float] | np.ndarray | None, k: int) -> np.ndarray:
    """Validated caps (ones when ``None``); ``ValueError`` if infeasible (sum < 1)."""
    if caps is None:
        return np.ones(k)
    c = _as_vector(caps, "caps")
    if c.size != k:
        raise ValueError(f"caps has {c.size} entries for {k} domains")
    if np.any(c < 0):
        raise ValueError("caps must be non-negative")
    c = np.minimum(c, 1.0)
    if c.sum() < 1.0 - _TOL:
        raise ValueError(
            f"infeasible caps: they sum to {c.sum():.6g} < 1, so no mixture can respect them "
            "(the token budget needs more data than the domains hold at max_epochs; "
            "lower the budget, raise max_epochs or add data)")
    return c


def token_caps(train_tokens: Sequence[float] | np.ndarray, budget_tokens: float,
               max_epochs: float) -> np.ndarray:
    """Per-domain maximum weight ``min(1, max_epochs * train_tokens / budget_tokens)``.

    A run of ``budget_tokens`` tokens then reads no domain more than ``max_epochs`` times.
    """
    t = _as_vector(train_tokens, "train_tokens")
    if np.any(t < 0):
        raise ValueError("train_tokens must be non-negative")
    if budget_tokens <= 0:
        raise ValueError(f"budget_tokens must be positive, got {budget_tokens}")
    if max_epochs <= 0:
        raise ValueError(f"max_epochs must be positive, got {max_epochs}")
    return np.minimum(1.0, max_epochs * t / float(budget_tokens))


def project_to_caps(w: Sequence[float] | np.ndarray, caps: Sequence[float] | np.ndarray) -> np.ndarray:
    """A feasible mixture close to ``w``: on the simplex with ``0 <= p <= caps``.

    ``w`` is first clipped at zero and normalised (all-zero becomes uniform).  Weights above their
    cap are then clipped and the excess is handed to the domains below their cap in proportion to
    their weights (or to their remaining room when they all have weight zero), repeating until no
    cap is exceeded (at most ``k`` rounds).  A feasible ``w`` comes back unchanged.
    Raises ``ValueError`` if ``sum(caps) < 1``.
    """
    p = np.clip(_as_vector(w, "w"), 0.0, None)
    c = check_caps(caps, p.size)
    p = p / p.sum() if p.sum() > 0 else np.full(p.size, 1.0 / p.size)
    for _ in range(p.size + 1):
        over = p > c
        if not over.any():
            break
        excess = float(np.sum(p[over] - c[over]))
        p[over] = c[over]
        free = p < c - _TOL
        share = p * free
        if share.sum() <= 0:
            share = (c - p) * free
        if share.sum() <= 0:  # every domain is at its cap: the excess is rounding noise
            break
        p = p + excess * share / share.sum()
    p = np.minimum(p, c)
    # Remove the rounding residue of the loop where there is room for it.
    gap = 1.0 - p.sum()
    room = c - p if gap > 0 else p
    if abs(gap) > 0 and room.sum() > 0:
        p = p + gap * room / room.sum()
    return np.clip(p, 0.0, c)


def natural_mixture(train_tokens: Sequence[float] | np.ndarray,
                    caps: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
    """Token-proportional mixture (each domain weighted by its size), projected onto the caps."""
    t = _as_vector(train_tokens, "train_tokens")
    if np.any(t < 0) or t.sum() <= 0:
        raise ValueError("train_tokens must be non-negative with a positive total")
    return project_to_caps(t / t.sum(), check_caps(caps, t.size))


def stratified_mixture(k: int, caps: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
    """Uniform mixture over ``k`` domains, projected onto the caps."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return project_to_caps(np.full(k, 1.0 / k), check_caps(caps, k))


def _dedup_key(row: np.ndarray) -> bytes:
    return np.round(row, _DEDUP_DECIMALS).tobytes()


def _zero_small(W: np.ndarray, min_weight: float) -> np.ndarray:
    """Zero weights below ``min_weight`` and renormalise rows (rows that vanish become NaN)."""
    W = np.where(W < min_weight, 0.0, W)
    s = W.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return W / s


def draw_dirichlet(prior: np.ndarray, m: int, rng: np.random.Generator,
                   concentration_min: float = 0.1, concentration_max: float = 5.0,
                   min_weight: float = 0.0, keep_invalid: bool = False) -> np.ndarray:
    """``m`` Dirichlet draws around ``prior`` with a log-uniform concentration sweep.

    Row ``i`` is drawn from ``Dirichlet(alpha = prior * s_i * k)`` with ``log s_i`` uniform in
    ``[log concentration_min, log concentration_max]`` (prior entries are floored so that alpha
    is at least 1e-3).  Weights below ``min_weight`` are zeroed and rows renormalised.  Rows that
    underflow to all zeros are dropped, or kept as NaN rows when ``keep_invalid`` is set.
    """
    p0 = np.asarray(prior, dtype=float)
    k = p0.size
    s = np.exp(rng.uniform(np.log(concentration_min), np.log(concentration_max), size=(m, 1)))
    W = rng.gamma(np.maximum(p0 * k, 1e-3)[None, :] * s)
    with np.errstate(invalid="ignore", divide="ignore"):
        W = _zero_small(W / W.sum(axis=1, keepdims=True), min_weight)
    if keep_invalid:
        return W
    return W[np.all(np.isfinite(W), axis=1)]


def sample_design(prior: Sequence[float] | np.ndarray, n: int,
                  caps: Sequence[float] | np.ndarray | None, seed: int,
                  concentration_min: float = 0.1, concentration_max: float = 5.0,
                  min_weight: float = 0.005, existing: np.ndarray | None = None,
                  max_draws: int | None = None, hierarchy: "Hierarchy | None" = None) -> np.ndarray:
    """RegMix-style design: ``n`` distinct mixtures around ``prior`` that respect ``caps``.

    Each candidate is drawn from ``Dirichlet(alpha = prior * s * k)``: its mean is the prior and
    its total concentration ``s * k``, so ``s`` is the concentration per domain (with a uniform
    prior, ``s = 1`` is the flat distribution on the simplex).  ``s`` is drawn log-uniformly in
    ``[concentration_min, concentration_max]`` per candidate, so the design mixes spiky mixtures
    (few domains) with mixtures close to the prior.  Weights below ``min_weight`` are zeroed and
    the row renormalised, so every weight is 0 or at least ``min_weight``.

    The prior is first projected onto the caps, so draws are centred on a feasible mixture.
    Candidates that exceed a cap are rejected and redrawn; when caps are so tight that fewer than
    5 % of draws pass, rejected draws are projected onto the caps instead (:func:`project_to_caps`)
    and kept if they still satisfy ``min_weight``.  Domains whose cap is below ``min_weight`` are
    never used, unless the other caps cannot reach one.  Rows that round (to 1e-4) to a row already
    in the design or in ``existing`` are dropped.  The result is a deterministic function of the
    arguments.

    Raises ``ValueError`` when the caps sum to less than one, or when ``n`` distinct feasible
    mixtures could not be found within ``max_draws`` draws (default ``1000 + 200 n``).

    With a ``hierarchy`` (:class:`~mixopt.mixtures.hierarchy.Hierarchy`, for ``source:topic``
    domains) the draws are two-level (sources, then topics within each source, each with its own
    sweep; see :meth:`Hierarchy.draw`), projections keep frozen sources' topic proportions, and the
    topics of a frozen source are exempt from ``min_weight`` (their proportions are given).
    Without one, the design is exactly the flat one.
    """
    p0, c = _design_inputs(prior, n, caps, concentration_min, concentration_max, min_weight)
    k = p0.size
    free = np.ones(k, dtype=bool) if hierarchy is None else hierarchy.free_mask
    usable = np.where((c >= min_weight) | ~free, c, 0.0)
    if usable.sum() >= 1.0 - _TOL:
        c = usable
    project = project_to_caps if hierarchy is None else hierarchy.project
    p0 = project(p0, c)  # centre the draws on a feasible mixture
    seen: set[bytes] = set()
    if existing is not None and len(existing):
        ex = np.asarray(existing, dtype=float).reshape(-1, k)
        seen.update(_dedup_key(r) for r in ex)
    rng = np.random.default_rng(seed)
    limit = max_draws if max_draws is not None else 1000 + 200 * n
    rows: list[np.ndarray] = []
    draws = accepted = 0
    while len(rows) < n:
        if draws >= limit:
            raise ValueError(
                f"could only find {len(rows)} of {n} distinct feasible mixtures in {draws} draws; "
                "the caps leave too little room (or n is too large for them)")
        m = int(min(max(64, 2 * (n - len(rows))), limit - draws))
        if hierarchy is None:
            W = draw_dirichlet(p0, m, rng, concentration_min, concentration_max, min_weight,
                               keep_invalid=True)
        else:
            W = hierarchy.draw(p0, m, rng, min_weight)
        draws += m
        ok = np.all(np.isfinite(W), axis=1)
        feasible = ok & np.all(W <= c + _TOL, axis=1)
        accepted += int(feasible.sum())
        projecting = draws >= 200 and accepted < 0.05 * draws
        _keep_new(rows, n, seen, W[ok], feasible[ok], (lambda r: project(r, c)) if projecting else None,
                  min_weight, free)
    return np.array(rows, dtype=float).reshape(n, k)


def _design_inputs(prior: Sequence[float] | np.ndarray, n: int, caps: Sequence[float] | np.ndarray | None,
                   concentration_min: float, concentration_max: float,
                   min_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """`sample_design`'s arguments checked: the normalised prior and the validated caps."""
    p0 = _as_vector(prior, "prior")
    if np.any(p0 < 0) or p0.sum() <= 0:
        raise ValueError("prior must be non-negative with a positive sum")
    k = p0.size
    p0 = p0 / p0.sum()
    c = check_caps(caps, k)
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if not 0 < concentration_min <= concentration_max:
        raise ValueError("need 0 < concentration_min <= concentration_max")
    if not 0 <= min_weight * k < 1:
        raise ValueError(f"min_weight must be in [0, 1/k) = [0, {1 / k:.4g}), got {min_weight}")
    return p0, c


def _keep_new(rows: list[np.ndarray], n: int, seen: set[bytes], W: np.ndarray, fits: np.ndarray,
              project, min_weight: float, free: np.ndarray) -> None:
    """Append to `rows` (up to `n`) the draws of `W` that fit the caps, or (with `project`, when caps
    reject most draws) their projections that keep `min_weight`; none that repeats a `seen` row."""
    for row, fit in zip(W, fits):
        if not fit:
            if project is None:
                continue
            row = project(row)
            if np.any((row > 0) & (row < min_weight - _TOL) & free):
                continue
        key = _dedup_key(row)
        if key in seen:
            continue
        seen.add(key)
        rows.append(row)
        if len(rows) == n:
            return
