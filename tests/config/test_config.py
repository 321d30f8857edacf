"""The experiment config: strict keys, clear messages naming the file and the field."""

from pathlib import Path

import pytest
from pydantic import BaseModel

from mixopt.config import ConfigError, ExperimentConfig, load_config, parse_config


def _all_models(model: type[BaseModel], seen=None):
    seen = seen if seen is not None else set()
    if model in seen:
        return seen
    seen.add(model)
    for f in model.model_fields.values():
        for t in getattr(f.annotation, "__args__", ()) + (f.annotation,):
            if isinstance(t, type) and issubclass(t, BaseModel):
                _all_models(t, seen)
    return seen


def test_defaults_are_valid_and_hash_is_stable():
    a, b = ExperimentConfig(), ExperimentConfig()
    assert a.config_hash() == b.config_hash()
    b.swarm.lr = 2e-3
    assert a.config_hash() != b.config_hash()
    b2 = ExperimentConfig()
    b2.runtime.out_dir = "elsewhere"  # runtime settings do not change results
    assert a.config_hash() == b2.config_hash()


def test_every_field_has_a_docstring():
    for model in _all_models(ExperimentConfig):
        for name, f in model.model_fields.items():
            assert f.description, f"{model.__name__}.{name} has no docstring"


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"swarm": {"n_proxy": 3}}, "swarm.n_proxy: unknown key"),
        ({"bogus": 1}, "bogus: unknown key"),
        ({"swarm": {"lr": -1}}, "swarm.lr"),
        ({"swarm": {"n_proxies": "many"}}, "swarm.n_proxies"),
        ({"target": {"weights": {"a": -0.5}}}, "target.weights"),
        ({"target": {"weights": {"a": 0.0}}}, "must not all be zero"),
        ({"corpus": {"source": "files"}}, "no domains are listed"),
        ({"corpus": {"source": "files", "domains": [{"name": "a", "paths": ["x"]}, {"name": "a", "paths": ["y"]}]}},
         "duplicate domain names"),
        ({"corpus": {"source": "files", "domains": [{"name": "a", "paths": ["x"], "format": "csv"}]}},
         "corpus.domains.0.format"),
        ({"corpus": {"source": "files", "domains": [{"name": "a", "paths": ["x"]}]}, "target": {"weights": {"b": 1}}},
         "unknown domains ['b']"),
        ({"swarm": {"model": {"n_embd": 30, "n_head": 4}}}, "must divide"),
        ({"design": {"concentration_min": 9, "concentration_max": 1}}, "concentration_min"),
        ([1, 2], "must be a mapping"),
        ({"design": {"low_fidelity": {"tokens": 200_000}}},
         "design.low_fidelity.tokens (200000) > swarm.tokens (150000)"),
        ({"design": {"low_fidelity": {"model": {"n_embd": 128, "n_head": 4}}}},
         "design.low_fidelity.model.n_embd (128) > swarm.model.n_embd (64)"),
        ({"design": {"low_fidelity": {"tokens": 150_000}}},
         "design.low_fidelity is the same size as the swarm's proxy"),
        ({"design": {"low_fidelity": {"tokens": 0}}}, "design.low_fidelity.tokens"),
        ({"design": {"low_fidelity": {"steps": 3}}}, "design.low_fidelity.steps: unknown key"),
        ({"design": {"low_fidelity": {"tokens": 1000}, "method": "sequential", "acquisition": "ucb"}},
         "design.low_fidelity needs design.acquisition 'thompson'"),
        ({"design": {"low_fidelity": {"tokens": 1000}, "transfer_mixtures": 1}},
         "design.transfer_mixtures must be at least 3"),
        ({"design": {"noise_seeds": 0}}, "design.noise_seeds"),
        ({"design": {"noise_mixtures": -1}}, "design.noise_mixtures"),
        ({"design": {"transfer_min_rho": 1.5}}, "design.transfer_min_rho"),
        ({"regressor": {"kind": "gp_multi_fidelity"}}, "regressor.kind 'gp_multi_fidelity' needs design.low_fidelity"),
    ],
)
def test_bad_configs_name_the_field(data, needle):
    with pytest.raises(ConfigError) as e:
        parse_config(data, source="exp.yaml")
    assert "exp.yaml" in str(e.value)
    assert needle in str(e.value)


def test_yaml_errors_name_file_and_line(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nswarm:\n  lr: [1,\n  n_proxies: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    p.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(p)


def test_relative_globs_resolve_against_the_config_folder(tmp_path: Path):
    p = tmp_path / "exp.yaml"
    p.write_text("corpus:\n  source: files\n  domains:\n    - {name: web, paths: ['data/*.jsonl']}\n")
    cfg = load_config(p)
    assert cfg.corpus.domains[0].paths == [str(tmp_path.resolve() / "data/*.jsonl")]
    assert load_config(None) == ExperimentConfig()


def test_shipped_configs_are_valid():
    root = Path(__file__).resolve().parents[2] / "configs"
    for path in sorted(root.glob("*.yaml")):
        cfg = load_config(path)
        assert cfg.name


def test_a_second_size_is_accepted_and_the_checks_do_not_change_the_experiment():
    from mixopt.experiment import design_identity

    cfg = parse_config({"design": {"method": "sequential", "low_fidelity": {"tokens": 25_000, "model": {"n_layer": 1}},
                                   "transfer_mixtures": 3}, "regressor": {"kind": "gp_multi_fidelity"}})
    assert cfg.design.low_fidelity.tokens == 25_000 and cfg.design.low_fidelity.model.n_layer == 1
    base = ExperimentConfig()
    assert (base.design.noise_mixtures, base.design.noise_seeds, base.design.transfer_mixtures) == (0, 2, 4)
    assert "low_fidelity" in design_identity(cfg) and "low_fidelity" not in design_identity(base)
    more = parse_config({"design": {"noise_mixtures": 5, "noise_seeds": 4, "transfer_min_rho": 0.9}})
    assert design_identity(more) == design_identity(base)  # extra checking runs keep the experiment's id


@pytest.mark.parametrize("yaml_text, field, words", [
    ("design: {ladder: {scales: [{tokens_fraction: 0.5}]}}", "design.ladder.scales", "at least 2"),
    ("final: {pilot: {tokens_fraction: 1.0}}", "final.pilot.tokens_fraction", "less than 1"),
    ("final: {pilot: {seeds: [0]}}", "final.pilot.seeds", "at least 2"),
    ("design: {anchors: {mine: {a: 0.5, b: 0.2}}}", "design", "sum to 0.7"),
    ("design: {anchors: {natural: {a: 1.0}}}", "design", "bad anchor name 'natural'"),
    ("corpus: {source: files, domains: [{name: web, paths: [x.jsonl]}]}\n"
     "design: {anchors: {mine: {web: 0.5, code: 0.5}}}", "", "design.anchors.mine names unknown domains ['code']"),
    ("final: {baselines: [natural, handmade]}", "", "final.baselines: unknown ['handmade']"),
])
def test_scale_ladder_pilot_and_anchor_mistakes_name_the_field(tmp_path, yaml_text, field, words):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert msg.startswith(str(path)) and field in msg and words in msg, msg


def test_user_anchors_are_baselines_unless_the_baselines_are_listed():
    cfg = ExperimentConfig.model_validate({"design": {"anchors": {"code_heavy": {"c_headers": 1.0}}}})
    assert cfg.baselines() == ["natural", "stratified", "code_heavy"]
    listed = cfg.model_copy(update={"final": cfg.final.model_copy(update={"baselines": ["natural"]})})
    assert listed.baselines() == ["natural"]
