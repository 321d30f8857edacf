"""plan_final with the Aioli baselines: distinct run ids, the right starting mixtures and modes."""

from __future__ import annotations

import numpy as np

from mixopt.experiment import Experiment
from mixopt.runspec import DomainShard
from mixopt.tasks.final import final_mixtures, plan_final
from mixopt.warehouse import Warehouse
from tests.helpers import tiny_config


def _experiment(tmp_path, **final) -> Experiment:
    cfg = tiny_config(tmp_path, final={"seeds": [0, 1], **final})
    domains = [DomainShard(n, f"{n}.train", f"{n}.val", t, 1000)
               for n, t in (("x", 90_000), ("y", 50_000), ("z", 20_000))]
    return Experiment.create(cfg, domains, vocab_size=300, fingerprint="fp")


def test_plan_final_gives_five_distinct_runs_per_seed(tmp_path) -> None:
    exp = _experiment(tmp_path, baselines=["natural", "stratified", "aioli", "aioli_restricted"])
    proposal = [0.5, 0.3, 0.2]
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        specs = plan_final(exp, wh, proposal)
    assert len(specs) == 10 and len({s.run_id for s in specs}) == 10
    for seed in (0, 1):
        labels = sorted(s.label for s in specs if s.seed == seed)
        assert labels == ["aioli", "aioli_restricted", "natural", "proposed", "stratified"]
    by = {(s.label, s.seed): s for s in specs}
    aioli = exp.cfg.final.aioli.model_dump(mode="json")
    assert by["aioli", 0].aioli == aioli and by["aioli_restricted", 0].aioli == aioli
    assert all(s.aioli is None for s in specs if s.label not in ("aioli", "aioli_restricted"))
    # same starting mixtures as their static counterparts, yet different runs
    assert by["aioli", 0].weights == by["stratified", 0].weights
    assert np.allclose(by["aioli_restricted", 0].weights, proposal)
    assert by["aioli_restricted", 0].weights == by["proposed", 0].weights


def test_static_run_ids_do_not_change_with_aioli_baselines(tmp_path) -> None:
    plain = _experiment(tmp_path, baselines=["natural", "stratified"])
    both = _experiment(tmp_path, baselines=["natural", "stratified", "aioli", "aioli_restricted"])
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        a = {s.label: s.run_id for s in plan_final(plain, wh, [0.5, 0.3, 0.2]) if s.seed == 0}
        b = {s.label: s.run_id for s in plan_final(both, wh, [0.5, 0.3, 0.2]) if s.seed == 0}
    assert all(b[label] == rid for label, rid in a.items())
    spec = plain.run_spec("final", "stratified", [0.4, 0.3, 0.3], 0, plain.cfg.final)
    assert spec.aioli is None


def test_final_mixtures_lists_the_aioli_starting_points(tmp_path) -> None:
    exp = _experiment(tmp_path, baselines=["aioli"])
    mixes = final_mixtures(exp, [0.2, 0.2, 0.6])
    assert set(mixes) == {"proposed", "aioli"}
    assert np.isclose(sum(mixes["aioli"]), 1.0)
