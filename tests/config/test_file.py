"""Every deployment accepts `config_file`; the form's given fields override the file's."""

import inspect
from pathlib import Path

import pytest

from mixopt.config import ConfigError, ExperimentConfig
from mixopt.config.file import form_overrides, resolve_config

FILE = """
name: kept_in_git
corpus: {source: synthetic, synthetic_domains: 3}
swarm: {n_proxies: 9, tokens: 5000, model: {n_layer: 1}}
target: {weights: {d0: 1.0}}
"""


def test_the_file_alone(tmp_path: Path):
    (tmp_path / "exp.yaml").write_text(FILE)
    cfg = resolve_config(ExperimentConfig(), str(tmp_path / "exp.yaml"))
    assert (cfg.name, cfg.swarm.n_proxies, cfg.swarm.model.n_layer) == ("kept_in_git", 9, 1)
    assert resolve_config(None, None) == ExperimentConfig()


def test_form_fields_override_field_by_field(tmp_path: Path):
    (tmp_path / "exp.yaml").write_text(FILE)
    form = ExperimentConfig.model_validate({"swarm": {"n_proxies": 4, "model": {"n_embd": 32}},
                                            "target": {"weights": {"d1": 1.0}}, "runtime": {"device": "cpu"}})
    assert form_overrides(form) == {"swarm": {"n_proxies": 4, "model": {"n_embd": 32}},
                                    "target": {"weights": {"d1": 1.0}}, "runtime": {"device": "cpu"}}
    cfg = resolve_config(form, str(tmp_path / "exp.yaml"))
    assert (cfg.swarm.n_proxies, cfg.swarm.tokens, cfg.swarm.model.n_layer, cfg.swarm.model.n_embd) == (4, 5000, 1, 32)
    assert cfg.target.weights == {"d1": 1.0} and cfg.runtime.device == "cpu" and cfg.name == "kept_in_git"
    # a form that sends every default back (as a UI may) does not undo the file
    echoed = ExperimentConfig.model_validate(ExperimentConfig().model_dump(mode="json"))
    assert resolve_config(echoed, str(tmp_path / "exp.yaml")).swarm.n_proxies == 9


def test_a_bad_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        resolve_config(None, str(tmp_path / "nope.yaml"))
    (tmp_path / "bad.yaml").write_text("swarm: {n_proxies: 1}\n")
    with pytest.raises(ConfigError, match="swarm.n_proxies"):
        resolve_config(None, str(tmp_path / "bad.yaml"))


def test_every_deployment_takes_config_file():
    import importlib

    import yaml

    deployments = yaml.safe_load(Path("prefect.yaml").read_text())["deployments"]
    for d in deployments:
        path, name = d["entrypoint"].split(":")
        module = path.removesuffix(".py").replace("/", ".")
        fn = getattr(importlib.import_module(module), name).fn
        assert "config_file" in inspect.signature(fn).parameters, d["name"]
        assert "resolve_config(config, config_file)" in inspect.getsource(fn), d["name"]
    nightly = next(d for d in deployments if d["name"] == "nightly")
    assert Path(nightly["parameters"]["config_file"]).is_file()
