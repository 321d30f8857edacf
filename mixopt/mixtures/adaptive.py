"""A valid win/loss call when seeds are added adaptively: a group-sequential paired t-test.

Running ``n0`` seeds, looking, adding seeds and looking again with a plain t-test at every look gives
the noise several chances to cross the line, so false wins exceed ``alpha``. Here the looks are
planned up front (e.g. after 3, 5 and 8 seeds) and each look has its own critical value for the paired
t statistic ``t_k = mean(d) / (sd(d) / sqrt(n_k))`` over the first ``n_k`` differences
(``d = proposed - baseline``):

* **win** at look k when ``t_k <= -c_k``; **loss** when ``t_k >= c_k`` (the same boundary mirrored);
* otherwise **continue**, or **tie** at the last look.

The false-win probability is spent over the looks by a Lan-DeMets spending function of the
information fraction ``f_k = n_k / n_K``: O'Brien-Fleming-like ``2 - 2 Phi(z_{1-alpha/2} / sqrt(f))``
(default: almost nothing spent early, the last look close to a fixed-n test) or Pocock-like
``alpha * ln(1 + (e - 1) f)``. The critical values are found by simulation (fixed seed): under the null
(mean difference 0, normal noise) the t statistics do not depend on the noise sd, so simulating paired
differences and taking, look by look, the quantile of ``t_k`` among paths that have not yet won gives
``c_k`` with ``P(win by look k) = spend(f_k)``. With the default 10^6 simulated paths the realised level
is alpha to within about 0.0005 (looks 3, 5, 8 at alpha 0.05: 0.0498 O'Brien-Fleming, 0.0497 Pocock over
4 x 10^6 fresh null paths); the boundaries are cached per design. The win boundary ignores the loss boundary
(non-binding), so stopping at a loss can only lower the false-win rate. With heavier-tailed symmetric
noise the t statistic is, if anything, conservative (checked by simulation in the tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.stats import norm

from mixopt.mixtures.verdict import Paired

SPENDING = ("obrien-fleming", "pocock")
CONTINUE, WIN, LOSS, TIE = 0, 1, 2, 3
"""Codes returned by :func:`sequential_codes` (``NAMES[code]`` is the word)."""
NAMES = ("continue", "win", "loss", "tie")


def spend(f: np.ndarray | float, alpha: float, spending: str) -> np.ndarray:
    """Cumulative false-win probability allowed by information fraction ``f`` (``spend(1) == alpha``)."""
    f = np.asarray(f, dtype=float)
    if spending == "obrien-fleming":
        return 2.0 - 2.0 * norm.cdf(norm.ppf(1.0 - alpha / 2.0) / np.sqrt(f))
    if spending == "pocock":
        return alpha * np.log1p((np.e - 1.0) * f)
    raise ValueError(f"spending: must be one of {SPENDING}, got {spending!r}")


@dataclass(frozen=True)
class Design:
    """Planned looks and the critical |t| at each (win: ``t <= -bound``, loss: ``t >= bound``)."""

    looks: tuple[int, ...]
    alpha: float
    spending: str
    bounds: tuple[float, ...]
    spent: tuple[float, ...]
    """Cumulative false-win probability allowed by each look."""

    def describe(self) -> str:
        """One line: 'looks at 3, 5, 8 seeds, obrien-fleming spending of one-sided alpha 0.05: |t| >= ...'."""
        b = ", ".join(f"{c:.2f}" for c in self.bounds)
        looks = ", ".join(map(str, self.looks))
        return (
            f"looks at {looks} seeds, {self.spending} spending of one-sided alpha {self.alpha:g}: "
            f"win/loss when |t| >= {b}"
        )


def _t_stats(d: np.ndarray, looks: Sequence[int]) -> np.ndarray:
    """Paired t statistic of the first n_k columns of each row of ``d``: shape (rows, len(looks))."""
    out = np.empty((d.shape[0], len(looks)))
    for k, n in enumerate(looks):
        x = d[:, :n]
        sd = x.std(axis=1, ddof=1)
        mean = x.mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = mean / (sd / np.sqrt(n))
        out[:, k] = np.where(sd > 0, t, np.sign(mean) * np.inf)
    return out


@lru_cache(maxsize=32)
def _bounds(looks: tuple[int, ...], alpha: float, spending: str, n_sim: int, seed: int) -> tuple[float, ...]:
    rng = np.random.default_rng(seed)
    # in chunks, so only the t statistics (n_sim x looks) are held at once
    chunks = [min(100_000, n_sim - i) for i in range(0, n_sim, 100_000)]
    t = np.concatenate([_t_stats(rng.standard_normal((m, looks[-1])), looks) for m in chunks])
    target = spend(np.array(looks) / looks[-1], alpha, spending)
    alive = np.ones(n_sim, dtype=bool)
    bounds = []
    for k in range(len(looks)):
        # wins at this look allowed: the spend increment, as a count of all simulated paths
        allowed = int(round((target[k] - (target[k - 1] if k else 0.0)) * n_sim))
        tk = np.sort(t[alive, k])
        # midway between the allowed-th and the next smallest t: exactly `allowed` alive paths win here
        c = float(-(tk[allowed - 1] + tk[allowed]) / 2.0) if allowed > 0 else float("inf")
        bounds.append(c)
        alive &= ~(t[:, k] <= -c)
    return tuple(bounds)


def design(
    looks: Sequence[int] = (3, 5, 8),
    alpha: float = 0.05,
    spending: str = "obrien-fleming",
    n_sim: int = 1_000_000,
    seed: int = 0,
) -> Design:
    """The group-sequential design for planned ``looks`` (seed counts, increasing, the first >= 2)."""
    looks = tuple(int(n) for n in looks)
    if not looks or looks[0] < 2 or any(b <= a for a, b in zip(looks, looks[1:], strict=False)):
        raise ValueError(f"looks: must be increasing seed counts starting at 2 or more, got {looks}")
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha: must be in (0, 0.5), got {alpha}")
    if spending not in SPENDING:
        raise ValueError(f"spending: must be one of {SPENDING}, got {spending!r}")
    if n_sim < 10_000:
        raise ValueError(f"n_sim: at least 10000 simulated paths are needed, got {n_sim}")
    bounds = _bounds(looks, float(alpha), spending, int(n_sim), int(seed))
    spent = tuple(float(s) for s in spend(np.array(looks) / looks[-1], alpha, spending))
    return Design(looks, float(alpha), spending, bounds, spent)


def sequential_codes(diffs: np.ndarray, des: Design) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised procedure: each row of ``diffs`` (at least ``looks[-1]`` columns, in seed order) run
    through the looks. Returns (code, look index where it stopped) per row; every row ends with a win,
    a loss or a tie at the last look."""
    d = np.asarray(diffs, dtype=float)
    if d.ndim != 2 or d.shape[1] < des.looks[-1]:
        raise ValueError(f"diffs: needs shape (rows, >= {des.looks[-1]}), got {d.shape}")
    t = _t_stats(d, des.looks)
    code = np.full(d.shape[0], CONTINUE)
    at = np.full(d.shape[0], len(des.looks) - 1)
    for k, c in enumerate(des.bounds):
        open_ = code == CONTINUE
        win = open_ & (t[:, k] <= -c)
        loss = open_ & (t[:, k] >= c)
        code[win], code[loss] = WIN, LOSS
        at[win | loss] = k
    code[code == CONTINUE] = TIE
    return code, at


@dataclass
class Look:
    """One look: the seeds used, the mean difference, its t statistic, the bound and the decision."""

    n: int
    mean: float
    t: float
    bound: float
    decision: str


@dataclass
class Sequential:
    """The group-sequential verdict for one baseline: the looks taken so far and the outcome
    (``win``, ``loss``, ``tie`` after the last look, or ``continue``: add seeds up to the next look)."""

    baseline: str
    design: Design
    looks: list[Look]
    outcome: str

    def describe(self) -> str:
        """One line: 'beats natural at look 2 (5 seeds, t -4.10 <= -3.25; group-sequential, ...)'."""
        if not self.looks:
            return f"{self.baseline}: fewer seeds than the first look ({self.design.looks[0]}); run more seeds"
        last = self.looks[-1]
        where = f"look {len(self.looks)} of {len(self.design.looks)}, {last.n} seeds"
        rule = f"group-sequential {self.design.spending}, one-sided alpha {self.design.alpha:g}"
        if self.outcome == "win":
            stat = f"t {last.t:.2f} <= -{last.bound:.2f}"
            return f"beats {self.baseline} by {-last.mean:.3f} nats ({where}, {stat}; {rule})"
        if self.outcome == "loss":
            stat = f"t {last.t:.2f} >= {last.bound:.2f}"
            return f"loses to {self.baseline} by {last.mean:.3f} nats ({where}, {stat}; {rule})"
        if self.outcome == "tie":
            diff = f"difference {last.mean:+.3f} nats"
            return f"ties {self.baseline}: {diff}, |t| never reached the bound ({where}; {rule})"
        nxt = self.design.looks[len(self.looks)]
        return f"{self.baseline}: undecided at {where} (t {last.t:.2f}, bound {last.bound:.2f}); run up to {nxt} seeds"


def sequential(p: Paired, des: Design) -> Sequential:
    """Take the planned looks over a paired comparison's differences (in seed order) as far as the
    seeds go; stop at the first win or loss. Seeds beyond the last look are not used."""
    d = np.asarray(p.diffs, dtype=float)
    looks: list[Look] = []
    for k, n in enumerate(des.looks):
        if len(d) < n:
            break
        t = float(_t_stats(d[None, :n], [n])[0, 0])
        c = des.bounds[k]
        decision = "win" if t <= -c else "loss" if t >= c else "tie" if k == len(des.looks) - 1 else "continue"
        looks.append(Look(n, float(d[:n].mean()), t, c, decision))
        if decision != "continue":
            break
    outcome = looks[-1].decision if looks else "continue"
    return Sequential(p.baseline, des, looks, outcome)
