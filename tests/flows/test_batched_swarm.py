"""The swarm trains K proxies per task as one batched model, and still records each as its own run."""

from mixopt.flows.swarm import train_swarm
from mixopt.warehouse import read_only_query
from tests.helpers import tiny_config


def test_batched_swarm_records_every_proxy_once(tmp_path, prefect_harness):
    cfg = tiny_config(tmp_path, swarm={"batch_k": 3})
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
