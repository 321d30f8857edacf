"""The swarm beyond one thread pool: a Dask cluster, retries with backoff, and the nightly extension.

These run the flows in-process against the session's ephemeral Prefect server (`prefect_harness`);
the deployment path through a real server and worker is in test_deployments.py.
"""

import time
from collections import defaultdict
from pathlib import Path

import pytest

from mixopt.experiment import Experiment
from mixopt.flows import swarm as swarm_flow
from mixopt.flows.schedule import extend_and_refit, extended_size
from mixopt.flows.swarm import train_swarm
from mixopt.tasks import swarm as swarm_stage
from mixopt.warehouse import read_only_query
from tests.helpers import tiny_config

pytestmark = pytest.mark.integration

NO_FINAL = {"enabled": False}


def _rows(path, sql):
    return read_only_query(path, sql)[1]


def test_the_swarm_runs_on_a_dask_cluster_and_every_result_lands_once(tmp_path, prefect_harness):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        cfg = tiny_config(tmp_path, final=NO_FINAL, swarm={"n_proxies": 4},
                          runtime={"dask_address": cluster.scheduler_address})
        with distributed.get_task_stream(client) as stream:
            summary = train_swarm(config=cfg)
        workers = {t["worker"] for t in stream.data}
    assert summary.trained == 4 and summary.ok == 4 and summary.reused == 0
    wh = cfg.runtime.warehouse
    assert _rows(wh, "select count(*), count(distinct run_id) from proxy_runs") == [(4, 4)]
    assert _rows(wh, "select status, count(*) from proxy_runs group by status") == [("ok", 4)]
    (n_eval,), = _rows(wh, "select count(*) from evals join proxy_runs using (run_id)")
    assert n_eval == 4 * 3
    # the proxies trained in the cluster's worker processes (both of them), and the flow's process
    # recorded every spooled result: nothing is left in the spool
    assert len(workers) == 2, workers
    assert not list(Path(cfg.runtime.out_dir, "spool").rglob("*.json"))
    again = train_swarm(config=cfg)  # threads this time: same run ids, nothing to train
    assert again.trained == 0 and again.reused == 4


def test_a_proxy_that_keeps_failing_is_retried_with_backoff_then_recorded(tmp_path, prefect_harness, monkeypatch):
    cfg = tiny_config(tmp_path, final=NO_FINAL, swarm={"n_proxies": 4}, runtime={"retries": 1})
    original_spec, original_train = Experiment.run_spec, swarm_stage.train_and_spool
    faulty: list[str] = []
    calls: dict[str, list[float]] = defaultdict(list)

    def with_fault(self, role, label, weights, seed, train):
        spec = original_spec(self, role, label, weights, seed, train)
        if role == "proxy" and (not faulty or faulty[0] == spec.run_id):
            faulty[:] = [spec.run_id]
            spec.fault = "raise@1"
        return spec

    def counted(exp, spec):
        calls[spec.run_id].append(time.monotonic())
        return original_train(exp, spec)

    monkeypatch.setattr(Experiment, "run_spec", with_fault)
    monkeypatch.setattr(swarm_stage, "train_and_spool", counted)
    summary = train_swarm(config=cfg)
    assert summary.failed == 1 and summary.ok == 3
    attempts = calls[faulty[0]]
    assert len(attempts) == 2  # the first try and one retry
    assert attempts[1] - attempts[0] >= swarm_flow.RETRY_BACKOFF_S
    assert all(len(v) == 1 for k, v in calls.items() if k != faulty[0])
    wh = cfg.runtime.warehouse
    rows = _rows(wh, f"select status, error from proxy_runs where run_id = '{faulty[0]}'")
    assert rows[0][0] == "failed" and "injected fault" in rows[0][1]
    assert _rows(wh, "select count(*) from proxy_runs where status = 'ok'") == [(3,)]


def test_extended_size():
    assert extended_size(held=6, add_proxies=8, configured=6) == 14
    assert extended_size(held=0, add_proxies=8, configured=24) == 24
    assert extended_size(held=0, add_proxies=30, configured=24) == 30
    with pytest.raises(ValueError):
        extended_size(held=6, add_proxies=0, configured=6)


def test_extend_and_refit_trains_only_the_new_proxies(tmp_path, prefect_harness):
    cfg = tiny_config(tmp_path, final=NO_FINAL, swarm={"n_proxies": 4})
    first = extend_and_refit(config=cfg, add_proxies=2)  # nothing held yet: the configured 4
    assert (first.held_before, first.n_proxies, first.swarm.trained) == (0, 4, 4)
    second = extend_and_refit(config=cfg, add_proxies=2)  # 4 held: grow to 6, train the 2 new ones
    assert (second.held_before, second.n_proxies) == (4, 6)
    assert second.swarm.trained == 2 and second.swarm.reused == 4
    assert second.experiment_id == first.experiment_id and second.fit.n_train == 6
    wh = cfg.runtime.warehouse
    assert _rows(wh, "select count(*), count(distinct run_id) from proxy_runs") == [(6, 6)]
    assert _rows(wh, "select count(*) from proposals") == [(2,)]


def test_on_the_shared_store_dask_workers_record_their_own_results(tmp_path, prefect_harness, monkeypatch):
    """`runtime.warehouse: postgresql://...` with a Dask cluster: each worker process records the
    proxies it trained; the flow's process records none of them (it only confirms them)."""
    from tests.pgstore import BASE_URL, fresh_database

    distributed = pytest.importorskip("distributed")
    recorded_by_flow: list[str] = []
    original = swarm_stage.record_result

    def spy(exp, wh, spec, result):
        recorded_by_flow.append(spec.run_id)
        return original(exp, wh, spec, result)

    monkeypatch.setattr(swarm_stage, "record_result", spy)  # this process only: the workers are spawned
    with fresh_database(BASE_URL) as url, distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        cfg = tiny_config(tmp_path, final=NO_FINAL, swarm={"n_proxies": 4},
                          runtime={"dask_address": cluster.scheduler_address, "warehouse": url})
        summary = train_swarm(config=cfg)
        assert summary.trained == 4 and summary.ok == 4
        assert _rows(url, "select count(*), count(distinct run_id) from proxy_runs where status = 'ok'") == [(4, 4)]
        assert _rows(url, "select count(*) from evals join proxy_runs using (run_id)") == [(4 * 3,)]
    assert recorded_by_flow == []
    assert not list(Path(cfg.runtime.out_dir, "spool").rglob("*.json"))
