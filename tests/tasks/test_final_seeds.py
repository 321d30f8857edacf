"""The final seeds: planned from measured noise and the predicted gain, added look by look, judged by a
group-sequential test; the pilot's seeds are the final's never."""

import json

import pytest

from mixopt.config import ConfigError, parse_config
from mixopt.experiment import Experiment
from mixopt.mixtures.power import Noise, plan_from, plan_seeds
from mixopt.runspec import DomainShard, RunResult
from mixopt.tasks.final import final_specs, look_outcomes, planned_seeds, seed_plan
from mixopt.tasks.swarm import record_result
from mixopt.warehouse import Warehouse
from tests.helpers import tiny_config

PROPOSAL = [0.6, 0.3, 0.1]


def test_no_plan_without_room_above_the_seeds():
    assert plan_seeds(3, 0, 0.05, Noise(0.02, 4, "x")).looks == (3,)
    assert plan_seeds(3, 3, 0.05, Noise(0.02, 4, "x")).looks == (3,)


def test_the_plan_stops_where_the_power_is_reached_and_caps_at_max_seeds():
    small = plan_seeds(3, 20, 0.05, Noise(0.02, 10, "pilot pairs"))
    assert small.needed is not None and small.looks[-1] == max(3, small.needed) and small.looks[0] == 3
    big = plan_seeds(3, 8, 0.01, Noise(0.05, 10, "pilot pairs"))  # needs far more than 8
    assert big.needed is None and big.looks == (3, 6, 8)
    unknown = plan_seeds(3, 8, None, None)
    assert unknown.looks[-1] == 8 and "no predicted gain" in unknown.text


def test_the_plan_reads_the_pilot_first_then_the_anchor_repeats():
    details = {"hedge": {"gain": 0.04}}
    pilot = {"proposed": {100: 3.00, 101: 3.10}, "natural": {100: 3.05, 101: 3.14}}
    anchors = {"natural": {0: 3.2, 1: 3.3, 2: 3.25}}
    p = plan_from(pilot, anchors, details, 3, 10)
    assert p.noise.source == "pilot pairs" and p.effect == pytest.approx(0.04)
    q = plan_from({}, anchors, details, 3, 10)
    assert q.noise.source.startswith("seed repeats")


def test_config_refuses_shared_pilot_seeds_and_a_max_below_the_seeds():
    with pytest.raises(ConfigError, match="pilot's seeds must differ"):
        parse_config({"final": {"seeds": [0, 1], "pilot": {"seeds": [1, 2]}}})
    with pytest.raises(ConfigError, match="max_seeds"):
        parse_config({"final": {"seeds": [0, 1, 2], "max_seeds": 2}})


def _experiment(tmp_path, **final):
    cfg = tiny_config(tmp_path, final={"seeds": [0, 1, 2], "max_seeds": 8, **final})
    domains = [DomainShard(n, "x", "y", t, 100) for n, t in (("a", 90_000), ("b", 60_000), ("c", 50_000))]
    return Experiment.create(cfg, domains, vocab_size=300, fingerprint="fp")


def _record(exp, wh, specs, loss_of):
    for s in specs:
        loss = loss_of(s.label, s.seed)
        record_result(exp, wh, s, RunResult(run_id=s.run_id, status="ok", n_params=10, tokens=s.train["tokens"],
                                            val_losses={d: loss for d in exp.domain_names}))


def test_looks_decide_a_clear_win_and_keep_going_on_noise(tmp_path):
    exp = _experiment(tmp_path)
    plan = plan_seeds(3, 8, None, None)
    seeds = planned_seeds(exp, plan)
    assert seeds == [0, 1, 2, 3, 4, 5, 6, 7] and plan.looks == (3, 6, 8)
    noise = [0.01, -0.02, 0.015, 0.0, -0.01, 0.02, -0.005, 0.01]
    other = [-0.015, 0.01, 0.02, -0.01, 0.0, 0.005, 0.01, -0.02]
    with Warehouse(exp.warehouse) as wh:
        clear = lambda label, s: 3.0 + (noise[s] if label == "proposed" else 0.2 + other[s])  # noqa: E731
        _record(exp, wh, final_specs(exp, PROPOSAL, seeds[:3]), clear)
        first = look_outcomes(exp, wh, PROPOSAL, plan, seeds[:3])
        assert set(first) == {"natural", "stratified"} and set(first.values()) == {"continue"}  # O'Brien-Fleming
        _record(exp, wh, final_specs(exp, PROPOSAL, seeds[:6]), clear)
        assert set(look_outcomes(exp, wh, PROPOSAL, plan, seeds[:6]).values()) == {"win"}


def test_the_seed_plan_reads_the_warehouse(tmp_path):
    exp = _experiment(tmp_path)
    with Warehouse(exp.warehouse) as wh:
        wh.record_mixture("m", exp.experiment_id, "proposal", PROPOSAL)
        wh.record_proposal("p1", exp.experiment_id, "f1", "regmix", "auto", "m", PROPOSAL, 3.0, [False] * 3,
                           {"hedge": {"gain": 0.05}})
        plan = seed_plan(exp, wh)
    assert plan.effect == pytest.approx(0.05) and plan.noise is None and plan.looks[-1] == 8
    assert json.dumps(plan.text)
