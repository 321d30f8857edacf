"""Power planning for the paired-by-seed final comparison, from measured noise.

The final comparison (:mod:`mixopt.mixtures.verdict`) pairs the proposal and a baseline by seed and
tests the mean difference ``d = proposed - baseline`` (negative: the proposal has the lower loss).
Planning how many seeds that needs takes two numbers: the improvement worth detecting (``effect``,
in nats, positive) and the sd of one paired difference (``sd``).

The sd comes from measured noise, best source first (:func:`paired_sd`):

* **pilot pairs** — per-seed differences of two mixtures trained at the same seeds. Their sd is the
  paired sd itself, seed-shared noise cancelled; several pilot comparisons are pooled (variances
  weighted by their degrees of freedom).
* **seed repeats** — each mixture's losses at several seeds, with no pairing. Var(a - b) =
  Var(a) + Var(b) - 2 Cov(a, b) and the covariance across mixtures at the same seed is unknown, so the
  estimate is ``sqrt(2) * pooled per-mixture seed sd``: the paired sd if the two runs were independent.
  That is a conservative bound when runs at the same seed are non-negatively correlated (the point of
  sharing a seed: same initialisation, data order and evaluation batches), which is the usual case;
  the plan it gives asks for at least as many seeds as needed.

The test is the one-sided paired t-test at level ``alpha`` (reject ``mean(d) >= 0`` when
``t = mean(d) / (sd(d) / sqrt(n)) < -t_{1-alpha, n-1}``), and its power is exact under normal noise:
``t`` follows a noncentral t with ``n - 1`` degrees of freedom and noncentrality
``effect / sd * sqrt(n)`` (no normal approximation). Note the verdict's 95% two-sided interval is the
one-sided test at ``alpha = 0.025``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.stats import nct
from scipy.stats import t as student_t


@dataclass(frozen=True)
class Noise:
    """The sd of one paired difference (nats) and where it came from."""

    sd: float
    df: int
    """Degrees of freedom behind the estimate (pooled)."""
    source: str
    """``"pilot pairs"`` or ``"seed repeats (sqrt 2 bound)"``."""

    def describe(self) -> str:
        """One line: 'paired sd 0.0123 nats from pilot pairs (df 4)'."""
        return f"paired sd {self.sd:.4f} nats from {self.source} (df {self.df})"


def _pooled_sd(groups: Sequence[Sequence[float]], field: str) -> tuple[float, int]:
    """sd pooled over groups (each group's variance weighted by its df); groups of < 2 values add nothing."""
    ss, df = 0.0, 0
    for g in groups:
        x = np.asarray(list(g), dtype=float)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{field}: values must be finite")
        if len(x) >= 2:
            ss += float(((x - x.mean()) ** 2).sum())
            df += len(x) - 1
    if df == 0:
        raise ValueError(f"{field}: needs at least one group with 2 or more seeds")
    return float(np.sqrt(ss / df)), df


def sd_from_pilot(pilot: Sequence[Sequence[float]]) -> Noise:
    """Paired sd from pilot differences: one sequence of per-seed differences per pilot comparison.

    Each comparison's own mean is removed (the mixtures differ by an unknown true amount), so only the
    seed-to-seed spread of the difference is pooled."""
    sd, df = _pooled_sd(pilot, "pilot")
    return Noise(sd, df, "pilot pairs")


def sd_from_seeds(losses: Mapping[str, Mapping[int, float]] | Sequence[Sequence[float]]) -> Noise:
    """Conservative paired sd, ``sqrt(2) * pooled per-mixture seed sd``, from seed repeats.

    ``losses`` is label -> seed -> loss (or one sequence of losses per mixture)."""
    groups = [list(v.values()) for v in losses.values()] if isinstance(losses, Mapping) else list(losses)
    sd, df = _pooled_sd(groups, "seed repeats")
    return Noise(float(np.sqrt(2.0) * sd), df, "seed repeats (sqrt 2 bound)")


def paired_sd(
    pilot: Sequence[Sequence[float]] | None = None,
    seeds: Mapping[str, Mapping[int, float]] | Sequence[Sequence[float]] | None = None,
) -> Noise:
    """The paired sd from the pilot's differences when it has any with 2+ seeds, else the seed-repeat bound."""
    if pilot is not None and any(len(list(g)) >= 2 for g in pilot):
        return sd_from_pilot(pilot)
    if seeds is not None:
        return sd_from_seeds(seeds)
    raise ValueError("paired_sd: needs pilot differences (2+ seeds in a comparison) or seed repeats")


def _check(effect: float | None, sd: float, n: int | None, alpha: float, power: float | None = None) -> None:
    if effect is not None and not (np.isfinite(effect) and effect > 0):
        raise ValueError(f"effect: must be a positive improvement in nats, got {effect}")
    if not (np.isfinite(sd) and sd > 0):
        raise ValueError(f"sd: must be positive and finite, got {sd}")
    if n is not None and n < 2:
        raise ValueError(f"n: a paired t-test needs at least 2 seeds, got {n}")
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha: must be in (0, 0.5), got {alpha}")
    if power is not None and not alpha < power < 1:
        raise ValueError(f"power: must be in (alpha, 1), got {power}")


def _power(effect: float, sd: float, n: int, alpha: float) -> float:
    df = n - 1
    crit = float(student_t.ppf(1 - alpha, df))
    return float(nct.sf(crit, df, effect / sd * np.sqrt(n)))


def achieved_power(effect: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Power of the one-sided paired t-test with ``n`` seeds to call a win when the proposal is truly
    better by ``effect`` nats and one paired difference has sd ``sd`` (exact, noncentral t)."""
    _check(effect, sd, n, alpha)
    return _power(effect, sd, n, alpha)


def seeds_needed(
    effect: float, sd: float, alpha: float = 0.05, power: float = 0.8, max_seeds: int = 64
) -> int | None:
    """Fewest seeds (>= 2) whose one-sided paired t-test reaches ``power`` against ``effect``;
    ``None`` when even ``max_seeds`` do not."""
    _check(effect, sd, None, alpha, power)
    for n in range(2, max_seeds + 1):
        if _power(effect, sd, n, alpha) >= power:
            return n
    return None


def min_detectable_effect(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true improvement (nats) that ``n`` seeds detect with probability ``power``."""
    _check(None, sd, n, alpha, power)
    hi = sd
    while _power(hi, sd, n, alpha) < power:
        hi *= 2.0
    return float(brentq(lambda e: _power(e, sd, n, alpha) - power, 0.0, hi, xtol=1e-12 * sd))


def describe_plan(effect: float, noise: Noise, n: int, alpha: float = 0.05, power: float = 0.8,
                  max_seeds: int = 64) -> str:
    """One line for the report: the power of ``n`` seeds, the seeds the target power needs, and the
    smallest effect ``n`` seeds detect."""
    got = achieved_power(effect, noise.sd, n, alpha)
    need = seeds_needed(effect, noise.sd, alpha, power, max_seeds)
    mde = min_detectable_effect(noise.sd, n, alpha, power)
    need_s = f"{need} seeds" if need is not None else f"more than {max_seeds} seeds"
    return (
        f"with {noise.describe()}, {n} seeds detect a {effect:.3f}-nat gain with power {got:.2f} "
        f"(one-sided alpha {alpha:g}); power {power:.2f} needs {need_s}; {n} seeds detect {mde:.3f} nats"
    )


@dataclass(frozen=True)
class SeedPlan:
    """How many final seeds, in which looks: from the measured noise and the law's predicted gain."""

    looks: tuple[int, ...]
    """Cumulative seed counts at which the verdict looks (the last is the most the plan trains)."""
    needed: int | None
    """Seeds that detect `effect` with the target power (None: more than `max_seeds`, or no plan)."""
    effect: float | None
    noise: Noise | None
    text: str


def plan_seeds(n0: int, max_seeds: int, effect: float | None, noise: Noise | None, alpha: float = 0.025,
               power: float = 0.8) -> SeedPlan:
    """The final comparison's looks: `n0` seeds first, then up to the seeds that give `power` against a
    gain of `effect` at the measured `noise` (capped at `max_seeds`; all of them when the gain or the
    noise is unknown), with one look half-way. `max_seeds` <= `n0`: one look at `n0` (no plan)."""
    if max_seeds <= n0:
        return SeedPlan((n0,), None, effect, noise, f"{n0} seeds, fixed (final.max_seeds not above them)")
    needed = None
    if effect is not None and effect > 0 and noise is not None and noise.sd > 0:
        needed = seeds_needed(effect, noise.sd, alpha, power, max_seeds)
    last = max(n0, min(max_seeds, needed if needed is not None else max_seeds))
    looks = tuple(sorted({n0, (n0 + last + 1) // 2, last}))
    if effect is None or effect <= 0 or noise is None:
        why = "no predicted gain or no noise estimate"
    else:
        why = (f"{describe_plan(effect, noise, last, alpha, power, max_seeds)}; "
               + (f"{needed} seeds needed" if needed is not None else f"more than {max_seeds} seeds needed"))
    return SeedPlan(looks, needed, effect, noise, f"looks at {', '.join(map(str, looks))} seeds ({why})")


def predicted_gain(details: Mapping) -> float | None:
    """The law's predicted gain of the proposal over the best-predicted anchor at the final scale, from a
    proposal's details: the hedge's gain, else the best anchor's prediction minus the raw optimum's."""
    h = details.get("hedge") or {}
    if h.get("gain") is not None:
        return float(h["gain"])
    pred = [v.get("mean") for v in (details.get("anchors_predicted") or {}).values() if isinstance(v, Mapping)]
    pred = [float(v) for v in pred if v is not None]
    raw = details.get("raw_predicted")
    return float(min(pred) - raw) if pred and raw is not None else None


def plan_from(pilot: Mapping[str, Mapping[int, float]], anchors: Mapping[str, Mapping[int, float]],
              details: Mapping, n0: int, max_seeds: int, power: float = 0.8, alpha: float = 0.025) -> SeedPlan:
    """The seed plan from what the warehouse holds: the paired sd of the pilot's differences (proposal
    against each baseline, seeds paired), else the sqrt(2) bound from the anchors' proxy seed repeats,
    and the law's predicted gain (`predicted_gain`)."""
    mine = pilot.get("proposed", {})
    pairs = []
    for label, runs in pilot.items():
        seeds = sorted(set(mine) & set(runs)) if label != "proposed" else []
        d = [mine[s] - runs[s] for s in seeds]
        if len(d) >= 2 and any(x != 0 for x in d):
            pairs.append(d)
    repeats = [list(v.values()) for v in anchors.values() if len(v) >= 2]
    try:
        noise = paired_sd(pilot=pairs or None, seeds=repeats or None)
    except ValueError:
        noise = None
    return plan_seeds(n0, max_seeds, predicted_gain(details), noise, alpha, power)
