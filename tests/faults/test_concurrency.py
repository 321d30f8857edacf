"""Concurrency: eight proxies finishing at the same moment each land in the warehouse exactly once.

The flow runs with `runtime.workers: 8` and eight tiny proxies; each proxy's task waits at a barrier
after training and spooling, so all eight results come back to the flow together. (Eight threads
writing through one `Warehouse` at once: tests/warehouse/test_store.py::
test_concurrent_writers_in_one_process_lose_nothing.)
"""

from __future__ import annotations

import threading

import pytest

from mixopt.flows.swarm import train_swarm
from mixopt.tasks import swarm as swarm_stage
from mixopt.warehouse import read_only_query
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow


def _rows(path, sql):
    return read_only_query(path, sql)[1]


def test_eight_workers_finishing_together_store_every_result_once(tmp_path, prefect_harness, monkeypatch):
    cfg = tiny_config(tmp_path, final={"enabled": False}, swarm={"n_proxies": 8, "tokens": 2048},
                      runtime={"workers": 8})
    barrier = threading.Barrier(8, timeout=600)
    original = swarm_stage.train_and_spool
    arrived: list[str] = []

    def train_then_wait(exp, spec):
        result = original(exp, spec)
        arrived.append(spec.run_id)
        barrier.wait()  # all eight return at the same moment
        return result

    monkeypatch.setattr(swarm_stage, "train_and_spool", train_then_wait)
    summary = train_swarm(config=cfg)
    assert len(arrived) == 8 and not barrier.broken
    assert summary.trained == 8 and summary.ok == 8
    wh = cfg.runtime.warehouse
    assert _rows(wh, "select count(*), count(distinct run_id) from proxy_runs") == [(8, 8)]
    assert sorted(r for r, in _rows(wh, "select run_id from proxy_runs")) == sorted(arrived)
    assert _rows(wh, "select count(*), count(distinct (run_id, domain)) from evals") == [(24, 24)]
    bad = _rows(wh, "select r.run_id from proxy_runs r join metrics m using (run_id) "
                    "group by r.run_id, r.steps "
                    "having count(*) <> any_value(r.steps) or count(distinct m.step) <> count(*)")
    assert bad == []
    assert not list((tmp_path / "out" / "spool").rglob("*.json"))
