"""The pilot: a cheaper rehearsal of the final comparison, and the fallback when the proposal loses it."""

import numpy as np
import pytest

from mixopt.experiment import Experiment
from mixopt.runspec import DomainShard, RunResult
from mixopt.tasks.final import final_specs, pilot_outcome, pilot_specs
from mixopt.tasks.swarm import record_result
from mixopt.warehouse import Warehouse
from tests.helpers import tiny_config

PROPOSAL = [0.6, 0.3, 0.1]


def _experiment(tmp_path, **pilot):
    cfg = tiny_config(tmp_path, design={"anchors": {"mine": {"a": 0.5, "b": 0.5}}},
                      final={"seeds": [0, 1, 2], "pilot": {"enabled": True, "seeds": [100, 101], **pilot}})
    domains = [DomainShard(n, "x", "y", t, 100) for n, t in (("a", 90_000), ("b", 60_000), ("c", 50_000))]
    return Experiment.create(cfg, domains, vocab_size=300, fingerprint="fp")


def _record(exp, wh, specs, loss_of):
    for s in specs:
        loss = loss_of(s.label) + 0.01 * s.seed
        record_result(exp, wh, s, RunResult(run_id=s.run_id, status="ok", n_params=10, tokens=s.train["tokens"],
                                            val_losses={d: loss for d in exp.domain_names}))


def test_the_pilot_is_smaller_paired_and_names_every_static_baseline(tmp_path):
    exp = _experiment(tmp_path)
    specs = pilot_specs(exp, PROPOSAL)
    assert {s.role for s in specs} == {"pilot"} and {s.seed for s in specs} == {100, 101}
    assert {s.label for s in specs} == {"proposed", "natural", "stratified", "mine"}
    assert all(s.train["tokens"] == exp.cfg.final.tokens // 4 for s in specs)
    assert not {s.run_id for s in specs} & {s.run_id for s in final_specs(exp, PROPOSAL)}
    with Warehouse(exp.warehouse) as wh:
        _record(exp, wh, specs, lambda label: 3.0 if label == "proposed" else 3.2)
        out = pilot_outcome(exp, wh, PROPOSAL)
    assert out.held and out.fallback is None and out.weights == PROPOSAL
    assert all(c.outcome == "win" for c in out.comparisons) and "beats natural" in out.message


@pytest.mark.parametrize("require_win", [False, True])
def test_a_lost_pilot_falls_back_to_the_best_baseline_only_when_required(tmp_path, require_win):
    exp = _experiment(tmp_path, require_win=require_win)
    losses = {"proposed": 3.1, "natural": 3.3, "stratified": 3.0, "mine": 3.05}
    with Warehouse(exp.warehouse) as wh:
        _record(exp, wh, pilot_specs(exp, PROPOSAL), losses.get)
        out = pilot_outcome(exp, wh, PROPOSAL)
    assert not out.held
    if require_win:
        assert out.fallback == "stratified" and np.allclose(out.weights, [1 / 3] * 3)
        assert "require_win" in out.message
    else:
        assert out.fallback is None and out.weights == PROPOSAL


def test_a_proposal_that_is_a_baseline_leads_if_it_beats_the_others(tmp_path):
    exp = _experiment(tmp_path, require_win=True)
    mine = exp.anchor_mixtures()["mine"]
    with Warehouse(exp.warehouse) as wh:
        _record(exp, wh, pilot_specs(exp, mine), {"proposed": 3.0, "mine": 3.0, "natural": 3.3, "stratified": 3.2}.get)
        out = pilot_outcome(exp, wh, mine)
    assert out.held and out.fallback is None and "is the mine mixture itself" in out.message
