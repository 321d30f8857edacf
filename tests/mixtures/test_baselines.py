"""The built-in baselines: each builder's mixture, the registry's roles, and what reads them."""

from __future__ import annotations

import numpy as np
import pytest

from mixopt.config import BUILTIN_BASELINES, RESERVED_LABELS, ExperimentConfig
from mixopt.mixtures.baselines import (
    BASELINES,
    MODULES,
    BaselineContext,
    adaptive_baselines,
    build_baseline,
    default_baselines,
    register_baseline,
    static_baselines,
)

TOKENS = np.array([90_000.0, 50_000.0, 20_000.0])


def _ctx(caps=None, proposal=None) -> BaselineContext:
    return BaselineContext(domains=["x", "y", "z"], train_tokens=TOKENS, caps=caps,
                           target_weights=np.ones(3) / 3, proposal=proposal)


def test_the_registry_lists_the_builtins_with_their_roles() -> None:
    assert MODULES == ("natural", "stratified", "aioli", "unimax", "similarity")
    assert BASELINES.names() == ["natural", "stratified", "aioli", "aioli_restricted", "unimax",
                                 "similarity"] == list(BUILTIN_BASELINES)
    assert default_baselines() == ("natural", "stratified")
    assert static_baselines() == ("natural", "stratified", "unimax", "similarity")
    assert adaptive_baselines() == ("aioli", "aioli_restricted")
    assert RESERVED_LABELS == {"natural", "stratified", "aioli", "aioli_restricted", "unimax", "similarity",
                               "proposed"}
    assert ExperimentConfig().baselines() == ["natural", "stratified"]


def test_natural_is_token_proportional_within_the_caps() -> None:
    assert np.allclose(build_baseline("natural", _ctx()), TOKENS / TOKENS.sum())
    capped = np.array(build_baseline("natural", _ctx(caps=np.array([0.4, 1.0, 1.0]))))
    assert capped[0] == pytest.approx(0.4) and capped.sum() == pytest.approx(1.0)
    assert capped[1] / capped[2] == pytest.approx(50 / 20)  # the rest keeps its proportions


def test_stratified_and_aioli_start_uniform_within_the_caps() -> None:
    assert np.allclose(build_baseline("stratified", _ctx()), 1 / 3)
    caps = np.array([1.0, 1.0, 0.1])
    w = np.array(build_baseline("stratified", _ctx(caps=caps)))
    assert w[2] == pytest.approx(0.1) and np.allclose(w[:2], 0.45)
    assert build_baseline("aioli", _ctx(caps=caps)) == list(w)


def test_aioli_restricted_starts_from_the_proposal() -> None:
    assert build_baseline("aioli_restricted", _ctx(proposal=np.array([0.2, 0.2, 0.6]))) == [0.2, 0.2, 0.6]
    with pytest.raises(ValueError, match="starts from the proposal"):
        build_baseline("aioli_restricted", _ctx())


@pytest.fixture
def target_only(monkeypatch):
    """A static default baseline, `target_only` (the target's own domain weights), for one test."""
    monkeypatch.setattr(BASELINES, "_entries", dict(BASELINES._entries))
    register_baseline("target_only", default=True)(lambda ctx: [float(w) for w in ctx.target_weights])
    yield "target_only"


def test_a_registered_static_baseline_becomes_an_anchor_a_default_and_a_pilot_run(target_only, tmp_path) -> None:
    from mixopt.experiment import Experiment
    from mixopt.runspec import DomainShard
    from mixopt.tasks.fidelity import anchor_proxies, n_extra_runs
    from mixopt.tasks.final import final_mixtures
    from tests.helpers import tiny_config

    cfg = tiny_config(tmp_path, design={"anchor_proxies": True, "noise_seeds": 1},
                      target={"weights": {"domain0": 1.0}})
    domains = [DomainShard(f"domain{i}", "x", "y", t, 100) for i, t in enumerate((90_000, 50_000, 20_000))]
    exp = Experiment.create(cfg, domains, vocab_size=300, fingerprint="fp")
    assert cfg.baselines() == ["natural", "stratified", "target_only"]
    assert list(anchor_proxies(exp)) == ["natural", "stratified", "target_only"]
    assert n_extra_runs(exp) == 3 * 2  # three anchors, each at 1 + noise_seeds seeds
    mixes = final_mixtures(exp, [0.2, 0.3, 0.5], static_only=True)
    assert list(mixes) == ["proposed", "natural", "stratified", "target_only"]
    assert mixes["target_only"] == [1.0, 0.0, 0.0]


def test_a_registered_baseline_name_is_reserved_and_may_be_listed(target_only) -> None:
    from mixopt.config import ConfigError, parse_config

    assert parse_config({"final": {"baselines": ["target_only", "aioli"]}}).baselines() == ["target_only", "aioli"]
    with pytest.raises(ConfigError, match="bad anchor name 'target_only'"):
        parse_config({"design": {"anchors": {"target_only": {"a": 1.0}}}})


def test_unimax_is_uniform_with_each_domain_read_at_most_once() -> None:
    from dataclasses import replace

    ctx = _ctx()
    assert np.allclose(build_baseline("unimax", ctx), 1 / 3)  # no budget known: uniform
    # 120k tokens: z (20k tokens) may take 20/120 at one epoch; the rest is spread evenly
    w = np.array(build_baseline("unimax", replace(ctx, budget_tokens=120_000)))
    assert w[2] == pytest.approx(20 / 120) and w[0] == pytest.approx(w[1]) and w.sum() == pytest.approx(1)
    # a budget the data cannot fill at one epoch: the budget's own caps decide
    caps = np.array([1.0, 1.0, 0.3])
    far = np.array(build_baseline("unimax", replace(ctx, budget_tokens=10_000_000, caps=caps)))
    assert np.allclose(far, build_baseline("stratified", replace(ctx, caps=caps)))


def test_similarity_is_the_prior_within_the_caps() -> None:
    from dataclasses import replace

    with pytest.raises(ValueError, match="similarity prior"):
        build_baseline("similarity", _ctx())
    ctx = replace(_ctx(), similarity=np.array([0.8, 0.2, 0.0]))
    assert build_baseline("similarity", ctx) == pytest.approx([0.8, 0.2, 0.0])
    w = build_baseline("similarity", replace(ctx, caps=np.array([0.5, 1.0, 1.0])))
    assert w[0] == pytest.approx(0.5) and sum(w) == pytest.approx(1)
