"""Paired-by-seed comparisons of final runs: the verdict the report gives.

Runs of different mixtures at the same seed share their initialisation, their data stream's random
numbers and their evaluation batches, so the per-seed difference cancels most of the seed-to-seed
spread. A win (or a loss) is called only when the 95% t-interval of the mean paired difference
excludes 0; with one seed there is no interval and nothing is called.

Claims over several baselines take multiplicity into account: :func:`beats_every` is an
intersection-union claim (each one-sided paired t-test at ``alpha``, all must be wins), and
:func:`beats_at_least_one` names the baselines beaten under Holm's step-down (family-wise error at most
``alpha``). Both use one-sided p-values (:func:`one_sided_p`) at a default one-sided ``alpha = 0.05``;
the single-comparison ``outcome`` above corresponds to one-sided ``0.025``.
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


def one_sided_p(p: Paired) -> float:
    """One-sided paired t-test p-value for 'the proposal has the lower loss' (small when the mean
    difference is clearly negative); NaN with fewer than 2 seeds. Differences with no spread give 0 when
    their mean is negative and 1 otherwise. ``outcome == "win"`` is ``one_sided_p < 0.025``."""
    d = np.asarray(p.diffs, dtype=float)
    if len(d) < 2:
        return float("nan")
    sd = float(d.std(ddof=1))
    if sd == 0:
        return 0.0 if d.mean() < 0 else 1.0
    return float(student_t.cdf(d.mean() / (sd / np.sqrt(len(d))), len(d) - 1))


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm step-down adjusted p-values (NaN counts as 1): sorted ascending, the i-th of m is
    ``max over j <= i of min(1, (m - j + 1) p_(j))``. Rejecting where adjusted <= alpha keeps the
    family-wise error rate at alpha."""
    names = sorted(p_values, key=lambda k: (1.0 if np.isnan(p_values[k]) else p_values[k], k))
    m, running, out = len(names), 0.0, {}
    for i, k in enumerate(names):
        p = 1.0 if np.isnan(p_values[k]) else p_values[k]
        running = max(running, min(1.0, (m - i) * p))
        out[k] = running
    return {k: out[k] for k in p_values}


@dataclass
class Claim:
    """A claim over several baselines: whether it holds, which baselines it names, the one-sided
    p-values (raw and adjusted) and the sentence for the report."""

    kind: str
    """``"beats every"`` (intersection-union) or ``"beats at least one"`` (Holm)."""
    holds: bool
    baselines: list[str]
    """Baselines beaten at the claim's level (for ``beats every``: all of them when it holds)."""
    p_values: dict[str, float]
    adjusted: dict[str, float]
    alpha: float
    sentence: str


def _distinct(comparisons: list[Paired]) -> tuple[list[Paired], list[str]]:
    """The comparisons against a different mixture, and the labels that are the proposal's own runs."""
    same = [c.baseline for c in comparisons if c.diffs and all(d == 0 for d in c.diffs)]
    return [c for c in comparisons if c.baseline not in same], same


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha: must be in (0, 0.5), got {alpha}")


def beats_every(comparisons: list[Paired], alpha: float = 0.05) -> Claim:
    """Intersection-union claim 'the proposal beats every baseline': each one-sided paired test at
    level ``alpha`` (no adjustment is needed: the claim is wrong only if some single test is), the
    claim holds when every one is a win. Its p-value is the largest one (reported as every adjusted
    value). Baselines that are the proposal's own runs (differences exactly 0) are left out and named."""
    _check_alpha(alpha)
    comps, same = _distinct(comparisons)
    raw = {c.baseline: one_sided_p(c) for c in comps}
    worst = max((1.0 if np.isnan(v) else v for v in raw.values()), default=1.0)
    holds = bool(raw) and worst <= alpha
    names = ", ".join(raw) or "no baseline"
    note = f" ({', '.join(same)}: the proposal itself, left out)" if same else ""
    if holds:
        sentence = f"beats every baseline ({names}) at one-sided alpha {alpha:g}, largest p = {worst:.3g}{note}"
    else:
        missing = [k for k, v in raw.items() if not v <= alpha]
        why = f"not a win against {', '.join(missing)}" if missing else "no baseline to compare"
        sentence = f"does not beat every baseline at one-sided alpha {alpha:g}: {why}{note}"
    return Claim("beats every", holds, list(raw) if holds else [], raw, {k: worst for k in raw}, alpha, sentence)


def beats_at_least_one(comparisons: list[Paired], alpha: float = 0.05) -> Claim:
    """'The proposal beats at least one baseline', with the baselines it beats: Holm's step-down over
    the one-sided paired p-values, family-wise error at most ``alpha``. Baselines that are the
    proposal's own runs (differences exactly 0) are left out."""
    _check_alpha(alpha)
    comps, _ = _distinct(comparisons)
    raw = {c.baseline: one_sided_p(c) for c in comps}
    adj = holm(raw)
    beaten = [k for k in raw if adj[k] <= alpha]
    if beaten:
        ps = ", ".join(f"{k} (Holm p = {adj[k]:.3g})" for k in beaten)
        sentence = f"beats {len(beaten)} of {len(raw)} baselines at family-wise alpha {alpha:g}: {ps}"
    else:
        best = min(adj.values(), default=1.0)
        sentence = f"beats none of {len(raw)} baselines at family-wise alpha {alpha:g} (smallest Holm p = {best:.3g})"
    return Claim("beats at least one", bool(beaten), beaten, raw, adj, alpha, sentence)
