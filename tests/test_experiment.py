"""Experiment and run identity: settings that only say how a run executes never change an id."""

import pytest

from mixopt.config import ConfigError, ExperimentConfig, load_config, parse_config
from mixopt.experiment import Experiment
from mixopt.runspec import DomainShard

DOMAINS = [DomainShard(n, f"/x/{n}.train", f"/x/{n}.val", 1000 * (i + 1), 100) for i, n in enumerate("abc")]

# ids computed before the runtime settings moved out of `swarm` and the caps were renamed: an
# existing warehouse must still resume, so these must never change
IDS_BEFORE_THE_MOVE = {
    "default": ("demo-3b762354ea", "pc308dd84a28b", "f1181f0c4bbbe"),
    "tiny": ("tiny-f6db492ea4", "p13a2523443df", "f44ace19815d7"),
    "custom": ("demo-cf84fe717f", "p5c854c4e6eca", "fbe24d41ac9fe"),
}


# the defaults of the time, given explicitly (the demo's defaults have moved since; an id follows its settings)
THEN = {"swarm": {"tokens": 100_000, "seq_len": 128, "batch_size": 8, "lr": 5e-3, "eval_batches": 8},
        "design": {"target_fraction": 0.0},
        "final": {"model": {"n_layer": 5, "n_embd": 192, "n_head": 4}, "tokens": 500_000, "lr": 2e-3, "seq_len": 128,
                  "batch_size": 16, "eval_batches": 8}}


def _then(**more) -> ExperimentConfig:
    data = {k: dict(v) for k, v in THEN.items()}
    for k, v in more.items():
        data[k] = {**data.get(k, {}), **v}
    return ExperimentConfig.model_validate(data)


def _ids(cfg: ExperimentConfig) -> tuple[str, str, str]:
    exp = Experiment.create(cfg, DOMAINS, 512, "fp")
    proxy = exp.run_spec("proxy", "design", [0.2, 0.3, 0.5], 0, cfg.swarm)
    final = exp.run_spec("final", "proposed", [0.2, 0.3, 0.5], 0, cfg.final)
    return exp.experiment_id, proxy.run_id, final.run_id


def test_ids_are_the_same_as_before_the_settings_moved():
    custom = _then(design={"proxy_max_epochs": 3, "target_fraction": 0.0}, proposer={"final_max_epochs": 2},
                   runtime={"workers": 3, "retries": 2, "batch_k": 4, "isolate": True})
    assert _ids(_then()) == IDS_BEFORE_THE_MOVE["default"]
    tiny = load_config("configs/tiny.yaml").model_dump(mode="json")
    tiny["design"]["target_fraction"] = 0.0
    tiny["final"].update(eval_batches=8, lr=2e-3)
    tiny["swarm"].update(eval_batches=8)
    assert _ids(ExperimentConfig.model_validate(tiny)) == IDS_BEFORE_THE_MOVE["tiny"]
    assert _ids(custom) == IDS_BEFORE_THE_MOVE["custom"]


def test_runtime_settings_are_not_identity():
    how = ExperimentConfig.model_validate({"runtime": {"workers": 7, "retries": 0, "batch_k": 2, "isolate": True}})
    assert _ids(how) == _ids(ExperimentConfig())
    assert how.config_hash() == ExperimentConfig().config_hash()


@pytest.mark.parametrize("section, key, where", [
    ("swarm", "workers", "runtime.workers"), ("swarm", "retries", "runtime.retries"),
    ("swarm", "batch_k", "runtime.batch_k"), ("swarm", "isolate", "runtime.isolate"),
    ("design", "max_epochs", "design.proxy_max_epochs"), ("proposer", "max_epochs", "proposer.final_max_epochs"),
])
def test_a_moved_key_says_where_it_went(section, key, where):
    with pytest.raises(ConfigError) as e:
        parse_config({section: {key: 1}}, source="exp.yaml")
    assert str(e.value) == f"exp.yaml: {section}.{key} moved to {where}"
    with pytest.raises(ValueError, match=f"{section}.{key} moved to {where}"):  # the Prefect form's path
        ExperimentConfig.model_validate({section: {key: 1}})


def test_config_hash_ignores_what_a_run_only_measures() -> None:
    """The default config's hash is the one it had before held-out curves existed (5039cc8), and
    curve or gradient-cosine settings never move it; a setting that changes results does."""
    from mixopt.config import ExperimentConfig

    base = ExperimentConfig()
    assert base.config_hash() == "5eaa59fd9756156e"
    measured = ExperimentConfig(final={"curve_points": 3, "curve_eval_batches": 4, "interaction_points": 0},
                                swarm={"curve_proxies": 2})
    assert measured.config_hash() == base.config_hash()
    assert ExperimentConfig(final={"tokens": 123_456}).config_hash() != base.config_hash()
