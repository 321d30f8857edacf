"""Compute-equivalent speedup from held-out curves: how many tokens the proposal needs to reach the
baseline's final loss.

Per seed, the proposal's held-out curve (tokens -> target loss at several token counts) is read at the
baseline's final target loss ``L_T`` (same seed, full budget ``T``). The tokens needed are interpolated
linearly in log tokens between the two points that bracket the first crossing (the first point at or
below ``L_T``; later wiggles above it are ignored). When the first curve point is already at or below
``L_T`` the crossing is somewhere before it: the tokens are at most that point's (``before_first``; the
speedup is a lower bound). When no point reaches ``L_T`` the tokens exceed the last point's
(``not_reached``; the speedup is an upper bound). The speedup is ``T / tokens_needed``.

Over seeds the speedup is summarised on the log scale: the geometric mean and a t-interval on
``log(speedup)`` (``n - 1`` degrees of freedom; none with one seed). Seeds with a bound enter with their
bound, and the summary is marked as a bound in the same direction (``at least`` when some seeds only
give lower bounds, ``at most`` when some only give upper bounds); with bounds in both directions no
estimate or interval is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t

REACHED, BEFORE_FIRST, NOT_REACHED = "reached", "before_first", "not_reached"


def tokens_to_reach(curve: Mapping[float, float], target: float) -> tuple[float, str]:
    """Tokens at which ``curve`` (tokens -> loss) first reaches ``target``, and how it is known:
    ``reached`` (interpolated in log tokens), ``before_first`` (at most the first point's tokens) or
    ``not_reached`` (more than the last point's tokens)."""
    if not curve:
        raise ValueError("curve: needs at least one (tokens, loss) point")
    if not np.isfinite(target):
        raise ValueError(f"target: must be a finite loss, got {target}")
    tok = np.array(sorted(curve), dtype=float)
    loss = np.array([curve[t] for t in sorted(curve)], dtype=float)
    if not (np.all(np.isfinite(tok)) and np.all(tok > 0)):
        raise ValueError("curve: token counts must be positive and finite")
    if not np.all(np.isfinite(loss)):
        raise ValueError("curve: losses must be finite")
    hit = np.flatnonzero(loss <= target)
    if len(hit) == 0:
        return float(tok[-1]), NOT_REACHED
    i = int(hit[0])
    if i == 0:
        return float(tok[0]), BEFORE_FIRST
    lo, hi = np.log(tok[i - 1]), np.log(tok[i])
    frac = (loss[i - 1] - target) / (loss[i - 1] - loss[i])
    return float(np.exp(lo + frac * (hi - lo))), REACHED


@dataclass
class SeedSpeedup:
    """One seed: the baseline's final loss, the proposal's tokens to reach it and ``budget / tokens``."""

    seed: int
    target: float
    tokens: float
    status: str
    """``reached`` (exact), ``before_first`` (tokens at most, speedup at least) or ``not_reached``
    (tokens more than, speedup at most)."""
    speedup: float


@dataclass
class Speedup:
    """Compute-equivalent speedup of the proposal over one baseline, summarised over seeds."""

    baseline: str
    budget: float
    seeds: list[SeedSpeedup]
    speedup: float
    """Geometric mean over seeds (NaN with bounds in both directions or no seeds)."""
    low: float
    high: float
    """t-interval of the geometric mean at ``level`` (NaN with fewer than 2 seeds)."""
    level: float
    bound: str
    """``""`` (every seed interpolated), ``"at least"``, ``"at most"`` or ``"mixed"``."""

    def describe(self) -> str:
        """One line: "reaches natural's final loss with 0.74x the tokens (1.35x compute-equivalent,
        95% CI 1.21-1.52, 5 seeds)"."""
        n = len(self.seeds)
        if n == 0:
            return f"no paired curves against {self.baseline}"
        what = f"{self.baseline}'s final loss"
        if self.bound == "mixed":
            k = sum(s.status == NOT_REACHED for s in self.seeds)
            return f"reaches {what} early on some seeds and not at all on {k} of {n}: no compute-equivalent figure"
        if self.bound == "at most" and all(s.status == NOT_REACHED for s in self.seeds):
            last = max(s.tokens for s in self.seeds)
            below = f"speedup below {self.speedup:.2f}x"
            return f"does not reach {what} within {last:.3g} tokens on any of {n} seeds ({below})"
        more, less = ("at least ", "at most ") if self.bound == "at least" else (
            ("at most ", "at least ") if self.bound == "at most" else ("", ""))
        pct = f"{100 * self.level:g}%"
        ci = f", {pct} CI {self.low:.2f}-{self.high:.2f}" if np.isfinite(self.low) else ", no interval"
        seeds = f"{n} seed" + ("s" if n != 1 else "")
        tail = ""
        if self.bound:
            k = sum(s.status != REACHED for s in self.seeds)
            why = "reach it before the first curve point" if self.bound == "at least" else "never reach it"
            tail = f"; {k} of {n} seeds {why}"
        return (
            f"reaches {what} with {less}{1 / self.speedup:.2f}x the tokens "
            f"({more}{self.speedup:.2f}x compute-equivalent{ci}, {seeds}{tail})"
        )


def speedup(
    baseline: str,
    curves: Mapping[int, Mapping[float, float]],
    baseline_final: Mapping[int, float],
    budget: float,
    level: float = 0.95,
) -> Speedup:
    """Compute-equivalent speedup over the seeds both sides have: ``curves`` is seed -> (tokens ->
    proposal's target loss), ``baseline_final`` seed -> baseline's target loss at ``budget`` tokens."""
    if not (np.isfinite(budget) and budget > 0):
        raise ValueError(f"budget: must be a positive token count, got {budget}")
    if not 0 < level < 1:
        raise ValueError(f"level: must be in (0, 1), got {level}")
    rows = []
    for s in sorted(set(curves) & set(baseline_final)):
        tokens, status = tokens_to_reach(curves[s], float(baseline_final[s]))
        rows.append(SeedSpeedup(s, float(baseline_final[s]), tokens, status, float(budget / tokens)))
    statuses = {r.status for r in rows}
    bound = (
        "mixed" if {BEFORE_FIRST, NOT_REACHED} <= statuses
        else "at least" if BEFORE_FIRST in statuses
        else "at most" if NOT_REACHED in statuses
        else ""
    )
    nan = float("nan")
    if not rows or bound == "mixed":
        return Speedup(baseline, float(budget), rows, nan, nan, nan, level, bound)
    logs = np.log([r.speedup for r in rows])
    mean = float(logs.mean())
    low = high = nan
    if len(logs) >= 2:
        half = float(student_t.ppf(0.5 + level / 2, len(logs) - 1) * logs.std(ddof=1) / np.sqrt(len(logs)))
        low, high = float(np.exp(mean - half)), float(np.exp(mean + half))
    return Speedup(baseline, float(budget), rows, float(np.exp(mean)), low, high, level, bound)
