"""Faults on the shared store (PostgreSQL), each with its outcome:

- the writer's connection killed mid-swarm (`pg_terminate_backend` from another connection, once
  inside a run's transaction and once between transactions): the write is re-run on a new
  connection, the swarm finishes, no result lost or doubled;
- two experiments written at once from two processes: both complete, each sees only its own runs;
- kill -9 of the process between training a proxy and recording it: the spooled result is
  recorded exactly once when the experiment is resumed, and not trained again;
- a warehouse (DuckDB file or store) whose schema is newer than the code: refused, naming both versions.

Tests that need PostgreSQL are skipped, with the reason, when none answers (`tests/pgstore.py`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from mixopt.runspec import RunResult
from mixopt.warehouse import ReadOnlyWarehouse, Warehouse, read_only_query, reads
from mixopt.warehouse.postgres import WRITER_NAME
from mixopt.warehouse.schema import MIGRATIONS, SchemaTooNew
from tests.helpers import tiny_config
from tests.pgstore import pg_url  # noqa: F401 - the fixture

REPO = Path(__file__).resolve().parents[2]
NO_FINAL = {"enabled": False}
LATEST = MIGRATIONS[-1][0]


def _rows(url, sql):
    return read_only_query(url, sql)[1]


def _consistent(url: str, n: int) -> None:
    """n proxies, each once, each with all its metrics (one per step) and its 3 domains' losses."""
    assert _rows(url, "select count(*), count(distinct run_id) from proxy_runs where status = 'ok'") == [(n, n)]
    assert _rows(url, "select count(*) from proxy_runs r where (select count(*) from metrics m "
                      "where m.run_id = r.run_id) <> r.steps") == [(0,)]
    assert _rows(url, "select count(*) from evals join proxy_runs using (run_id)") == [(3 * n,)]


# ---------------------------------------------------------------- a newer schema
def _bump(con, version: int) -> None:
    con.execute("INSERT INTO schema_version (version, description, applied_at) VALUES "
                f"({version}, 'from a newer mixopt', now())")


def test_a_duckdb_file_with_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "wh.duckdb"
    Warehouse(path).close()
    with duckdb.connect(str(path)) as con:
        _bump(con, LATEST + 3)
    with pytest.raises(SchemaTooNew) as e:
        Warehouse(path)
    message = str(e.value)
    assert f"version {LATEST + 3}" in message and f"mixopt's version {LATEST}" in message and str(path) in message
    assert "\n" not in message
    with duckdb.connect(str(path)) as con:  # nothing applied, nothing changed
        assert con.execute("select max(version), count(*) from schema_version").fetchall() == [(LATEST + 3, LATEST + 1)]
    with ReadOnlyWarehouse(path) as db:  # readers still read
        assert db.rows("select count(*) from runs")[1] == [(0,)]
    with duckdb.connect(str(path)) as con:
        con.execute("DELETE FROM schema_version WHERE version > ?", [LATEST])
    Warehouse(path).close()  # the refused open let go of the file's lock


def test_a_store_with_a_newer_schema_is_refused(pg_url):  # noqa: F811
    Warehouse(pg_url).close()
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as con:
        _bump(con, LATEST + 1)
    with pytest.raises(SchemaTooNew, match=rf"version {LATEST + 1}, newer than this mixopt's version {LATEST}"):
        Warehouse(pg_url)
    assert _rows(pg_url, "select count(*) from schema_version") == [(LATEST + 1,)]
    from typer.testing import CliRunner

    from mixopt.cli import app

    result = CliRunner().invoke(app, ["store", "grant-reader", "r_unused", "-w", pg_url])  # a writer: refused too
    assert result.exit_code == 2 and f"version {LATEST + 1}" in result.stderr


# ---------------------------------------------------------------- the writer's connection killed
def _terminate_writers(url: str) -> int:
    with __import__("psycopg").connect(url, autocommit=True) as con:
        return sum(r[0] for r in con.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s "
            "AND datname = current_database() AND pid <> pg_backend_pid()", [WRITER_NAME]).fetchall())


@pytest.mark.slow
def test_the_writer_connection_killed_mid_swarm_loses_and_doubles_nothing(
        pg_url, tmp_path, prefect_harness, monkeypatch):  # noqa: F811
    from mixopt.flows.swarm import train_swarm
    from mixopt.tasks import swarm as swarm_stage

    n = 5
    cfg = tiny_config(tmp_path, final=NO_FINAL, swarm={"n_proxies": n}, runtime={"warehouse": pg_url})
    order: list[str] = []
    killed: list[tuple[str, str]] = []
    in_transaction = Warehouse._record_trajectory
    original_record = swarm_stage.record_result

    def kill_inside(con, r):  # the 2nd run: its rows are inserted, COMMIT is not
        order.append(r.run_id)
        if len(set(order)) == 2 and order.count(r.run_id) == 1:
            killed.append(("inside", r.run_id))
            assert _terminate_writers(pg_url) == 1
        in_transaction(con, r)

    def kill_between(exp, wh, spec, result):  # before the 4th run: the idle connection
        if len(set(order)) == 3 and not any(k == "between" for k, _ in killed):
            killed.append(("between", result.run_id))
            assert _terminate_writers(pg_url) == 1
        return original_record(exp, wh, spec, result)

    monkeypatch.setattr(Warehouse, "_record_trajectory", staticmethod(kill_inside))
    monkeypatch.setattr(swarm_stage, "record_result", kill_between)
    warnings: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warnings.append(record.getMessage())
    logging.getLogger("mixopt.warehouse.store").addHandler(handler)
    try:
        summary = train_swarm(config=cfg)
    finally:
        logging.getLogger("mixopt.warehouse.store").removeHandler(handler)
    assert [k for k, _ in killed] == ["inside", "between"]
    assert summary.trained == n and summary.ok == n and summary.failed == 0
    assert Counter(order)[killed[0][1]] == 2  # that run's transaction was rolled back and re-run
    assert [w.split(":")[0] for w in warnings] == ["record_run", "record_mixture"]  # one reconnect each
    assert all("connection to the store lost" in w for w in warnings)
    _consistent(pg_url, n)
    again = train_swarm(config=cfg)
    assert again.trained == 0 and again.reused == n


# ---------------------------------------------------------------- processes
CHILD = """
import json, os, signal, sys, time
from pathlib import Path
from mixopt.config import ExperimentConfig
from mixopt.flows.swarm import train_swarm
from mixopt.tasks import swarm as swarm_stage

cfg = ExperimentConfig.model_validate_json(Path(sys.argv[1]).read_text())
mode, me, other = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
original = swarm_stage.record_result
calls = []

def record(exp, wh, spec, result):
    calls.append(spec.run_id)
    if mode == "together" and len(calls) == 1:  # both processes are recording before either goes on
        me.touch()
        deadline = time.monotonic() + 240
        while not other.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    if mode == "die" and len(calls) == 2:  # trained and spooled, not recorded
        me.write_text(spec.run_id)
        os.kill(os.getpid(), signal.SIGKILL)
    return original(exp, wh, spec, result)

swarm_stage.record_result = record
s = train_swarm(config=cfg)
print("SUMMARY " + json.dumps({"trained": s.trained, "ok": s.ok, "experiment_id": s.experiment_id}))
"""


def _child(cfg, tmp_path: Path, tag: str, mode: str, other: str) -> subprocess.Popen:
    """A `train_swarm` process on the test session's Prefect server (`prefect_harness`: no server of
    its own that would outlive a kill -9), in its own process group, output to `<tag>.log`."""
    from prefect.settings import PREFECT_API_URL

    spec = tmp_path / f"{tag}.json"
    spec.write_text(cfg.model_dump_json())
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_API_URL": PREFECT_API_URL.value(),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    log = open(tmp_path / f"{tag}.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(spec), mode, str(tmp_path / f"mark-{tag}"),
                             str(tmp_path / f"mark-{other}")], stdout=log, stderr=subprocess.STDOUT,
                            env=env, cwd=tmp_path, start_new_session=True)
    log.close()
    return proc


def _finish(proc: subprocess.Popen, tmp_path: Path, tag: str) -> str:
    try:
        proc.wait(timeout=400)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the child's own group: anything it left behind
        except ProcessLookupError:
            pass
        proc.wait()
    return (tmp_path / f"{tag}.log").read_text()


def _summary(out: str) -> dict:
    lines = [x for x in out.splitlines() if x.startswith("SUMMARY ")]
    assert lines, out[-3000:]
    return json.loads(lines[-1].removeprefix("SUMMARY "))


@pytest.mark.slow
def test_two_experiments_written_at_once_each_see_only_their_own(pg_url, tmp_path, prefect_harness):  # noqa: F811
    sizes = {"a": 3, "b": 4}
    cfgs = {t: tiny_config(tmp_path / t, name=f"exp-{t}", final=NO_FINAL, swarm={"n_proxies": k},
                           runtime={"warehouse": pg_url}) for t, k in sizes.items()}
    procs = {t: _child(cfgs[t], tmp_path, t, "together", "b" if t == "a" else "a") for t in sizes}
    outs = {t: _finish(p, tmp_path, t) for t, p in procs.items()}
    for t, p in procs.items():
        assert p.returncode == 0, outs[t][-3000:]
    summaries = {t: _summary(outs[t]) for t in sizes}
    assert all((tmp_path / f"mark-{t}").exists() for t in sizes)  # both were recording at the same time
    ids = {t: s["experiment_id"] for t, s in summaries.items()}
    assert ids["a"] != ids["b"]
    for t, k in sizes.items():
        assert summaries[t]["trained"] == k and summaries[t]["ok"] == k
        with ReadOnlyWarehouse(pg_url) as db:
            runs = reads.runs(db, ids[t])
            assert runs.height == k and set(runs["experiment_id"]) == {ids[t]}
            assert len(set(runs["run_id"])) == k
            assert reads.experiment_config(db, ids[t])["name"] == f"exp-{t}"
        assert _rows(pg_url, f"select count(*) from experiment_mixtures where experiment_id = '{ids[t]}' "
                             "and kind = 'design'") == [(k,)]
    _consistent(pg_url, sum(sizes.values()))


@pytest.mark.slow
def test_kill_9_between_training_and_recording_is_recorded_once_on_resume(
        pg_url, tmp_path, prefect_harness, monkeypatch):  # noqa: F811
    from mixopt.flows.swarm import train_swarm
    from mixopt.tasks import swarm as swarm_stage

    n = 4
    cfg = tiny_config(tmp_path, final=NO_FINAL, swarm={"n_proxies": n}, runtime={"warehouse": pg_url})
    proc = _child(cfg, tmp_path, "die", "die", "none")
    out = _finish(proc, tmp_path, "die")
    assert proc.returncode == -signal.SIGKILL, out[-3000:]
    victim = (tmp_path / "mark-die").read_text()
    spooled = [p.stem for p in Path(cfg.runtime.out_dir, "spool").rglob("*.json")]
    assert victim in spooled  # trained, spooled, not recorded
    assert _rows(pg_url, f"select count(*) from runs where run_id = '{victim}'") == [(0,)]
    (before,), = _rows(pg_url, "select count(*) from proxy_runs")
    assert before == 1

    trained: list[str] = []
    original = swarm_stage.train_and_spool

    def counted(exp, spec):
        trained.append(spec.run_id)
        return original(exp, spec)

    monkeypatch.setattr(swarm_stage, "train_and_spool", counted)
    resumed = train_swarm(config=cfg)  # the same experiment: the spool is recorded first
    assert victim not in trained and len(trained) == n - 2
    assert resumed.ok == n - 2 and resumed.reused == 2
    _consistent(pg_url, n)
    assert _rows(pg_url, f"select count(*) from runs where run_id = '{victim}'") == [(1,)]
    assert not list(Path(cfg.runtime.out_dir, "spool").rglob("*.json"))


def test_a_reconnected_write_of_the_same_run_replaces_it(pg_url):  # noqa: F811
    """The building block of the retry: the same run written twice (as after a lost COMMIT answer)."""
    with Warehouse(pg_url) as wh:
        wh.record_mixture("m1", "e1", "design", [1.0])
        r = RunResult("r1", "ok", curve=[[s, 8 * s, 3.0, 1e-3] for s in range(7)], val_losses={"web": 2.0})
        for _ in range(2):
            wh.record_run(r, experiment_id="e1", role="proxy", label="design", mixture_id="m1", seed=0,
                          target_loss=2.0, code_version="t")
        assert _terminate_writers(pg_url) == 1
        wh.record_run(r, experiment_id="e1", role="proxy", label="design", mixture_id="m1", seed=0,
                      target_loss=2.0, code_version="t")  # on a dead connection: reconnects
    assert _rows(pg_url, "select count(*) from runs") == [(1,)]
    assert _rows(pg_url, "select count(*) from metrics") == [(7,)]
    assert _rows(pg_url, "select count(*) from evals") == [(1,)]
