"""The swarm trains K proxies per task as one batched model, and still records each as its own run."""

import pytest

from mixopt.flows.swarm import train_swarm
from mixopt.warehouse import read_only_query
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow


def test_batched_swarm_records_every_proxy_once(tmp_path, prefect_harness):
    cfg = tiny_config(tmp_path, runtime={"batch_k": 3})
    summary = train_swarm(config=cfg)
    assert summary.trained == 6 and summary.ok == 6
    wh = cfg.runtime.warehouse
    rows = read_only_query(wh, "select run_id, status, steps from proxy_runs order by run_id")[1]
    assert len(rows) == 6 and len({r[0] for r in rows}) == 6 and all(r[1] == "ok" for r in rows)
    per_run = read_only_query(wh, "select run_id, count(*) from metrics group by run_id")[1]
    steps = {r[0]: r[2] for r in rows}
    assert sorted(per_run) == sorted((rid, steps[rid]) for rid in steps)  # one curve point per step each
    (n_eval,), = read_only_query(wh, "select count(*) from evals")[1]
    assert n_eval == 6 * 3


def test_auto_workers_on_a_cpu_train_batches_in_child_processes(tmp_path, prefect_harness, monkeypatch):
    """`runtime.workers: 0` on a multi-core CPU: one task per core, each batch in its own single-threaded
    child process (`run_batch_in_subprocess`); every proxy is still recorded once."""
    from mixopt.models import launch, swarm_sizing

    monkeypatch.setattr(swarm_sizing.os, "cpu_count", lambda: 2)  # the layout of a 2-core machine
    calls: list[tuple[int, int]] = []
    real = launch.run_batch_in_subprocess

    def spy(specs, work_dir, timeout_s=None):
        calls.append((len(specs), specs[0].threads))
        return real(specs, work_dir, timeout_s)

    monkeypatch.setattr(launch, "run_batch_in_subprocess", spy)
    cfg = tiny_config(tmp_path, swarm={"n_proxies": 4}, runtime={"batch_k": 2, "workers": 0, "threads": 0})
    summary = train_swarm(config=cfg)
    assert summary.trained == 4 and summary.ok == 4
    assert sorted(calls) == [(2, 1), (2, 1)]  # two batches of two, one thread each
    rows = read_only_query(cfg.runtime.warehouse,
                           "select count(distinct run_id) from proxy_runs where status = 'ok'")[1]
    assert rows == [(4,)]
    assert not list((tmp_path / "out").rglob("*.batch.spec.json"))  # a clean batch leaves no files
