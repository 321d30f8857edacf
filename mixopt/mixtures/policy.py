"""The design policy: which step extends a swarm's design, and the mixtures each step draws.

A design grows to `n_proxies` mixtures. A Dirichlet design samples all missing mixtures around the
prior and the target (`sample_around_prior_and_target`); a sequential one samples its first
`initial` that way and then adds rounds of `round_size` chosen over a GP posterior of the proxies so
far (`acquire`), or over both proxy sizes when a low-fidelity size is configured (that round's
math is `sequential.next_batch(..., fidelity=...)`). `next_step` says which. Pure numpy: the reads
and writes stay in `mixopt/tasks/swarm.py`; the draws are deterministic functions of the arguments.

Mixture reuse (`design.reuse`, `mixtures/reuse.py`) searches a reduced space: an earlier proposal's
proportions over the unchanged domains form one frozen composite, and the draws and the rounds take
that composite's hierarchy (the same `hierarchy=` as frozen topics: `Hierarchy.reduce` / `expand`), so
every mixture keeps the reused proportions. `reuse_design_size` says how many proxies that space gets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np

from mixopt.mixtures.design import sample_design

if TYPE_CHECKING:
    from mixopt.mixtures.hierarchy import Hierarchy

TARGET_SEED_OFFSET = 7919
"""The draws around the target use `seed + 7919`, those around the prior `seed`."""

Step = Literal["sample", "acquire", "multi_fidelity"]


@dataclass(frozen=True)
class DesignStep:
    """What extends the design now: `kind` and at most how many new mixtures (`n`)."""

    kind: Step
    n: int


def next_step(method: str, n_existing: int, missing: int, initial: int, round_size: int,
              low_fidelity: bool) -> DesignStep:
    """The step that adds (up to) `missing` mixtures to a design of `n_existing`: a Dirichlet design
    samples them all; a sequential one samples up to `initial`, then acquires a round of at most
    `round_size` (over both sizes with `low_fidelity`)."""
    if method == "sequential" and n_existing >= initial:
        return DesignStep("multi_fidelity" if low_fidelity else "acquire", min(missing, round_size))
    n_new = missing if method == "dirichlet" else min(missing, initial - n_existing)
    return DesignStep("sample", n_new)


def reuse_design_size(n_proxies: int, k: int, reduced_dim: int, reuse_proxies: int | None = None,
                      minimum: int = 4) -> int:
    """Design proxies of a reused search over `reduced_dim` coordinates (the composite's total and one per
    added or changed domain) out of `k` domains: `reuse_proxies` when given, else as many proxies per
    searched coordinate as the full design of `n_proxies` (`n_proxies * reduced_dim / k`, rounded up), at
    least `minimum` and `reduced_dim + 1`, never more than `n_proxies` (unless that is below `minimum`)."""
    if reuse_proxies is not None:
        return int(reuse_proxies)
    n = math.ceil(n_proxies * reduced_dim / max(k, 1) - 1e-9)
    return min(max(n, minimum, reduced_dim + 1), max(n_proxies, minimum))


def _key(w: Sequence[float] | np.ndarray) -> tuple:
    return tuple(np.round(w, 4))


def drop_taken(rows: Sequence[np.ndarray], taken: Sequence[Sequence[float]]) -> list[int]:
    """Indices of `rows` that do not repeat (rounded to 1e-4) a mixture in `taken` (e.g. a failed proxy's)."""
    seen = {_key(w) for w in taken}
    return [i for i, w in enumerate(rows) if _key(w) not in seen]


def sample_around_prior_and_target(prior: np.ndarray, target: np.ndarray, n: int, caps: np.ndarray, seed: int,
                                   existing: Sequence[Sequence[float]], *, target_fraction: float,
                                   concentration_min: float, concentration_max: float, min_weight: float,
                                   hierarchy: Hierarchy | None = None) -> np.ndarray:
    """`n` new design mixtures: a `target_fraction` share drawn around the target's domain weights
    (where the target points), the rest around the token prior; none repeats `existing`."""
    n_target = int(round(target_fraction * n))
    parts, seen = [], [np.asarray(w, dtype=float) for w in existing]
    for centre, m, s in ((target, n_target, seed + TARGET_SEED_OFFSET), (prior, n - n_target, seed)):
        if m <= 0:
            continue
        W = sample_design(centre, m, caps, seed=s, concentration_min=concentration_min,
                          concentration_max=concentration_max, min_weight=min_weight,
                          existing=np.array(seen) if seen else None, hierarchy=hierarchy)
        parts.append(W)
        seen += list(W)
    return np.vstack(parts) if parts else np.zeros((0, len(prior)))


def acquire(X: np.ndarray, y: np.ndarray, prior: np.ndarray, caps: np.ndarray, n: int, seed: int, method: str,
            taken: Sequence[Sequence[float]], hierarchy: Hierarchy | None = None) -> np.ndarray:
    """One round of the sequential design: `n` mixtures chosen over the GP posterior of the proxies
    `(X, y)` so far, less those already `taken`. With a `hierarchy` of frozen topics the GP and its
    candidates live in the reduced space (pass `frozen_only(hierarchy)`)."""
    from mixopt.mixtures.sequential import next_batch

    if hierarchy is None:
        batch = next_batch(X, y, prior, caps, n, seed=seed, method=method)
    else:
        batch = hierarchy.expand(next_batch(hierarchy.reduce(X), y, hierarchy.reduce(prior),
                                            hierarchy.reduced_caps(caps), n, seed=seed, method=method))
    keep = [batch[i] for i in drop_taken(batch, taken)]
    return np.array(keep).reshape(len(keep), len(prior))
