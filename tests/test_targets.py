"""The target over domains, eval sets and groups; ids of existing configs do not move."""

import numpy as np
import pytest

from mixopt.config import ConfigError, ExperimentConfig
from mixopt.experiment import Experiment
from mixopt.runspec import DomainShard
from mixopt.targets import effective_weights

DOMAINS = [DomainShard(n, f"/x/{n}.train", f"/x/{n}.val", 1000, 100) for n in "abc"]
EVALS = [DomainShard(n, "", f"/x/{n}.val", 0, 100) for n in ("mmlu", "hella")]
LOSSES = {"a": 1.0, "b": 2.0, "c": 3.0, "mmlu": 5.0, "hella": 7.0}
ES = [{"name": n, "paths": [f"/e/{n}.jsonl"]} for n in ("mmlu", "hella")]


def _exp(**target) -> Experiment:
    cfg = ExperimentConfig.model_validate({"target": target})
    return Experiment.create(cfg, DOMAINS, 512, "fp", EVALS if target.get("eval_sets") else None)


def test_default_target_is_still_the_domain_mean():
    exp = _exp()
    assert exp.target_loss(LOSSES) == pytest.approx(2.0)
    assert exp.group_losses(LOSSES) == {}


def test_weights_may_name_eval_sets():
    exp = _exp(eval_sets=ES, weights={"a": 1.0, "mmlu": 3.0})
    assert exp.target_loss(LOSSES) == pytest.approx(0.25 * 1.0 + 0.75 * 5.0)
    assert exp.target_loss({"a": 1.0}) is None  # a needed eval set missing
    np.testing.assert_allclose(exp.target_weights(), [1.0, 0.0, 0.0])  # the design's centre: domains only
    only_evals = _exp(eval_sets=ES, weights={"hella": 1.0})
    np.testing.assert_allclose(only_evals.target_weights(), [1 / 3] * 3)


def test_groups_average_within_then_across():
    exp = _exp(eval_sets=ES, groups={"code": {"a": 1.0, "b": 1.0}, "bench": {"mmlu": 1.0, "hella": 3.0, "c": 0.0}})
    assert exp.group_losses(LOSSES) == pytest.approx({"code": 1.5, "bench": 0.25 * 5 + 0.75 * 7})
    # no weights: the mean over the groups (a group of many members counts once, like a task family)
    assert exp.target_loss(LOSSES) == pytest.approx((1.5 + 6.5) / 2)
    weighted = _exp(eval_sets=ES, groups={"code": {"a": 1.0, "b": 1.0}}, weights={"code": 1.0, "c": 1.0})
    assert weighted.target_loss(LOSSES) == pytest.approx((1.5 + 3.0) / 2)
    assert sum(effective_weights(weighted.cfg.target, "abc", [])[n] for n in "abc") == pytest.approx(1.0)


def test_unknown_names_fail_when_the_corpus_is_known():
    with pytest.raises(ConfigError, match="unknown names"):
        _exp(weights={"nope": 1.0})


def test_eval_sets_and_groups_change_the_experiment_id_but_not_the_old_ones():
    plain = _exp()
    assert _exp(eval_sets=[], groups={}).experiment_id == plain.experiment_id
    assert ExperimentConfig.model_validate({"target": {"eval_sets": [], "groups": {}}}).config_hash() == \
        ExperimentConfig().config_hash()
    with_sets = _exp(eval_sets=ES)
    assert with_sets.experiment_id != plain.experiment_id
    moved = [{**e, "paths": [f"/elsewhere/{e['name']}.jsonl"]} for e in ES]  # content enters via the fingerprint
    assert _exp(eval_sets=moved).experiment_id == with_sets.experiment_id
    spec = with_sets.run_spec("proxy", "design", [0.2, 0.3, 0.5], 0, with_sets.cfg.swarm)
    assert [e.name for e in spec.eval_sets] == ["mmlu", "hella"]
    assert type(spec).from_json(spec.to_json()) == spec
    assert Experiment.from_dict(with_sets.to_dict()) == with_sets
