"""Compute-equivalent speedup: tokens the proposal needs to reach the baseline's final loss."""

import numpy as np
import pytest
from scipy.stats import t as student_t

from mixopt.mixtures.speedup import speedup, tokens_to_reach

T = 1e9
POINTS = [1.25e8, 2.5e8, 5e8, 1e9]


def _log_linear(a: float, b: float = 0.3) -> dict[float, float]:
    """A curve exactly linear in log tokens, so log interpolation reads it without error."""
    return {t: a - b * np.log(t) for t in POINTS}


def test_a_planted_curve_gives_the_exact_speedup():
    curve = _log_linear(11.0)
    target = 11.0 - 0.3 * np.log(T / 1.5)  # the proposal reaches it at T / 1.5 tokens
    tokens, status = tokens_to_reach(curve, target)
    assert status == "reached" and tokens == pytest.approx(T / 1.5, rel=1e-12)
    s = speedup("natural", {0: curve}, {0: target}, T)
    assert s.speedup == pytest.approx(1.5) and s.bound == "" and np.isnan(s.low)
    line = "reaches natural's final loss with 0.67x the tokens (1.50x compute-equivalent, no interval, 1 seed)"
    assert s.describe() == line


def test_the_interval_is_a_t_interval_on_log_speedup_over_seeds():
    planted = {0: 1.2, 1: 1.5, 2: 1.35, 3: 1.4, 4: 1.3}
    curves, finals = {}, {}
    for seed, sp in planted.items():
        a = 11.0 + 0.01 * seed  # seeds differ in level; the speedup is what is planted
        curves[seed] = _log_linear(a)
        finals[seed] = a - 0.3 * np.log(T / sp)
    s = speedup("natural", curves, finals, T)
    logs = np.log(list(planted.values()))
    half = student_t.ppf(0.975, 4) * logs.std(ddof=1) / np.sqrt(5)
    assert [r.speedup for r in s.seeds] == pytest.approx(list(planted.values()))
    assert s.speedup == pytest.approx(np.exp(logs.mean()))
    assert (s.low, s.high) == pytest.approx((np.exp(logs.mean() - half), np.exp(logs.mean() + half)))
    assert s.low < s.speedup < s.high
    line = s.describe()
    assert line.startswith(f"reaches natural's final loss with {1 / s.speedup:.2f}x the tokens")
    assert f"95% CI {s.low:.2f}-{s.high:.2f}, 5 seeds)" in line


def test_interpolation_reads_between_the_bracketing_points_in_log_tokens():
    curve = {1e8: 4.0, 1e9: 3.0}
    tokens, status = tokens_to_reach(curve, 3.5)
    assert status == "reached" and tokens == pytest.approx(np.sqrt(1e8 * 1e9))  # halfway in log tokens
    # the first crossing counts, later noise above the target does not
    assert tokens_to_reach({1e8: 4.0, 2e8: 3.4, 4e8: 3.6, 8e8: 3.3}, 3.5)[0] < 2e8


def test_bounds_when_the_curve_starts_below_or_never_reaches_the_target():
    assert tokens_to_reach({1e8: 3.0, 1e9: 2.5}, 3.2) == (1e8, "before_first")
    assert tokens_to_reach({1e8: 4.0, 1e9: 3.5}, 3.2) == (1e9, "not_reached")
    curves = {0: _log_linear(11.0), 1: _log_linear(11.0)}
    early = speedup("natural", curves, {0: 11.0 - 0.3 * np.log(T / 1.5), 1: 20.0}, T)
    assert early.bound == "at least" and early.seeds[1].status == "before_first"
    assert early.seeds[1].speedup == pytest.approx(T / POINTS[0])
    assert "with at most" in early.describe() and "at least" in early.describe()
    assert "1 of 2 seeds reach it before the first curve point" in early.describe()
    never = speedup("natural", curves, {0: 0.0, 1: 0.0}, T)
    assert never.bound == "at most" and never.speedup == pytest.approx(1.0)
    assert never.describe().startswith("does not reach natural's final loss within 1e+09 tokens on any of 2 seeds")
    mixed = speedup("natural", curves, {0: 0.0, 1: 20.0}, T)
    assert mixed.bound == "mixed" and np.isnan(mixed.speedup) and "no compute-equivalent" in mixed.describe()


def test_only_shared_seeds_count_and_bad_input_is_named():
    s = speedup("natural", {0: _log_linear(11.0), 5: _log_linear(11.0)}, {0: 4.0, 7: 4.0}, T)
    assert [r.seed for r in s.seeds] == [0]
    assert "no paired curves" in speedup("natural", {}, {0: 4.0}, T).describe()
    with pytest.raises(ValueError, match="budget"):
        speedup("natural", {}, {}, 0.0)
    with pytest.raises(ValueError, match="curve"):
        tokens_to_reach({}, 3.0)
    with pytest.raises(ValueError, match="curve"):
        tokens_to_reach({-1.0: 3.0}, 3.0)
