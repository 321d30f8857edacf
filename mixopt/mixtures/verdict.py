"""Paired-by-seed comparisons of final runs: the verdict the report gives.

Runs of different mixtures at the same seed share their initialisation, their data stream's random
numbers and their evaluation batches, so the per-seed difference cancels most of the seed-to-seed
spread. A win (or a loss) is called only when the 95% t-interval of the mean paired difference
excludes 0; with one seed there is no interval and nothing is called.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t


@dataclass
class Paired:
    """proposed - baseline, paired by seed (negative: the proposal has the lower loss)."""

    baseline: str
    diffs: list[float]
    seeds: list[int]
    mean: float
    low: float
    high: float
    """95% t-interval of the mean difference (NaN with fewer than 2 seeds)."""

    @property
    def outcome(self) -> str:
        """`win`, `loss`, `tie` (the interval contains 0) or `undecided` (fewer than 2 seeds)."""
        if not np.isfinite(self.low):
            return "undecided"
        if self.high < 0:
            return "win"
        if self.low > 0:
            return "loss"
        return "tie"


def paired(baseline: str, proposed: dict[int, float], other: dict[int, float], level: float = 0.95) -> Paired:
    """Paired comparison over the seeds both sides have (seed -> target loss)."""
    seeds = sorted(set(proposed) & set(other))
    d = np.array([proposed[s] - other[s] for s in seeds], dtype=float)
    if len(d) == 0:
        return Paired(baseline, [], [], float("nan"), float("nan"), float("nan"))
    mean = float(d.mean())
    if len(d) < 2:
        return Paired(baseline, d.tolist(), seeds, mean, float("nan"), float("nan"))
    half = float(student_t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return Paired(baseline, d.tolist(), seeds, mean, mean - half, mean + half)


def describe(p: Paired) -> str:
    """One line: 'beats natural by 0.052 nats (95% CI 0.031 to 0.073, 3 seeds)'."""
    n = len(p.diffs)
    if n == 0:
        return f"no paired runs against {p.baseline}"
    if all(d == 0 for d in p.diffs):
        return f"is the {p.baseline} mixture itself (the same runs: nothing better was found to propose)"
    if p.outcome == "undecided":
        side = "ahead of" if p.mean < 0 else "behind"
        return f"{side} {p.baseline} by {abs(p.mean):.3f} nats on 1 seed (no interval)"
    ci = f"95% CI of the difference {p.low:+.3f} to {p.high:+.3f}, {n} seeds"
    if p.outcome == "win":
        return f"beats {p.baseline} by {-p.mean:.3f} nats ({ci})"
    if p.outcome == "loss":
        return f"loses to {p.baseline} by {p.mean:.3f} nats ({ci})"
    return f"ties {p.baseline}: difference {p.mean:+.3f} nats is within the noise ({ci})"


def against_baselines(by_label: dict[str, dict[int, float]], proposed: str = "proposed") -> list[Paired]:
    """`proposed` paired with every other label (label -> seed -> target), baselines in name order."""
    mine = by_label.get(proposed, {})
    return [paired(label, mine, other) for label, other in sorted(by_label.items()) if label != proposed]


def lead_held(comps: list[Paired]) -> bool:
    """Whether the proposal's mean paired target is below every other baseline's (a baseline that is the
    proposal's own mixture, with differences of exactly 0, does not count against it)."""
    others = [c for c in comps if c.diffs and not all(d == 0 for d in c.diffs) and np.isfinite(c.mean)]
    return bool(others) and all(c.mean < 0 for c in others)
