"""The report's repetition line: epochs at the final budget and in a proxy, and the warning where they part."""

from __future__ import annotations

import pytest

from mixopt.report.repetition import repetition, repetition_markdown

NAMES = ["small", "big"]
TRAIN = [22_442, 300_000]


def _cfg(matched: bool) -> dict:
    return {"final": {"tokens": 240_000}, "swarm": {"tokens": 30_000, "seq_len": 64},
            "design": {"match_repetition": matched}}


def test_plain_proxies_read_a_repeated_domain_far_less_and_the_report_warns() -> None:
    r = repetition(_cfg(False), TRAIN, [0.37, 0.63])
    assert r.final == pytest.approx([0.37 * 240_000 / 22_442, 0.63 * 240_000 / 300_000])
    assert r.proxy == pytest.approx([x / 8 for x in r.final])
    line, warnings = repetition_markdown(NAMES, r)
    assert "small 4.0× (proxy 0.5×)" in line and "big" not in line
    assert len(warnings) == 1 and "small 4.0 times" in warnings[0] and "design.match_repetition" in warnings[0]


def test_matched_proxies_read_each_domain_as_often_as_the_final_run_and_nothing_is_warned() -> None:
    r = repetition(_cfg(True), TRAIN, [0.37, 0.63])
    assert r.proxy == pytest.approx(r.final, rel=1e-3)  # the subsample rounds up by under a token
    line, warnings = repetition_markdown(NAMES, r)
    assert warnings == [] and "repetition-matched" in line


def test_no_domain_repeated() -> None:
    line, warnings = repetition_markdown(NAMES, repetition(_cfg(False), [10**7, 10**7], [0.5, 0.5]))
    assert warnings == [] and line.startswith("**Repetition:** no domain is read more than once")
