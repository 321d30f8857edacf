"""choose_at_scale: the gate decides law or single-scale, the hedge carries the transfer term, the
bootstrap searches the main optimum's candidates; choice_details records all of it."""

import numpy as np
import pytest

from mixopt.mixtures.choose import choose_at_scale
from mixopt.mixtures.regressors import make_regressor
from mixopt.tasks.propose import choice_details
from tests.mixtures.test_gate import _flips, _rebounds, _swarm

PRIOR = np.full(4, 0.25)
ANCHORS = {"natural": PRIOR, "tilted": np.array([0.4, 0.2, 0.2, 0.2])}


def _choose(truth, **kw):
    W, s, y, g = _swarm(truth, noise=0.002)
    args = dict(n_samples=4000, top_k=20, B=12, boot_samples=600, seed=0)
    args.update(kw)
    return choose_at_scale(W, s, y, g, lambda: make_regressor("linear", 0), PRIOR, np.ones(4), ANCHORS, 2.0,
                           base_name="linear", **args)


def test_the_law_is_used_when_it_wins_the_gate_and_the_details_say_so():
    c = _choose(_flips)
    assert c.gate.use_law and c.n_scales == 3 and c.s_final == 2.0
    d = choice_details(c)
    assert d["scale_aware"] and d["scale_gate"]["use"] == "law"
    assert d["scale_gate"]["law"]["name"] == "scale_law[linear]" and d["scale_gate"]["single"]["name"] == "linear"
    assert d["hedge"]["transfer_tau2"] == pytest.approx(c.transfer_tau2) and c.transfer_tau2 >= 0
    assert d["hedge"]["gain_sd"] == pytest.approx(np.hypot(d["hedge"]["boot_sd"], d["hedge"]["transfer_sd"]))
    assert {x["name"] for x in d["scale_checks"]} == {"scale_law"}


def test_a_law_that_loses_the_gate_is_not_used():
    c = _choose(_rebounds)
    assert not c.gate.use_law
    assert c.n_scales == 1 and c.s_final == c.s_proxy == 1.0  # the single-scale proposal, at the proxies' scale
    assert choice_details(c)["scale_gate"]["use"] == "single" and not choice_details(c)["scale_aware"]
    assert c.checks  # the leave-largest-scale-out table is still computed on every scale
    forced = _choose(_rebounds, gate=False)  # without the gate: the law, whatever it scores
    assert forced.gate is None and forced.n_scales == 3 and "scale_gate" not in choice_details(forced)


def test_bootstrap_searches_the_main_candidates_and_the_old_sampler_is_still_there():
    pool = _choose(_flips)
    sample = _choose(_flips, boot_search="sample")
    assert pool.boot_scored > 600 and sample.boot_scored == 600
    assert len(pool.boot.proposals) == len(sample.boot.proposals) == 12
    np.testing.assert_allclose(pool.raw.weights, sample.raw.weights)
    with pytest.raises(ValueError, match="boot_search"):
        _choose(_flips, boot_search="grid")


def test_no_transfer_term_when_asked():
    c = _choose(_flips, transfer=False)
    assert c.transfer_tau2 == 0.0 and c.hedge.transfer_sd == 0.0
