"""Choose the proposal for the scale it will be trained at: gate, law, optimum, bootstrap, hedge.

`choose_at_scale` takes every proxy observation (mixture, log compute, target, mixture id), the
level regressor to use, the prior, the caps at the final budget, the anchors and the final run's
log compute, and returns

* the gate (`scaling.scale_gate`): leave-largest-scale-out, the scale-aware law with this level
  regressor against the regressor alone; the law is used only when it wins (otherwise the proposal
  is the single-scale one, fitted and predicted at the largest proxy scale);
* the raw optimum: RegMix's proposal on the chosen model at the final compute;
* the bootstrap: mixtures resampled with replacement (all scales of a mixture together), the model
  refitted and the optimum re-proposed B times, searching the main optimum's own candidates
  (`bootstrap.CandidatePool`, the same resolution) -> per-domain intervals, the mean total-variation
  distance to the optimum (the stability number) and the bagged proposal;
* the anchors' predicted final-scale targets with their bootstrap sd;
* the hedge: the point on the segment from the best-predicted anchor to the optimum whose predicted
  gain minus kappa x its sd is largest (the anchor itself when nothing is vouched for), the sd
  combining the bootstrap variance of the gain and the transfer variance measured by the gate
  (`scaling.transfer_tau2`).

With one proxy scale the law is the level regressor and all of the above still holds (at the
proxies' own scale, no transfer term). Pure numpy / scipy / scikit-learn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from mixopt.mixtures.bootstrap import BootstrapResult, CandidatePool, summarise
from mixopt.mixtures.design import check_caps, project_to_caps
from mixopt.mixtures.proposers import Proposal, propose_regmix
from mixopt.mixtures.regressors import make_regressor
from mixopt.mixtures.scaling import (
    Gate,
    Hedge,
    ScaleAwareLaw,
    ScaleCheck,
    hedge,
    leave_largest_scale_out,
    scale_gate,
    transfer_tau2,
)


class FixedEnsemble:
    """A weighted average of named regressors with fixed weights (an `auto` choice, frozen so that
    refits on resamples do not redo the cross-validated selection)."""

    def __init__(self, weights: Mapping[str, float], seed: int = 0) -> None:
        total = float(sum(weights.values()))
        self.weights = {k: float(v) / total for k, v in weights.items()}
        self.seed = seed
        self.name = "+".join(sorted(self.weights))

    def fit(self, X: np.ndarray, y: np.ndarray) -> "FixedEnsemble":
        self.members_ = {n: make_regressor(n, self.seed).fit(X, y) for n in self.weights}
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return sum(w * np.asarray(self.members_[n].predict(X), float).ravel() for n, w in self.weights.items())


@dataclass
class Choice:
    """Everything the proposal step decided, for the warehouse and the report."""

    weights: np.ndarray
    """The proposal (the hedge's point, or the raw optimum without a hedge)."""
    predicted: float
    """The law's predicted target at the final scale for `weights`."""
    raw: Proposal
    """The unconstrained optimum of the law at the final scale (a diagnostic)."""
    hedge: Hedge | None
    start: str
    """The anchor the hedge starts from."""
    anchors: dict[str, tuple[float, float]]
    """Anchor -> (predicted final-scale target, bootstrap sd)."""
    boot: BootstrapResult | None
    checks: list[ScaleCheck] = field(default_factory=list)
    """Leave-largest-scale-out scores (with >= 3 proxy scales)."""
    n_scales: int = 1
    s_final: float = 0.0
    s_proxy: float = 0.0
    law: ScaleAwareLaw | None = None
    gate: Gate | None = None
    """Law or single-scale regressor, and why (None when the gate was off)."""
    transfer_tau2: float = 0.0
    """Transfer variance of a gain per unit TV distance, added to the hedge's bootstrap variance."""
    boot_scored: int = 0
    """Candidates one bootstrap proposal scored (the last one): the cost of its search."""

    def law_predict(self, w: Sequence[float]) -> float:
        """The law's predicted target of one mixture at the final scale."""
        return float(self.law.predict_at(np.asarray(w, float)[None], self.s_final)[0])


def choose_at_scale(W: np.ndarray, s: np.ndarray, y: np.ndarray, groups: Sequence[str], base: Callable[[], Any],
                    prior: np.ndarray, caps: np.ndarray, anchors: Mapping[str, Sequence[float]], s_final: float, *,
                    n_samples: int = 100_000, top_k: int = 100, seed: int = 0, kappa: float = 1.0, B: int = 100,
                    boot_samples: int = 2_000, single_scale: dict[str, Callable[[], Any]] | None = None,
                    hierarchy: Any = None, gate: bool = True, transfer: bool = True, base_name: str = "level",
                    boot_search: str = "pool") -> Choice:
    """See the module docstring. `s_final` below the largest proxy scale is clipped to it (the law
    never extrapolates downwards). A `hierarchy` (`mixtures/hierarchy.py`) that freezes sources' topic
    proportions makes every candidate keep them; the anchors are projected onto the freeze before the
    hedge starts from one, so the hedge's segment, and the proposal, keep them too.

    gate: test the law against the single-scale regressor (`scaling.scale_gate`) and use it only when
      it wins (False: the law whenever there are >= 2 scales, as before the gate existed).
    transfer: add the gate's transfer variance to the hedge's (False: bootstrap variance only).
    base_name: the level regressor's name in the gate's scores (e.g. "auto" or "gp").
    boot_search: "pool": each bootstrap optimum searches the main optimum's `n_samples` candidates,
      screening `boot_samples` of them and refining by nearest neighbours (`bootstrap.CandidatePool`);
      "sample": a fresh RegMix draw of `boot_samples` candidates (coarser than the main optimum).
    """
    if boot_search not in ("pool", "sample"):
        raise ValueError(f"boot_search must be 'pool' or 'sample', got {boot_search!r}")
    W, s, y = np.asarray(W, float), np.round(np.asarray(s, float), 6), np.asarray(y, float)
    g = np.asarray(groups)
    c = check_caps(caps, W.shape[1])
    n_all_scales = len(np.unique(s))
    checks = leave_largest_scale_out(W, s, y, g, single_scale) if n_all_scales >= 3 else []
    gt = scale_gate(W, s, y, g, base, name=base_name) if (gate or transfer) and n_all_scales > 1 else None
    use_law = n_all_scales > 1 and (gt.use_law if gate and gt is not None else True)
    if not use_law:  # the single-scale proposal: the level regressor at the largest proxy scale
        keep = s == s.max()
        W, s, y, g = W[keep], s[keep], y[keep], g[keep]
    tau2 = transfer_tau2(gt, "law" if use_law else "single") if transfer and gt is not None else 0.0
    law = ScaleAwareLaw(base).fit(W, s, y, g)
    s_final = max(float(s_final), law.s_ref_) if law.n_scales_ > 1 else law.s_ref_
    h = hierarchy if hierarchy is not None and hierarchy.frozen else None
    project = project_to_caps if h is None else h.project
    raw = propose_regmix(law.at(s_final), prior, c, n_samples=n_samples, top_k=top_k, seed=seed, hierarchy=h)
    anchor_w = {n: project(np.asarray(w, float), c) for n, w in anchors.items()}
    laws, boot, scored = _bootstrap(W, s, y, g, base, raw.weights, s_final, B, seed, boot_search, prior, c,
                                    n_samples, top_k, boot_samples, h)

    pred = {n: float(law.predict_at(w[None], s_final)[0]) for n, w in anchor_w.items()}
    sd = {n: float(np.std([lb.predict_at(w[None], s_final)[0] for lb in laws], ddof=1)) if len(laws) > 1
          else float("nan") for n, w in anchor_w.items()}
    start = min(pred, key=pred.get) if pred else ""
    hg = None
    weights = raw.weights
    if kappa > 0 and start and len(laws) > 1:
        hg = hedge(anchor_w[start], raw.weights, laws, s_final, kappa=kappa, transfer_tau2=tau2)
        weights = project(hg.weights, c)
    return Choice(weights=weights, predicted=float(law.predict_at(weights[None], s_final)[0]), raw=raw, hedge=hg,
                  start=start, anchors={n: (pred[n], sd[n]) for n in pred}, boot=boot, checks=checks,
                  n_scales=law.n_scales_, s_final=s_final, s_proxy=law.s_ref_, law=law, gate=gt if gate else None,
                  transfer_tau2=tau2, boot_scored=scored)


def _bootstrap(W: np.ndarray, s: np.ndarray, y: np.ndarray, g: np.ndarray, base: Callable[[], Any],
               optimum: np.ndarray, s_final: float, B: int, seed: int, search: str, prior: np.ndarray,
               caps: np.ndarray, n_samples: int, top_k: int, boot_samples: int,
               h: Any) -> tuple[list[ScaleAwareLaw], BootstrapResult | None, int]:
    """B laws refitted on mixtures resampled with replacement, each one's optimum, and their summary."""
    laws, props, t0 = [], [], time.perf_counter()
    pool = CandidatePool(prior, caps, n_samples, top_k, seed, n_screen=boot_samples, hierarchy=h) \
        if search == "pool" and B > 0 else None
    rng = np.random.default_rng(seed)
    ids = np.unique(g)
    rows = {u: np.flatnonzero(g == u) for u in ids}
    failed, scored = 0, 0
    for _ in range(B):
        idx = np.concatenate([rows[u] for u in rng.choice(ids, size=len(ids), replace=True)])
        try:
            lb = ScaleAwareLaw(base).fit(W[idx], s[idx], y[idx], g[idx])
            if pool is not None:
                props.append(pool.propose(lb.at(s_final)))
                scored = pool.last_scored
            else:
                props.append(propose_regmix(lb.at(s_final), prior, caps, n_samples=boot_samples, top_k=top_k,
                                            seed=seed, hierarchy=h).weights)
                scored = boot_samples
            laws.append(lb)
        except (ValueError, np.linalg.LinAlgError, RuntimeError):
            failed += 1
    boot = summarise(props, optimum, caps, failed, time.perf_counter() - t0) if props else None
    return laws, boot, scored
