"""Group-sequential paired test: adding seeds adaptively keeps false wins at alpha; naive looks do not."""

import numpy as np
import pytest
from scipy.stats import t as student_t

from mixopt.mixtures.adaptive import LOSS, TIE, WIN, design, sequential, sequential_codes, spend
from mixopt.mixtures.power import achieved_power
from mixopt.mixtures.verdict import paired

ALPHA, LOOKS, REPS = 0.05, (3, 5, 8), 50_000
# Monte Carlo allowance of the simulated rate: 3 standard errors of a proportion alpha over REPS draws
# (the design spends exactly alpha, so its simulated rate scatters around 0.05 by about +-0.001)
ALLOW = 3 * np.sqrt(ALPHA * (1 - ALPHA) / REPS)


def _null(noise: str, rng: np.random.Generator) -> np.ndarray:
    """Null paired differences (true mean 0), unit sd: normal, or Student t with 5 df scaled."""
    if noise == "normal":
        return rng.standard_normal((REPS, LOOKS[-1]))
    return rng.standard_t(5, (REPS, LOOKS[-1])) * np.sqrt(3 / 5)


def _naive_wins(d: np.ndarray) -> np.ndarray:
    """A win whenever a plain one-sided t-test at alpha says so at any look."""
    won = np.zeros(len(d), dtype=bool)
    for n in LOOKS:
        x = d[:, :n]
        t = x.mean(axis=1) / (x.std(axis=1, ddof=1) / np.sqrt(n))
        won |= t < -student_t.ppf(1 - ALPHA, n - 1)
    return won


@pytest.mark.parametrize("spending", ["obrien-fleming", "pocock"])
@pytest.mark.parametrize("noise", ["normal", "t5"])
def test_adaptive_seeds_keep_false_wins_at_alpha_and_naive_looks_do_not(noise, spending):
    des = design(LOOKS, ALPHA, spending)
    d = _null(noise, np.random.default_rng(2024))
    code, _ = sequential_codes(d, des)
    false_win = float((code == WIN).mean())
    naive = float(_naive_wins(d).mean())
    print(f"{noise} {spending}: adaptive false wins {false_win:.4f}, naive {naive:.4f}")
    assert false_win <= ALPHA + ALLOW
    assert float((code == LOSS).mean()) <= ALPHA + ALLOW  # the mirrored boundary, same guarantee
    assert naive > ALPHA + 10 * ALLOW  # looking three times with a plain t-test roughly doubles false wins
    if noise == "normal":  # exact under normal noise: alpha is spent, not wasted
        assert false_win >= ALPHA - ALLOW


def test_the_design_keeps_most_of_the_fixed_n_power_and_stops_early_on_clear_gains():
    des = design(LOOKS, ALPHA, "obrien-fleming")
    rng = np.random.default_rng(5)
    effect = 1.0  # in units of the paired sd
    d = -effect + rng.standard_normal((20_000, LOOKS[-1]))
    code, at = sequential_codes(d, des)
    fixed = achieved_power(effect, 1.0, LOOKS[-1], ALPHA)
    assert (code == WIN).mean() >= 0.95 * fixed
    assert (at[code == WIN] < len(LOOKS) - 1).mean() > 0.2  # a fair share stops at 5 seeds


def test_spending_and_bounds():
    assert spend(1.0, ALPHA, "obrien-fleming") == pytest.approx(ALPHA)
    assert spend(1.0, ALPHA, "pocock") == pytest.approx(ALPHA)
    of = design(LOOKS, ALPHA, "obrien-fleming")
    assert list(of.bounds) == sorted(of.bounds, reverse=True)
    # the last O'Brien-Fleming look is close to (a little above) the fixed-n critical value
    assert student_t.ppf(1 - ALPHA, LOOKS[-1] - 1) < of.bounds[-1] < 2.2
    assert design(LOOKS, ALPHA, "obrien-fleming") == of  # fixed simulation seed: reproducible
    assert "3, 5, 8 seeds" in of.describe()
    with pytest.raises(ValueError, match="looks"):
        design((3, 3, 8))
    with pytest.raises(ValueError, match="spending"):
        design(LOOKS, spending="haybittle")


def test_one_comparison_goes_through_the_looks_like_the_vectorised_procedure():
    des = design(LOOKS, ALPHA)
    rng = np.random.default_rng(11)
    d = -0.6 + rng.standard_normal((300, LOOKS[-1]))
    code, at = sequential_codes(d, des)
    names = {WIN: "win", LOSS: "loss", TIE: "tie"}
    for row, c, k in zip(d, code, at, strict=True):
        base = {s: 5.0 for s in range(LOOKS[-1])}
        s = sequential(paired("natural", {i: 5.0 + x for i, x in enumerate(row)}, base), des)
        assert s.outcome == names[int(c)] and len(s.looks) == k + 1


def test_too_few_seeds_says_continue_and_names_the_next_look():
    des = design(LOOKS, ALPHA)
    base = {s: 5.0 for s in range(4)}
    s = sequential(paired("natural", {0: 4.9, 1: 4.95, 2: 4.92, 3: 4.97}, base), des)
    assert s.outcome == "continue" and [lk.n for lk in s.looks] == [3]
    assert "run up to 5 seeds" in s.describe()
    none = sequential(paired("natural", {0: 4.9}, {0: 5.0}), des)
    assert none.outcome == "continue" and "fewer seeds than the first look" in none.describe()
