"""Paired-by-seed verdicts: a win only when the 95% interval excludes 0; claims over several baselines."""

import numpy as np
import pytest

from mixopt.mixtures.verdict import Paired, beats_at_least_one, beats_every, describe, holm, one_sided_p, paired


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


def _pair(label: str, diffs: list[float]) -> Paired:
    base = {s: 5.0 for s in range(len(diffs))}
    return paired(label, {s: 5.0 + d for s, d in enumerate(diffs)}, base)


def test_one_sided_p_is_the_paired_t_test_and_matches_the_interval():
    from scipy.stats import ttest_1samp

    diffs = [-0.05, -0.03, -0.045, -0.02]
    p = _pair("natural", diffs)
    assert one_sided_p(p) == pytest.approx(ttest_1samp(diffs, 0.0, alternative="less").pvalue, rel=1e-6)
    # the 95% two-sided interval's win is the one-sided test at 0.025
    assert (p.outcome == "win") == (one_sided_p(p) < 0.025)
    assert np.isnan(one_sided_p(_pair("natural", [-0.1])))
    assert one_sided_p(_pair("natural", [-0.1, -0.1])) == 0.0


def test_holm_on_the_textbook_example():
    # four hypotheses, p = 0.01, 0.04, 0.03, 0.005 at alpha 0.05: Holm rejects H1 and H4 only
    adj = holm({"H1": 0.01, "H2": 0.04, "H3": 0.03, "H4": 0.005})
    assert adj == pytest.approx({"H1": 0.03, "H2": 0.06, "H3": 0.06, "H4": 0.02})
    assert [k for k, v in adj.items() if v <= 0.05] == ["H1", "H4"]
    assert holm({"a": float("nan"), "b": 0.01}) == {"a": 1.0, "b": 0.02}


def test_beats_every_is_an_intersection_union_claim():
    clear = [-0.05, -0.04, -0.06, -0.05]
    comps = [_pair("natural", clear), _pair("stratified", [x + 0.01 for x in clear])]
    every = beats_every(comps)
    assert every.holds and every.baselines == ["natural", "stratified"]
    worst = max(every.p_values.values())
    assert every.adjusted == {"natural": worst, "stratified": worst} and worst < 0.05
    assert "beats every baseline (natural, stratified)" in every.sentence
    noisy = _pair("anchors", [-0.05, 0.04, -0.02, 0.01])
    not_every = beats_every([*comps, noisy])
    assert not not_every.holds and not_every.baselines == [] and "not a win against anchors" in not_every.sentence
    # the proposal's own mixture among the baselines does not count against it, and is named
    itself = beats_every([*comps, _pair("target_only", [0.0] * 4)])
    assert itself.holds and "target_only: the proposal itself" in itself.sentence
    assert not beats_every([]).holds


def test_beats_at_least_one_uses_holm():
    comps = [
        _pair("natural", [-0.05, -0.04, -0.06, -0.05]),
        _pair("stratified", [-0.05, 0.04, -0.02, 0.01]),
        _pair("anchors", [0.02, 0.03, 0.025, 0.03]),
    ]
    claim = beats_at_least_one(comps)
    raw = {c.baseline: one_sided_p(c) for c in comps}
    assert claim.p_values == raw and claim.adjusted == holm(raw)
    assert claim.holds and claim.baselines == ["natural"]
    assert claim.adjusted["natural"] == pytest.approx(3 * raw["natural"])
    assert claim.sentence.startswith("beats 1 of 3 baselines at family-wise alpha 0.05: natural (Holm p = ")
    none = beats_at_least_one(comps[1:])
    assert not none.holds and none.sentence.startswith("beats none of 2 baselines")
    with pytest.raises(ValueError, match="alpha"):
        beats_at_least_one(comps, alpha=0.7)
