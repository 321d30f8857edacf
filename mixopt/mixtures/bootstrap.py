"""How stable is a proposal?  Bootstrap the swarm, refit, re-propose.

A proposal fitted on 12-24 noisy proxies can move a lot when one proxy more or less is seen.
:func:`bootstrap_proposals` measures that: it resamples the rows (mixtures and their losses) with
replacement ``B`` times, refits the regressor on each resample and proposes again with the same
proposer, then reports

* the ``B`` bootstrap proposals and, per domain, their 2.5 / 97.5 % percentile interval;
* the stability number: the mean total-variation distance ``0.5 * sum |p_b - p|`` between a
  bootstrap proposal ``p_b`` and the full-data proposal ``p`` (0 = always the same mixture,
  1 = disjoint supports);
* the bagged proposal: the mean of the bootstrap proposals, snapped within the caps.

The proposer is any callable ``model -> Proposal`` (or weights); :func:`regmix_proposer` builds
the RegMix one with fewer candidates (10k instead of 100k), which keeps ``B = 100`` refits cheap.
Its candidate draw is seeded once, so every resample scores the same candidates and the spread
reflects the data, not the Monte Carlo draw.

A RegMix proposal from fewer candidates is a coarser one (the top 100 of 2,000 is the top 5 %,
not the top 0.2 % of 50,000), so a stability number from such refits partly measures the search.
:class:`CandidatePool` searches the main proposal's own candidates (the same draw, the same
``top_k``) at a fraction of the cost: score a random screen of them, then repeatedly score the
pool's nearest neighbours of the current top ``top_k`` until that set stops changing. On a smooth
model this finds the same top ``top_k`` as scoring all of them (with a screen as large as the pool
it is exactly RegMix). Everything is pure numpy / scipy on the rows given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from scipy.spatial import cKDTree

from mixopt.mixtures.design import check_caps
from mixopt.mixtures.proposers import Proposal, _active, _finish, _predict, _prior, feasible_candidates, propose_regmix

Factory = Callable[[], Any]
Proposer = Callable[[Any], "Proposal | np.ndarray"]

BOOTSTRAP_SAMPLES = 10_000
"""Candidates per RegMix proposal inside the bootstrap (the final proposal uses its own count)."""


@dataclass
class BootstrapResult:
    """Bootstrap of a proposal: the resampled proposals, their spread and the bagged mixture."""

    proposal: np.ndarray
    """The full-data proposal the bootstrap proposals are compared with."""
    proposals: np.ndarray = field(repr=False)
    """``(B, k)``: one proposal per resample that could be fitted."""
    lower: np.ndarray
    """Per domain: 2.5 % percentile of the bootstrap proposals."""
    upper: np.ndarray
    """Per domain: 97.5 % percentile of the bootstrap proposals."""
    tv: np.ndarray = field(repr=False)
    """``(B,)``: total-variation distance of each bootstrap proposal to ``proposal``."""
    stability: float
    """Mean of ``tv``: the expected move of the proposal under resampling (lower is steadier)."""
    bagged: np.ndarray
    """Mean of the bootstrap proposals, on the simplex within the caps."""
    n_failed: int
    """Resamples whose fit or proposal raised (left out of everything above)."""
    seconds: float
    """Wall time of the ``B`` refits and proposals."""


def tv_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total-variation distance ``0.5 * sum |p - q|`` along the last axis (broadcasts)."""
    return 0.5 * np.abs(np.asarray(p, dtype=float) - np.asarray(q, dtype=float)).sum(axis=-1)


def _weights(result: "Proposal | np.ndarray") -> np.ndarray:
    """The mixture of a proposer's answer (a `Proposal` or a weight vector)."""
    w = result.weights if isinstance(result, Proposal) else result
    return np.asarray(w, dtype=float).ravel()


def regmix_proposer(prior: Sequence[float] | np.ndarray, caps: Sequence[float] | np.ndarray | None,
                    n_samples: int = BOOTSTRAP_SAMPLES, top_k: int = 100, seed: int = 0,
                    **kwargs: Any) -> Proposer:
    """A ``model -> Proposal`` callable: :func:`propose_regmix` with fixed candidates and seed."""

    def propose(model: Any) -> Proposal:
        """RegMix's proposal from a fitted model."""
        return propose_regmix(model, prior, caps, n_samples=n_samples, top_k=top_k, seed=seed, **kwargs)

    return propose


class CandidatePool:
    """The RegMix candidates of one proposal (`feasible_candidates(prior, caps, n_samples, seed)`),
    drawn once, and a cheap search for the top ``top_k`` of them under any model.

    `propose(model)` scores ``n_screen`` of the candidates (a fixed random subset), then for at most
    ``max_rounds`` rounds scores the ``n_neighbours`` nearest pool neighbours (Euclidean, in weight
    space) of each of the current best ``top_k`` that are not yet scored, and stops when the best
    ``top_k`` stay the same. The proposal is their mean (snapped within the caps), as RegMix's. With a
    ``hierarchy`` that freezes sources the pool lives in its reduced space, as in `propose_regmix`.
    """

    def __init__(self, prior: Sequence[float] | np.ndarray, caps: Sequence[float] | np.ndarray | None,
                 n_samples: int = 50_000, top_k: int = 100, seed: int = 0, n_screen: int = 2_000,
                 n_neighbours: int = 16, max_rounds: int = 8, hierarchy: Any = None) -> None:
        p0 = _prior(prior)
        self.caps = check_caps(caps, p0.size)
        self.h = hierarchy if hierarchy is not None and hierarchy.frozen else None
        p, c = (self.h.reduce(p0), self.h.reduced_caps(self.caps)) if self.h else (p0, self.caps)
        self.reduced_caps = c
        self.F, _ = feasible_candidates(p, c, n_samples, seed)
        self.top_k = max(1, int(top_k))
        self.n_neighbours = max(1, min(int(n_neighbours), len(self.F)))
        self.max_rounds = int(max_rounds)
        rng = np.random.default_rng(seed + 1)
        self.screen = np.sort(rng.choice(len(self.F), size=min(max(int(n_screen), self.top_k), len(self.F)),
                                         replace=False))
        self.tree = cKDTree(self.F) if len(self.screen) < len(self.F) else None
        self.last_scored = 0
        """Candidates the last `propose` scored (the cost)."""

    def _scorer(self, model: Any) -> Any:
        if self.h is None:
            return model
        from mixopt.mixtures.hierarchy import ReducedModel

        return ReducedModel(model, self.h)

    def top(self, model: Any) -> np.ndarray:
        """Indices (into the pool) of the best ``top_k`` candidates found, best first."""
        m = self._scorer(model)
        score = np.full(len(self.F), np.inf)
        score[self.screen] = _predict(m, self.F[self.screen])
        best = np.argsort(score, kind="stable")[: self.top_k]
        for _ in range(self.max_rounds if self.tree is not None else 0):
            _, nb = self.tree.query(self.F[best], k=self.n_neighbours)
            new = np.setdiff1d(np.unique(nb), np.flatnonzero(np.isfinite(score)))
            if len(new) == 0:
                break
            score[new] = _predict(m, self.F[new])
            nxt = np.argsort(score, kind="stable")[: self.top_k]
            if np.array_equal(np.sort(nxt), np.sort(best)):
                break
            best = nxt
        self.last_scored = int(np.isfinite(score).sum())
        return best

    def propose(self, model: Any) -> np.ndarray:
        """The mean of the best ``top_k`` found, on the capped simplex (full domain space)."""
        w = _finish(self.F[self.top(model)].mean(axis=0), self.reduced_caps)
        return self.h.project(self.h.expand(w), self.caps) if self.h else w


def bootstrap_proposals(X: np.ndarray, y: np.ndarray, factory: Factory, proposer: Proposer,
                        caps: Sequence[float] | np.ndarray | None, B: int = 100, seed: int = 0,
                        proposal: np.ndarray | None = None) -> BootstrapResult:
    """Resample the rows ``B`` times, refit ``factory()`` and re-propose with ``proposer``.

    ``proposal`` is the full-data proposal to compare with; by default it is made here by the
    same proposer from a fit on all rows (so both sides use the same candidate count).  Row
    resamples come from ``numpy.random.default_rng(seed)``.  A resample whose fit or proposal
    raises ``ValueError``, ``LinAlgError`` or ``RuntimeError`` is counted in ``n_failed``; if all
    do, ``RuntimeError``.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    if X.ndim != 2 or len(X) != len(y) or len(y) < 2:
        raise ValueError(f"X must be (n, k) with n == len(y) >= 2; got X {X.shape}, y {y.shape}")
    if B < 1:
        raise ValueError("B must be at least 1")
    c = check_caps(caps, X.shape[1])
    if proposal is None:
        proposal = _weights(proposer(factory().fit(X, y)))
    proposal = np.asarray(proposal, dtype=float).ravel()
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    found, failed = [], 0
    for _ in range(B):
        rows = rng.integers(0, len(y), size=len(y))
        try:
            found.append(_weights(proposer(factory().fit(X[rows], y[rows]))))
        except (ValueError, np.linalg.LinAlgError, RuntimeError):
            failed += 1
    if not found:
        raise RuntimeError(f"all {B} bootstrap refits failed")
    return summarise(found, proposal, c, failed, time.perf_counter() - t0)


def summarise(found: Sequence[np.ndarray], proposal: np.ndarray, caps: np.ndarray, n_failed: int,
              seconds: float) -> BootstrapResult:
    """The bootstrap proposals `found` against `proposal`: intervals, TV distances, stability, bagged."""
    P = np.vstack(found)
    tv = tv_distance(P, proposal)
    lower, upper = np.percentile(P, [2.5, 97.5], axis=0)
    return BootstrapResult(proposal=np.asarray(proposal, dtype=float), proposals=P, lower=lower, upper=upper,
                           tv=tv, stability=float(tv.mean()), bagged=_finish(P.mean(axis=0), caps),
                           n_failed=n_failed, seconds=seconds)


def bagged_proposal(result: BootstrapResult, model: Any, caps: Sequence[float] | np.ndarray | None,
                    regressor: str | None = None) -> Proposal:
    """The bagged mixture as a :class:`Proposal` (method ``"bagged"``), predicted by ``model``.

    ``model`` is the regressor fitted on all rows; ``details`` carries the stability number and
    the bootstrap counts.
    """
    c = check_caps(caps, result.bagged.size)
    w = _finish(result.bagged, c)
    name = regressor or str(getattr(model, "choice_", None) or getattr(model, "name", None)
                            or type(model).__name__)
    details = {"n_bootstrap": int(len(result.proposals)), "n_failed": int(result.n_failed),
               "stability_tv": float(result.stability)}
    return Proposal(w, float(_predict(model, w[None, :])[0]), "bagged", name, _active(w, c), details)
