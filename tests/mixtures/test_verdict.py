"""Paired-by-seed verdicts: a win only when the 95% interval excludes 0."""

import numpy as np

from mixopt.mixtures.verdict import describe, paired


def test_consistent_small_gain_is_a_win_and_noisy_gain_a_tie():
    base = {0: 5.40, 1: 5.30, 2: 5.50}
    win = paired("natural", {s: v - 0.05 + 0.002 * s for s, v in base.items()}, base)
    assert win.outcome == "win" and win.high < 0 and "beats natural" in describe(win)
    tie = paired("natural", {0: 5.51, 1: 5.24, 2: 5.38}, {0: 5.40, 1: 5.30, 2: 5.40})
    assert tie.outcome == "tie" and tie.low < 0 < tie.high
    loss = paired("stratified", {s: v + 0.05 + 0.001 * s for s, v in base.items()}, base)
    assert loss.outcome == "loss" and "loses" in describe(loss)


def test_one_seed_decides_nothing_and_only_shared_seeds_count():
    one = paired("natural", {0: 5.0}, {0: 5.2, 1: 5.1})
    assert one.outcome == "undecided" and one.seeds == [0] and not np.isfinite(one.low)
    assert paired("natural", {}, {0: 1.0}).outcome == "undecided"


def test_a_proposal_that_is_the_baseline_says_so():
    same = {0: 5.0, 1: 5.1, 2: 4.9}
    assert "is the target_only mixture itself" in describe(paired("target_only", same, dict(same)))
