"""The runner: which path proxies take, K, workers, threads, round sizes and final-run groups."""

from __future__ import annotations

import pytest

from mixopt.config import ModelConfig, RuntimeConfig
from mixopt.models import runner, swarm_sizing
from mixopt.runspec import RunSpec


def rt(**kw) -> RuntimeConfig:
    return RuntimeConfig(**{"device": "cpu", **kw})


def test_execution_mode_chooses_one_path(monkeypatch):
    monkeypatch.setattr(swarm_sizing.os, "cpu_count", lambda: 4)
    assert runner.execution_mode(rt(isolate=True)) == runner.ISOLATED
    assert runner.execution_mode(rt(workers=0)) == runner.CHILD  # auto on a multi-core CPU
    assert runner.execution_mode(rt(workers=2)) == runner.IN_PROCESS  # explicit workers: threads here
    assert runner.execution_mode(rt(workers=0, dask_address="local:2")) == runner.IN_PROCESS
    monkeypatch.setattr(swarm_sizing.os, "cpu_count", lambda: 1)
    assert runner.execution_mode(rt(workers=0)) == runner.IN_PROCESS  # one core: one task, no child


def test_workers_threads_and_k(monkeypatch):
    monkeypatch.setattr(swarm_sizing.os, "cpu_count", lambda: 4)
    assert runner.task_workers(rt(workers=3)) == 3
    assert runner.task_workers(rt(workers=0)) == 4
    assert runner.child_threads(rt(workers=0, threads=0)) == 1  # 4 cores over 4 tasks
    assert runner.child_threads(rt(workers=0, threads=2)) == 2
    model = ModelConfig(n_layer=1, n_embd=16, n_head=2)
    assert runner.proxies_per_task(rt(batch_k=5), model, 300, 32, 8) == 5
    assert runner.proxies_per_task(rt(batch_k=5, isolate=True), model, 300, 32, 8) == 1
    monkeypatch.setattr(swarm_sizing, "available_memory_bytes", lambda device: 64 * 2**30)
    auto = runner.proxies_per_task(rt(workers=1), model, 300, 32, 8)
    assert 1 <= auto <= swarm_sizing.MAX_K["cpu"]


@pytest.mark.parametrize("n, workers, k, size", [(10, 2, 4, 3), (6, 2, 3, 3), (7, 1, 4, 4), (3, 4, 16, 1),
                                                 (16, 1, 16, 16), (17, 1, 16, 9)])
def test_round_group_size_spreads_evenly(n, workers, k, size):
    got = runner.round_group_size(n, workers, k)
    assert got == size and 1 <= got <= k
    tasks = -(-n // got)
    assert -(-tasks // workers) == -(-n // (workers * k))  # no worker trains more batches than needed


def spec(run_id: str, threads: int = 0) -> RunSpec:
    return RunSpec(run_id=run_id, role="final", label="x", domains=[], weights=[1.0], train={}, vocab_size=1,
                   seed=0, threads=threads)


def test_final_groups_and_workers():
    specs = [spec(str(i)) for i in range(5)]
    assert runner.final_workers(rt(final_workers=3), devices=1) == 3
    assert runner.final_workers(rt(final_workers=3), devices=2) == 1  # DDP runs go one at a time
    groups = runner.final_groups(specs, 2)
    assert [[s.run_id for s in g] for g in groups] == [["0", "1"], ["2", "3"], ["4"]]
    assert all(s.threads == 1 for s in specs)
    one = [spec("a", threads=3)]
    assert runner.final_groups(one, 1)[0][0].threads == 3  # alone: its threads are kept
