"""Crash during a write: a process killed while recording results leaves a consistent warehouse.

A child process records spooled results (`ingest_spool`, the path a flow takes on restart) and is
SIGKILLed: once from inside a transaction (after a run's metrics and evals were inserted, before
COMMIT), then twice from outside at random moments. After each kill the warehouse opens, every
stored run has all of its metrics and evals and no row belongs to a run that is not stored (and the
read path of `mixopt sql` sees exactly that state); a final `ingest_spool` records everything that
was left, exactly once. The same on the PostgreSQL store: tests/warehouse/test_postgres.py.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from mixopt.experiment import Experiment
from mixopt.runspec import DomainShard, RunResult
from mixopt.tasks.swarm import ingest_spool, spool_result
from mixopt.warehouse import Warehouse, read_only_query
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow

N_RUNS = 60
CHILD = """
import json, os, signal, sys
from mixopt.experiment import Experiment
from mixopt.tasks.swarm import ingest_spool
from mixopt.warehouse import Warehouse

exp = Experiment.from_dict(json.loads(open(sys.argv[1]).read()))
die_at = int(sys.argv[2])  # >= 0: SIGKILL ourselves inside the transaction of the die_at-th run
calls = []
original = Warehouse._record_trajectory

def record_trajectory(con, r):
    calls.append(r.run_id)
    if len(calls) - 1 == die_at:  # metrics and evals of this run are inserted, COMMIT is not
        os.kill(os.getpid(), signal.SIGKILL)
    original(con, r)

Warehouse._record_trajectory = staticmethod(record_trajectory)
wh = Warehouse(exp.warehouse)
ingest_spool(exp, wh)
wh.close()
"""


def _spool_many(tmp_path: Path) -> tuple[Experiment, Path, dict[str, int]]:
    """An experiment on three fake domains with N_RUNS finished proxies waiting in its spool."""
    cfg = tiny_config(tmp_path)
    domains = [DomainShard(n, f"{n}/train.bin", f"{n}/val.bin", 1000 * (i + 1), 100) for i, n in enumerate("abc")]
    exp = Experiment.create(cfg, domains, 300, "fingerprint")
    rng = random.Random(0)
    curve_len = {}
    for i in range(N_RUNS):
        w = [rng.random() + 0.01 for _ in domains]
        spec = exp.run_spec("proxy", "design", [x / sum(w) for x in w], 0, cfg.swarm)
        n = 200 + 7 * i
        curve = [[s, 256 * (s + 1), 5.0 - s / n, 1e-3] for s in range(n)]
        spool_result(exp, spec, RunResult(spec.run_id, "ok", steps=n, curve=curve, last_good_step=n - 1,
                                          val_losses={"a": 3.0 + i / 100, "b": 3.5, "c": 4.0}))
        curve_len[spec.run_id] = n
    exp_json = tmp_path / "exp.json"
    exp_json.write_text(json.dumps(exp.to_dict()))
    return exp, exp_json, curve_len


def _spooled(exp: Experiment) -> int:
    return len(list(exp.spool_dir().glob("*.json")))


def _check_consistent(path: str, curve_len: dict[str, int]) -> set[str]:
    """Every stored run is complete and nothing is orphaned; returns the stored run ids."""
    con = duckdb.connect(path, read_only=True)
    try:
        runs = dict(con.execute("SELECT run_id, count(*) FROM runs GROUP BY run_id").fetchall())
        metrics = dict(con.execute("SELECT run_id, count(*) FROM metrics GROUP BY run_id").fetchall())
        evals = dict(con.execute("SELECT run_id, count(*) FROM evals GROUP BY run_id").fetchall())
    finally:
        con.close()
    assert all(n == 1 for n in runs.values())
    assert set(metrics) <= set(runs) and set(evals) <= set(runs)  # no half-written run
    assert {r: metrics.get(r) for r in runs} == {r: curve_len[r] for r in runs}
    assert {r: evals.get(r) for r in runs} == {r: 3 for r in runs}
    # `mixopt sql` / `mixopt.open` (a copy of the file and its WAL, `snapshot.py`) read the same state
    assert {r for (r,) in read_only_query(path, "SELECT run_id FROM runs")[1]} == set(runs)
    return set(runs)


def _child(exp_json: Path, die_at: int = -1) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(exp_json), str(die_at)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_kill_during_writes_leaves_a_consistent_warehouse_and_a_rerun_completes_it(tmp_path):
    exp, exp_json, curve_len = _spool_many(tmp_path)
    with Warehouse(exp.warehouse):
        pass  # the warehouse exists before the first crash

    # 1. killed inside a transaction: the 5th run's metrics and evals were inserted, not committed
    proc = _child(exp_json, die_at=4)
    assert proc.wait(timeout=300) == -signal.SIGKILL, proc.stderr.read()
    stored = _check_consistent(exp.warehouse, curve_len)
    assert len(stored) == 4 and _spooled(exp) == N_RUNS - 4

    # 2. killed from outside at random moments while it records
    rng = random.Random(1234)
    for _ in range(2):
        before = _spooled(exp)
        target = before - rng.randint(1, max(1, before // 3))
        proc = _child(exp_json)
        while _spooled(exp) > target and proc.poll() is None:
            time.sleep(rng.uniform(0.0, 0.01))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        stored = _check_consistent(exp.warehouse, curve_len)
        assert before > _spooled(exp) and len(stored) >= N_RUNS - _spooled(exp)

    # 3. the rerun records what is left; every result lands exactly once
    with Warehouse(exp.warehouse) as wh:
        ingest_spool(exp, wh)
    assert _check_consistent(exp.warehouse, curve_len) == set(curve_len)
    assert _spooled(exp) == 0 and not list(exp.spool_dir().glob("*.corrupt"))
