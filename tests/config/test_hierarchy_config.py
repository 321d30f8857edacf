"""Hierarchical domains in the config: `source:topic` names, `design.hierarchy`, identity and bad input."""

import pytest

from mixopt.config import ConfigError, ExperimentConfig, parse_config
from mixopt.experiment import Experiment, design_identity
from mixopt.runspec import DomainShard

HIER = ["web:news", "web:forums", "code:python"]


def _files(names, **design):
    domains = [{"name": n, "paths": [f"{i}.jsonl"]} for i, n in enumerate(names)]
    return {"corpus": {"source": "files", "domains": domains}, "design": design}


def _shards(names):
    return [DomainShard(n, f"/x/{i}.train", f"/x/{i}.val", 1000 * (i + 1), 100) for i, n in enumerate(names)]


def test_flat_configs_keep_their_design_identity_and_sampler():
    cfg = ExperimentConfig()
    assert "hierarchy" not in design_identity(cfg)
    exp = Experiment.create(cfg, _shards("abc"), 512, "fp")
    assert exp.hierarchy() is None  # flat names without `design.hierarchy`: the flat design


def test_hierarchy_settings_enter_identity_and_build_the_two_levels():
    plain = parse_config(_files(HIER))
    tuned = parse_config(_files(HIER, hierarchy={"source_concentration_min": 0.5, "topic_concentration_max": 2.0,
                                                 "sources": {"web": {"frozen": {"news": 3, "web:forums": 1}}}}))
    a = Experiment.create(plain, _shards(HIER), 512, "fp")
    b = Experiment.create(tuned, _shards(HIER), 512, "fp")
    assert a.experiment_id != b.experiment_id
    h = b.hierarchy()
    assert h.sources == ["web", "code"]
    assert h.source_range == (0.5, 5.0) and h.topic_range[1] == (0.1, 2.0)
    assert list(h.frozen[0]) == [0.75, 0.25, 0.0]
    assert a.hierarchy().frozen == {} and a.hierarchy().source_range == (0.1, 5.0)


@pytest.mark.parametrize("data, match", [
    (_files(["web:news", "web:"]), r"corpus.domains\[1\].name: bad hierarchical domain name 'web:'"),
    (_files(["web:news", "a:b:c"]), r"corpus.domains\[1\].name: bad hierarchical domain name 'a:b:c'"),
    (_files(HIER, hierarchy={"sources": {"wiki": {"frozen": {"en": 1}}}}),
     r"design.hierarchy.sources.wiki: unknown source 'wiki'"),
    (_files(HIER, hierarchy={"sources": {"wiki": {"concentration_min": 0.5}}}),
     r"design.hierarchy.sources.wiki: unknown source 'wiki'"),
    (_files(HIER, hierarchy={"sources": {"web": {"frozen": {"sports": 1}}}}),
     r"design.hierarchy.sources.web.frozen: unknown topic 'sports'"),
    (_files(HIER, hierarchy={"topic_concentration_min": 9.0}), r"design.hierarchy.topic_concentration: "
                                                                r"concentration min 9.0 > max 5.0"),
])
def test_bad_hierarchy_names_the_file_and_field(data, match):
    with pytest.raises(ConfigError, match=match) as e:
        parse_config(data, "exp.yaml")
    assert str(e.value).startswith("exp.yaml")


def test_unknown_source_of_a_generated_corpus_is_caught_at_experiment_creation():
    cfg = ExperimentConfig.model_validate({"design": {"hierarchy": {"sources": {"web": {"frozen": {"a": 1}}}}}})
    with pytest.raises(ConfigError, match=r"design.hierarchy.sources.web: unknown source 'web'"):
        Experiment.create(cfg, _shards("abc"), 512, "fp")


def test_frozen_topics_that_cannot_fit_under_the_caps_are_refused():
    names = ["web:news", "web:forums", "code:python"]
    cfg = parse_config(_files(names, hierarchy={"sources": {"web": {"frozen": {"news": 0.99, "forums": 0.01}}}},
                              proxy_max_epochs=1.0))
    # news holds 100 tokens, so web (99 % news) can fill ~101 proxy tokens and code 1000: far below the budget,
    # although forums alone (100k tokens) could fill it without the freeze
    shards = [DomainShard(n, "x", "y", t, 10) for n, t in zip(names, [100, 100_000, 1000])]
    with pytest.raises(ConfigError, match=r"design.hierarchy.sources.web.frozen: infeasible caps with the frozen"):
        Experiment.create(cfg, shards, 512, "fp")
