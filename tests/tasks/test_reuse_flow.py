"""Mixture reuse through the swarm and fit steps (plain functions, losses from a known function): a search
over four domains, then a fifth domain added and the search answered again with `design.reuse`; and the
sources that are refused."""

from __future__ import annotations

import numpy as np
import pytest

from mixopt.config import ConfigError
from mixopt.experiment import Experiment, design_identity
from mixopt.runspec import DomainShard, RunResult
from mixopt.tasks.fit import fit_and_propose
from mixopt.tasks.swarm import plan_swarm, record_result, reuse_plan
from mixopt.warehouse import Warehouse
from tests.helpers import tiny_config
from tests.pgstore import pg_url  # noqa: F401 - the fixture

OLD = [("a", 40_000), ("b", 40_000), ("c", 30_000), ("d", 30_000)]
OPT = {"a": 0.3, "b": 0.2, "c": 0.15, "d": 0.05, "e": 0.3}


def _experiment(tmp_path, warehouse: str, domains, name: str, renamed=None, **over) -> Experiment:
    cfg = tiny_config(tmp_path, name=name, swarm={"n_proxies": 8},
                      runtime={"warehouse": warehouse, "out_dir": str(tmp_path / name)}, **over)
    renamed = renamed or {}
    shards = [DomainShard(renamed.get(n, n), "x", "y", t, 100, text_sha256=f"sha-{n}") for n, t in domains]
    return Experiment.create(cfg, shards, vocab_size=300, fingerprint="fp-" + "".join(n for n, _ in domains))


def _search(exp: Experiment, wh: Warehouse, content: dict[str, str]):
    """Record the experiment, train its swarm on a quadratic loss, fit and propose. `content`: this
    experiment's domain name -> the name its content had in `OPT`."""
    wh.record_experiment(exp.experiment_id, exp.name, exp.config_hash, exp.fingerprint, exp.config, exp.domains,
                         exp.prior)
    opt = np.array([OPT[content.get(n, n)] for n in exp.domain_names])
    todo, _ = plan_swarm(exp, wh)
    for s in todo:
        loss = 3.0 + 2.0 * float(np.sum((np.array(s.weights) - opt / opt.sum()) ** 2))
        record_result(exp, wh, s, RunResult(run_id=s.run_id, status="ok", n_params=1000, tokens=s.train["tokens"],
                                            val_losses={d: loss for d in exp.domain_names}))
    return todo, fit_and_propose(exp, wh)


def _reuse_end_to_end(tmp_path, warehouse: str) -> None:
    old = _experiment(tmp_path, warehouse, OLD, "old")
    new = _experiment(tmp_path, warehouse, OLD + [("e", 30_000)], "new", renamed={"a": "alpha"},
                      design={"reuse": old.experiment_id})
    with Warehouse(warehouse) as wh:
        old_todo, old_out = _search(old, wh, {})
        todo, out = _search(new, wh, {"alpha": "a"})
    assert len(old_todo) == 8
    assert len(todo) == 4  # ceil(8 proxies x 2 searched coordinates / 5 domains), at the minimum of 4
    src = np.array(old_out.weights)
    within = src / src.sum()
    for spec in todo:
        w = np.array(spec.weights)
        np.testing.assert_allclose(w[:4], w[:4].sum() * within, atol=1e-9)  # the composite is frozen
    assert len({round(s.weights[4], 4) for s in todo}) == 4  # the new domain's weight is searched
    w = np.array(out.weights)
    assert w.shape == (5,) and abs(w.sum() - 1) < 1e-9  # the proposal covers every domain
    np.testing.assert_allclose(w[:4], w[:4].sum() * within, atol=1e-6)
    lineage = out.details["reused_from"]
    assert lineage["experiment"] == old.experiment_id and lineage["proposal_id"] == old_out.proposal_id
    assert lineage["renamed"] == {"a": "alpha"} and lineage["searched"] == ["e"]
    assert "reused_from" not in old_out.details


def test_reuse_searches_the_new_domain_and_the_composite_total_only(tmp_path):
    _reuse_end_to_end(tmp_path, str(tmp_path / "wh.duckdb"))


def test_reuse_from_the_shared_postgresql_store(tmp_path, pg_url):  # noqa: F811 - skipped without a server
    _reuse_end_to_end(tmp_path, pg_url)


def test_a_source_in_another_duckdb_file_is_refused(tmp_path):
    old = _experiment(tmp_path, str(tmp_path / "one.duckdb"), OLD, "old")
    with Warehouse(old.warehouse) as wh:
        _search(old, wh, {})
    new = _experiment(tmp_path, str(tmp_path / "two.duckdb"), OLD + [("e", 30_000)], "new",
                      design={"reuse": old.experiment_id})
    with Warehouse(new.warehouse) as wh, pytest.raises(ConfigError) as e:
        plan_swarm(new, wh)
    msg = str(e.value)
    assert "design.reuse" in msg and "not in this warehouse" in msg and "another DuckDB file" in msg
    assert "\n" not in msg


def test_sources_with_nothing_to_reuse_are_refused(tmp_path):
    wh_path = str(tmp_path / "wh.duckdb")
    old = _experiment(tmp_path, wh_path, OLD, "old")
    with Warehouse(wh_path) as wh:
        wh.record_experiment(old.experiment_id, old.name, old.config_hash, old.fingerprint, old.config, old.domains,
                             old.prior)
        new = _experiment(tmp_path, wh_path, OLD + [("e", 30_000)], "new", design={"reuse": old.experiment_id})
        with pytest.raises(ConfigError, match="has no proposal yet"):
            reuse_plan(new, wh)
        _search(old, wh, {})
        assert reuse_plan(new, wh) is not None
        other = _experiment(tmp_path, wh_path, [("x", 40_000), ("y", 40_000)], "other",
                            design={"reuse": old.experiment_id})
        with pytest.raises(ConfigError, match="shares no unchanged domain"):
            reuse_plan(other, wh)
        exact = _experiment(tmp_path, wh_path, OLD + [("e", 30_000)], "exact", design={"reuse": old.experiment_id},
                            proposer={"kind": "exact"})
        with pytest.raises(ConfigError, match="final-scale proposer"):
            reuse_plan(exact, wh)


def test_unset_reuse_leaves_ids_and_the_hash_as_before(tmp_path):
    cfg = tiny_config(tmp_path)
    assert "reuse" not in design_identity(cfg) and "reuse_proxies" not in design_identity(cfg)
    assert "reuse" not in cfg.model_dump(mode="json")["design"]
    on = tiny_config(tmp_path, design={"reuse": "old-0123456789"})
    assert on.config_hash() != cfg.config_hash()
    with pytest.raises(ValueError, match="reuse_proxies is set but design.reuse is not"):
        tiny_config(tmp_path, design={"reuse_proxies": 4})
