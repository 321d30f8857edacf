"""Propose a mixture from a fitted regressor (or from the runs themselves).

* :func:`propose_regmix` — RegMix's recipe: score many Dirichlet candidates around the prior with
  the regressor and average the ``top_k`` best.
* :func:`propose_exact` — minimise ``prediction + kl_weight * KL(p || prior)`` over the capped
  simplex with SLSQP from several starts (meant for the smooth mixing law, works for any model).
* :func:`propose_best_seen` — the best mixture actually trained.

Each is registered by name next to it (:data:`PROPOSERS`, ``@register_proposer``) with a uniform
call, ``proposer(ProposerInputs) -> Proposal``; ``final_scale=True`` marks a proposer the fit step
runs through the final-scale choice (scale-aware law, bootstrap, hedge: :mod:`mixopt.mixtures.choose`)
when the chosen regressor can be refitted from ``(X, y)`` alone, ``from_choice`` how it then turns that
choice's proposal into its own (``bagged``: the mean of the bootstrap proposals).  The config's
``proposer.kind`` is checked against the registered names.

Every proposal lies on the simplex with ``0 <= weights <= caps``.  With a ``hierarchy`` that freezes
some sources' topic proportions (:mod:`mixopt.mixtures.hierarchy`), every candidate and every proposal
keeps them: the proposers then search the reduced space (one coordinate per frozen source).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from scipy.optimize import minimize

from mixopt.mixtures.design import check_caps, draw_dirichlet, project_to_caps, stratified_mixture
from mixopt.mixtures.registry import Registry

if TYPE_CHECKING:
    from mixopt.mixtures.hierarchy import Hierarchy

ACTIVE_TOL = 1e-6
_FEAS_TOL = 1e-9
_CHUNK = 8192


@dataclass
class Proposal:
    """A proposed mixture and how it was found."""

    weights: np.ndarray
    """The mixture, on the simplex and within the caps."""
    predicted: float
    """The model's prediction at ``weights`` (for best-seen: the observed loss)."""
    method: str
    """``"regmix"``, ``"exact"`` or ``"best_seen"``."""
    regressor: str
    """Name of the fitted regressor used (``"none"`` for best-seen)."""
    caps_active: list[bool]
    """Per domain: is the weight within 1e-6 of its cap?"""
    details: dict[str, Any] = field(default_factory=dict)
    """Method-specific extras (candidate counts, objective values, ...); JSON-serialisable."""


@dataclass
class ProposerInputs:
    """What any registered proposer may use (the fit step fills it)."""

    model: Any
    """The chosen regressor, fitted on ``(X, y)``."""
    X: np.ndarray
    """The trained mixtures (target-size proxies, one row per mixture)."""
    y: np.ndarray
    """Their target losses."""
    prior: np.ndarray
    """The natural (token-proportional) mixture."""
    caps: np.ndarray
    """Per-domain caps at the final run's budget."""
    seed: int = 0
    n_samples: int = 50_000
    top_k: int = 100
    kl_weight: float = 0.0
    hierarchy: "Hierarchy | None" = None
    """Frozen topic proportions to keep (None: none)."""


@dataclass(frozen=True)
class ProposerEntry:
    """A registered proposer."""

    name: str
    propose: Callable[[ProposerInputs], Proposal]
    """The plain (single-scale) proposal."""
    final_scale: bool = False
    """The fit step proposes through the final-scale choice when the regressor allows it."""
    from_choice: Callable[[Proposal, Any, np.ndarray, "Hierarchy | None"], Proposal] | None = None
    """With `final_scale`: ``(proposal, choice, caps, hierarchy) -> proposal`` made from the choice."""
    summary: str = ""


PROPOSERS: Registry[ProposerEntry] = Registry("proposer", ("mixopt.mixtures.proposers",))
"""Every proposer, by name (`proposer.kind`)."""


def register_proposer(name: str, *, final_scale: bool = False, from_choice: Callable | None = None,
                      summary: str = "") -> Callable:
    """Decorator: register ``fn(ProposerInputs) -> Proposal`` as proposer `name`."""
    def decorate(fn: Callable[[ProposerInputs], Proposal]) -> Callable[[ProposerInputs], Proposal]:
        PROPOSERS.add(ProposerEntry(name, fn, final_scale, from_choice, summary), fn.__module__)
        return fn

    return decorate


def _model_name(model: Any, regressor: str | None) -> str:
    if regressor:
        return regressor
    return str(getattr(model, "choice_", None) or getattr(model, "name", None) or type(model).__name__)


def _predict(model: Any, W: np.ndarray) -> np.ndarray:
    """Predict in chunks (a GP's cross-kernel on 100k candidates would not fit in memory)."""
    out = [np.asarray(model.predict(W[i:i + _CHUNK]), dtype=float).ravel()
           for i in range(0, len(W), _CHUNK)]
    return np.concatenate(out) if out else np.zeros(0)


def _finish(w: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Snap a (nearly) feasible point exactly onto the capped simplex."""
    return project_to_caps(np.clip(w, 0.0, None), caps)


def _active(w: np.ndarray, caps: np.ndarray) -> list[bool]:
    return [bool(abs(a - b) <= ACTIVE_TOL) for a, b in zip(w, caps)]


def _prior(prior: Sequence[float] | np.ndarray) -> np.ndarray:
    p = np.asarray(prior, dtype=float).ravel()
    if p.size == 0 or np.any(~np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError("prior must be a non-negative vector with a positive sum")
    return p / p.sum()


def feasible_candidates(prior: np.ndarray, caps: np.ndarray, n_samples: int, seed: int,
                        concentration_min: float = 0.1, concentration_max: float = 5.0,
                        max_rounds: int = 20) -> tuple[np.ndarray, int]:
    """At least ``n_samples`` Dirichlet draws around ``prior`` (design sweep), then those within caps.

    Draws until ``n_samples`` candidates were drawn and at least one is feasible (at most
    ``max_rounds`` rounds); if none ever is, the projections of the draws onto the caps are used.
    Returns ``(feasible rows, number drawn)``.
    """
    rng = np.random.default_rng(seed)
    centre = project_to_caps(prior, caps)
    drawn, kept, last = 0, [], None
    for _ in range(max_rounds):
        W = draw_dirichlet(centre, max(n_samples, 1), rng, concentration_min, concentration_max)
        drawn += len(W)
        last = W
        ok = np.all(W <= caps + _FEAS_TOL, axis=1)
        kept.append(W[ok])
        if drawn >= n_samples and sum(len(x) for x in kept) > 0:
            break
    F = np.vstack(kept) if kept else np.zeros((0, len(prior)))
    if len(F) == 0:
        F = np.array([project_to_caps(w, caps) for w in last[:max(n_samples, 1)]])
    return np.vstack([F, centre[None, :]]), drawn


def propose_regmix(model: Any, prior: Sequence[float] | np.ndarray,
                   caps: Sequence[float] | np.ndarray | None, n_samples: int = 100_000,
                   top_k: int = 100, seed: int = 0, concentration_min: float = 0.1,
                   concentration_max: float = 5.0, regressor: str | None = None,
                   hierarchy: "Hierarchy | None" = None) -> Proposal:
    """RegMix's proposal: average of the ``top_k`` lowest-predicted feasible candidates.

    Candidates are Dirichlet draws around the (cap-projected) prior with the design's
    concentration sweep; those exceeding a cap are discarded.  The feasible set is convex, so the
    average respects the caps (it is snapped onto the capped simplex against rounding).
    """
    if hierarchy is not None and hierarchy.frozen:
        return _in_reduced_space(propose_regmix, hierarchy, model, prior, caps, regressor, n_samples=n_samples,
                                 top_k=top_k, seed=seed, concentration_min=concentration_min,
                                 concentration_max=concentration_max)
    p0 = _prior(prior)
    c = check_caps(caps, p0.size)
    if top_k < 1:
        raise ValueError("top_k must be at least 1")
    F, drawn = feasible_candidates(p0, c, n_samples, seed, concentration_min, concentration_max)
    pred = _predict(model, F)
    order = np.argsort(pred, kind="stable")
    top = order[: min(top_k, len(order))]
    w = _finish(F[top].mean(axis=0), c)
    predicted = float(_predict(model, w[None, :])[0])
    details = {
        "n_drawn": drawn, "n_feasible": int(len(F)), "top_k": int(len(top)),
        "top_predicted_mean": float(pred[top].mean()),
        "best_candidate": [float(v) for v in F[order[0]]],
        "best_candidate_predicted": float(pred[order[0]]),
    }
    return Proposal(w, predicted, "regmix", _model_name(model, regressor), _active(w, c), details)


@register_proposer("regmix", final_scale=True, summary="mean of the top-k of many Dirichlet candidates (RegMix)")
def _regmix(inp: ProposerInputs) -> Proposal:
    return propose_regmix(inp.model, inp.prior, inp.caps, n_samples=inp.n_samples, top_k=inp.top_k, seed=inp.seed,
                          hierarchy=inp.hierarchy)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    pp = np.clip(p, 0.0, None)
    return float(np.sum(np.where(pp > 0, pp * np.log(np.maximum(pp, 1e-300) / q), 0.0)))


def propose_exact(model: Any, prior: Sequence[float] | np.ndarray,
                  caps: Sequence[float] | np.ndarray | None, kl_weight: float = 0.0,
                  n_starts: int = 6, n_candidates: int = 20_000, seed: int = 0,
                  max_iter: int = 200, regressor: str | None = None,
                  hierarchy: "Hierarchy | None" = None) -> Proposal:
    """Minimise ``model(p) + kl_weight * KL(p || prior)`` over ``{p in simplex, 0 <= p <= caps}``.

    SLSQP (finite-difference gradients) from several starts: the best RegMix candidate among
    ``n_candidates`` draws, the RegMix top-100 average, the cap-projected prior, the uniform
    mixture, and further good candidates up to ``n_starts``.  Each result is snapped onto the
    capped simplex and the start points themselves compete too, so the answer is never worse than
    the best start.  Prior entries are floored at 1e-8 inside the KL term.
    """
    if hierarchy is not None and hierarchy.frozen:
        return _in_reduced_space(propose_exact, hierarchy, model, prior, caps, regressor, kl_weight=kl_weight,
                                 n_starts=n_starts, n_candidates=n_candidates, seed=seed, max_iter=max_iter)
    p0 = _prior(prior)
    c = check_caps(caps, p0.size)
    if kl_weight < 0:
        raise ValueError("kl_weight must be non-negative")
    q = np.maximum(p0, 1e-8)
    q = q / q.sum()

    def objective(w: np.ndarray) -> float:
        val = float(_predict(model, w[None, :])[0])
        return val + (kl_weight * _kl(w, q) if kl_weight > 0 else 0.0)

    F, _ = feasible_candidates(p0, c, n_candidates, seed)
    pred = _predict(model, F)
    order = np.argsort(pred, kind="stable")
    starts = [F[order[0]], _finish(F[order[:100]].mean(axis=0), c), project_to_caps(p0, c),
              stratified_mixture(p0.size, c)]
    starts += [F[i] for i in order[1: max(1, n_starts - len(starts)) + 1]]
    starts = starts[: max(n_starts, 1)]
    bounds = [(0.0, float(ci)) for ci in c]
    cons = [{"type": "eq", "fun": lambda w: np.sum(w) - 1.0, "jac": lambda w: np.ones_like(w)}]
    best_w, best_f, results = None, np.inf, []
    for s in starts:
        s = _finish(s, c)
        cands = [s]
        try:
            res = minimize(objective, s, method="SLSQP", bounds=bounds, constraints=cons,
                           options={"maxiter": max_iter, "ftol": 1e-10})
            if np.all(np.isfinite(res.x)):
                cands.append(_finish(res.x, c))
            results.append(bool(res.success))
        except (ValueError, np.linalg.LinAlgError):
            results.append(False)
        for w in cands:
            f = objective(w)
            if f < best_f:
                best_w, best_f = w, f
    assert best_w is not None
    predicted = float(_predict(model, best_w[None, :])[0])
    details = {"objective": float(best_f), "kl": _kl(best_w, q), "kl_weight": float(kl_weight),
               "n_starts": len(starts), "converged": results}
    return Proposal(best_w, predicted, "exact", _model_name(model, regressor), _active(best_w, c),
                    details)


@register_proposer("exact", summary="minimise the prediction + kl_weight * KL(p || prior) (SLSQP)")
def _exact(inp: ProposerInputs) -> Proposal:
    return propose_exact(inp.model, inp.prior, inp.caps, kl_weight=inp.kl_weight, hierarchy=inp.hierarchy)


def propose_best_seen(X: np.ndarray, y: np.ndarray,
                      caps: Sequence[float] | np.ndarray | None = None,
                      hierarchy: "Hierarchy | None" = None) -> Proposal:
    """The trained mixture with the lowest observed loss among those within ``caps`` (and, with a
    ``hierarchy`` that freezes sources, among those that keep the frozen topic proportions).

    Rows are renormalised to sum to one (logged weights are often rounded).  Raises
    ``ValueError`` when no row respects the caps.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    if X.ndim != 2 or len(X) != len(y) or len(y) == 0:
        raise ValueError("X must be (n, k) with n == len(y) > 0")
    c = check_caps(caps, X.shape[1])
    P = np.clip(X, 0.0, None)
    P = P / np.maximum(P.sum(axis=1, keepdims=True), 1e-300)
    ok = np.all(P <= c + ACTIVE_TOL, axis=1) & np.isfinite(y) & (X.sum(axis=1) > 0)
    frozen = hierarchy is not None and bool(hierarchy.frozen)
    if frozen:
        ok &= np.array([hierarchy.respects(p, tol=1e-5) for p in P], dtype=bool)
    if not ok.any():
        raise ValueError("no trained mixture respects the caps" + (" and the frozen topic weights" if frozen else ""))
    idx = np.flatnonzero(ok)
    i = int(idx[np.argmin(y[idx])])
    w = np.minimum(P[i], c)
    w = hierarchy.project(w, c) if frozen else project_to_caps(w, c)
    return Proposal(w, float(y[i]), "best_seen", "none", _active(w, c),
                    {"index": i, "n_feasible": int(ok.sum())})


@register_proposer("best_seen", summary="the best mixture actually trained")
def _best_seen(inp: ProposerInputs) -> Proposal:
    return propose_best_seen(inp.X, inp.y, caps=inp.caps, hierarchy=inp.hierarchy)


def _bagged_from_choice(prop: Proposal, choice: Any, caps: np.ndarray, hierarchy: "Hierarchy | None") -> Proposal:
    """The mean of the bootstrap proposals (kept on the frozen topic weights), when there is a bootstrap."""
    if choice.boot is not None:
        prop.weights = choice.boot.bagged if hierarchy is None else hierarchy.project(choice.boot.bagged, caps)
        prop.predicted = float(choice.law_predict(prop.weights))
    return prop


register_proposer("bagged", final_scale=True, from_choice=_bagged_from_choice,  # without a choice: regmix
                  summary="mean of the bootstrap proposals (regmix on refits to resampled proxies)")(_regmix)


def _in_reduced_space(proposer: Any, h: "Hierarchy", model: Any, prior: Sequence[float] | np.ndarray,
                      caps: Sequence[float] | np.ndarray | None, regressor: str | None, **kwargs: Any) -> Proposal:
    """Run `proposer` on the reduced space of `h` (frozen sources as one coordinate each) and bring its
    answer back to the domains: every candidate, and so the proposal, keeps the frozen proportions."""
    from mixopt.mixtures.hierarchy import ReducedModel

    c = check_caps(caps, h.k)
    prop = proposer(ReducedModel(model, h), h.reduce(_prior(prior)), h.reduced_caps(c), regressor=regressor,
                    **kwargs)
    w = h.project(h.expand(prop.weights), c)
    details = dict(prop.details)
    if "best_candidate" in details:
        details["best_candidate"] = [float(v) for v in h.expand(np.asarray(details["best_candidate"]))]
    details["frozen_sources"] = [h.sources[j] for j in sorted(h.frozen)]
    return Proposal(w, float(_predict(model, w[None, :])[0]), prop.method, _model_name(model, regressor),
                    _active(w, c), details)
