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


def test_matched_proxies_draw_from_subsamples_that_enter_their_ids() -> None:
    """`design.match_repetition`: a proxy's pools are tokens / final.tokens of each shard (at least one
    window), a final run reads whole shards, and the pools and the final budget are part of the ids."""
    import numpy as np

    plain = ExperimentConfig.model_validate({"swarm": {"tokens": 1_000, "seq_len": 16},
                                             "final": {"tokens": 8_000}})
    matched = plain.model_copy(update={"design": plain.design.model_copy(update={"match_repetition": True})})
    exp = Experiment.create(matched, DOMAINS, 512, "fp")
    proxy = exp.run_spec("proxy", "design", [0.2, 0.3, 0.5], 0, matched.swarm)
    assert [d.pool_tokens for d in proxy.domains] == [125, 250, 375]  # 1/8 of 1000, 2000, 3000
    ladder = exp.run_spec("proxy", "ladder", [0.2, 0.3, 0.5], 0, matched.swarm.model_copy(update={"tokens": 250}))
    assert [d.pool_tokens for d in ladder.domains] == [32, 63, 94]  # 1/32, and never below one window (17)
    final = exp.run_spec("final", "proposed", [0.2, 0.3, 0.5], 0, matched.final)
    assert [d.pool_tokens for d in final.domains] == [0, 0, 0]
    assert exp.experiment_id != Experiment.create(plain, DOMAINS, 512, "fp").experiment_id
    assert _ids(matched)[1] != _ids(plain)[1]
    more_final = matched.model_copy(update={"final": matched.final.model_copy(update={"tokens": 16_000})})
    assert _ids(more_final)[0] != _ids(matched)[0]  # the subsamples follow the final budget
    assert _ids(plain.model_copy(update={"final": more_final.final}))[0] == _ids(plain)[0]  # plain proxies do not
    assert _ids(matched) == _ids(matched)  # deterministic
    assert plain.config_hash() == ExperimentConfig.model_validate(  # the new field at its default: hash unchanged
        {"swarm": {"tokens": 1_000, "seq_len": 16}, "final": {"tokens": 8_000}}).config_hash()
    # caps: proxy_max_epochs (4) at the final budget, where a plain swarm's are at swarm.tokens
    np.testing.assert_allclose(exp.proxy_caps(), np.minimum(1, 4 * np.array([1000, 2000, 3000]) / 8_000))
    np.testing.assert_allclose(Experiment.create(plain, DOMAINS, 512, "fp").proxy_caps(), [1, 1, 1])


def test_a_domain_smaller_than_one_window_is_not_subsampled() -> None:
    tiny = [DomainShard("a", "/x/a.train", "/x/a.val", 10, 5), *DOMAINS[1:]]
    cfg = ExperimentConfig.model_validate({"swarm": {"tokens": 100, "seq_len": 16}, "final": {"tokens": 100_000},
                                           "design": {"match_repetition": True}})
    spec = Experiment.create(cfg, tiny, 512, "fp").run_spec("proxy", "design", [0.0, 0.5, 0.5], 0, cfg.swarm)
    assert [d.pool_tokens for d in spec.domains] == [0, 17, 17]  # the 10-token shard whole; one window of the rest
