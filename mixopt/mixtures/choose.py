"""Choose the proposal for the scale it will be trained at: law, optimum, bootstrap, hedge.

`choose_at_scale` takes every proxy observation (mixture, log compute, target, mixture id), the
level regressor to use, the prior, the caps at the final budget, the anchors and the final run's
log compute, and returns

* the raw optimum: RegMix's proposal on the scale-aware law at the final compute;
* the bootstrap: mixtures resampled with replacement (all scales of a mixture together), the law
  refitted and the optimum re-proposed B times -> per-domain intervals, the mean total-variation
  distance to the optimum (the stability number) and the bagged proposal;
* the anchors' predicted final-scale targets with their bootstrap sd;
* the hedge: the point on the segment from the best-predicted anchor to the optimum whose predicted
  gain minus kappa x its bootstrap sd is largest (the anchor itself when nothing is vouched for).

With one proxy scale the law is the level regressor and all of the above still holds (at the
proxies' own scale). Pure numpy / scipy / scikit-learn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from mixopt.mixtures.bootstrap import BootstrapResult, summarise
from mixopt.mixtures.design import check_caps, project_to_caps
from mixopt.mixtures.proposers import Proposal, propose_regmix
from mixopt.mixtures.regressors import make_regressor
from mixopt.mixtures.scaling import Hedge, ScaleAwareLaw, ScaleCheck, hedge, leave_largest_scale_out


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

    def law_predict(self, w: Sequence[float]) -> float:
        """The law's predicted target of one mixture at the final scale."""
        return float(self.law.predict_at(np.asarray(w, float)[None], self.s_final)[0])


def choose_at_scale(W: np.ndarray, s: np.ndarray, y: np.ndarray, groups: Sequence[str], base: Callable[[], Any],
                    prior: np.ndarray, caps: np.ndarray, anchors: Mapping[str, Sequence[float]], s_final: float, *,
                    n_samples: int = 100_000, top_k: int = 100, seed: int = 0, kappa: float = 1.0, B: int = 100,
                    boot_samples: int = 5_000, single_scale: dict[str, Callable[[], Any]] | None = None,
                    hierarchy: Any = None) -> Choice:
    """See the module docstring. `s_final` below the largest proxy scale is clipped to it (the law
    never extrapolates downwards). A `hierarchy` (`mixtures/hierarchy.py`) that freezes sources' topic
    proportions makes every candidate keep them; the anchors are projected onto the freeze before the
    hedge starts from one, so the hedge's segment, and the proposal, keep them too."""
    W, s, y = np.asarray(W, float), np.round(np.asarray(s, float), 6), np.asarray(y, float)
    g = np.asarray(groups)
    c = check_caps(caps, W.shape[1])
    law = ScaleAwareLaw(base).fit(W, s, y, g)
    s_final = max(float(s_final), law.s_ref_)
    h = hierarchy if hierarchy is not None and hierarchy.frozen else None
    project = project_to_caps if h is None else h.project
    raw = propose_regmix(law.at(s_final), prior, c, n_samples=n_samples, top_k=top_k, seed=seed, hierarchy=h)
    anchor_w = {n: project(np.asarray(w, float), c) for n, w in anchors.items()}

    laws, props, t0 = [], [], time.perf_counter()
    rng = np.random.default_rng(seed)
    ids = np.unique(g)
    rows = {u: np.flatnonzero(g == u) for u in ids}
    failed = 0
    for _ in range(B):
        idx = np.concatenate([rows[u] for u in rng.choice(ids, size=len(ids), replace=True)])
        try:
            lb = ScaleAwareLaw(base).fit(W[idx], s[idx], y[idx], g[idx])
            props.append(propose_regmix(lb.at(s_final), prior, c, n_samples=boot_samples, top_k=top_k,
                                        seed=seed, hierarchy=h).weights)
            laws.append(lb)
        except (ValueError, np.linalg.LinAlgError, RuntimeError):
            failed += 1
    boot = summarise(props, raw.weights, c, failed, time.perf_counter() - t0) if props else None

    pred = {n: float(law.predict_at(w[None], s_final)[0]) for n, w in anchor_w.items()}
    sd = {n: float(np.std([lb.predict_at(w[None], s_final)[0] for lb in laws], ddof=1)) if len(laws) > 1
          else float("nan") for n, w in anchor_w.items()}
    start = min(pred, key=pred.get) if pred else ""
    hg = None
    weights = raw.weights
    if kappa > 0 and start and len(laws) > 1:
        hg = hedge(anchor_w[start], raw.weights, laws, s_final, kappa=kappa)
        weights = project(hg.weights, c)
    checks = []
    if law.n_scales_ >= 3:
        checks = leave_largest_scale_out(W, s, y, g, single_scale)
    return Choice(weights=weights, predicted=float(law.predict_at(weights[None], s_final)[0]), raw=raw, hedge=hg,
                  start=start, anchors={n: (pred[n], sd[n]) for n in pred}, boot=boot, checks=checks,
                  n_scales=law.n_scales_, s_final=s_final, s_proxy=law.s_ref_, law=law)
