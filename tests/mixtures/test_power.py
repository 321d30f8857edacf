"""Power planning for the paired one-sided t-test, from measured noise."""

import numpy as np
import pytest
from scipy.stats import nct
from scipy.stats import t as student_t

from mixopt.mixtures.power import (
    achieved_power,
    describe_plan,
    min_detectable_effect,
    paired_sd,
    sd_from_pilot,
    sd_from_seeds,
    seeds_needed,
)


def test_power_matches_the_textbook_and_an_independent_noncentral_t():
    # G*Power, matched pairs, d = 0.5, one-tailed alpha 0.05, power 0.8: n = 27, actual power 0.8118;
    # two-tailed (one-sided 0.025): n = 34
    assert seeds_needed(0.5, 1.0) == 27
    assert achieved_power(0.5, 1.0, 27) == pytest.approx(0.8118, abs=1e-4)
    assert seeds_needed(0.5, 1.0, alpha=0.025) == 34
    # scale invariance and the noncentral-t formula written out independently
    effect, sd, n = 0.03, 0.02, 5
    crit = student_t.ppf(0.95, n - 1)
    expected = 1 - nct.cdf(crit, n - 1, effect / sd * np.sqrt(n))
    assert achieved_power(effect, sd, n) == pytest.approx(expected, rel=1e-10)
    assert achieved_power(effect * 10, sd * 10, n) == pytest.approx(expected, rel=1e-10)


def test_power_agrees_with_simulated_paired_t_tests():
    rng = np.random.default_rng(7)
    effect, sd, n, reps = 0.02, 0.025, 4, 40_000
    d = -effect + sd * rng.standard_normal((reps, n))  # proposed - baseline: negative is a win
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / np.sqrt(n))
    simulated = float((t < -student_t.ppf(0.95, n - 1)).mean())
    # the normal approximation would say Phi(effect/sd*sqrt(n) - 1.645) = 0.67; the truth is lower
    assert achieved_power(effect, sd, n) == pytest.approx(simulated, abs=0.01)
    assert achieved_power(effect, sd, n) < 0.6


def test_seeds_needed_is_the_smallest_n_and_the_mde_inverts_the_power():
    effect, sd = 0.02, 0.03
    n = seeds_needed(effect, sd, power=0.9)
    assert achieved_power(effect, sd, n) >= 0.9 > achieved_power(effect, sd, n - 1)
    assert seeds_needed(effect, sd, power=0.9, max_seeds=n - 1) is None
    mde = min_detectable_effect(sd, 3)
    assert achieved_power(mde, sd, 3) == pytest.approx(0.8, abs=1e-8)
    assert min_detectable_effect(sd, 8) < mde  # more seeds detect smaller gains
    assert seeds_needed(mde * 1.001, sd) == 3 and seeds_needed(mde * 0.999, sd) == 4


def test_paired_sd_prefers_pilot_pairs_and_bounds_from_seed_repeats():
    # planted: losses = mixture mean + shared seed effect (sd 0.05) + own noise (sd 0.01)
    rng = np.random.default_rng(3)
    seed_effect = 0.05 * rng.standard_normal(400)
    a = 5.0 + seed_effect + 0.01 * rng.standard_normal(400)
    b = 5.1 + seed_effect + 0.01 * rng.standard_normal(400)
    pilot = sd_from_pilot([a - b])
    assert pilot.source == "pilot pairs" and pilot.df == 399
    assert pilot.sd == pytest.approx(0.01 * np.sqrt(2), rel=0.1)  # the shared seed effect cancels
    repeats = sd_from_seeds({"a": dict(enumerate(a)), "b": dict(enumerate(b))})
    pooled = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    assert repeats.sd == pytest.approx(np.sqrt(2) * pooled) and repeats.df == 798
    assert repeats.sd > 3 * pilot.sd  # conservative: ignores the positive same-seed correlation
    assert paired_sd(pilot=[a - b], seeds=[a, b]) == pilot
    assert paired_sd(pilot=[[0.1]], seeds=[a, b]) == repeats  # a 1-seed pilot has no spread


def test_pilot_comparisons_are_pooled_around_their_own_means():
    noise = sd_from_pilot([[0.10, 0.12, 0.14], [-0.30, -0.32]])
    # within-comparison sums of squares 0.0008 and 0.0002 over 2 + 1 df
    assert noise.sd == pytest.approx(np.sqrt(0.001 / 3)) and noise.df == 3
    assert "pilot pairs (df 3)" in noise.describe()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="effect"):
        achieved_power(-0.1, 0.1, 3)
    with pytest.raises(ValueError, match="sd"):
        seeds_needed(0.1, 0.0)
    with pytest.raises(ValueError, match="n:"):
        min_detectable_effect(0.1, 1)
    with pytest.raises(ValueError, match="pilot"):
        sd_from_pilot([[0.1], [0.2]])
    with pytest.raises(ValueError, match="paired_sd"):
        paired_sd()


def test_plan_sentence():
    line = describe_plan(0.02, sd_from_pilot([[0.01, 0.03, 0.02, 0.05]]), 3)
    assert "3 seeds detect a 0.020-nat gain with power" in line and "needs" in line
