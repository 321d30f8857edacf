"""The shared store on PostgreSQL: the same `Warehouse` and reads as on a DuckDB file, several
writer processes at once without losing a row, a writer killed mid-transaction, bad URLs.

Each test that needs the server gets a fresh database (`tests/pgstore.py`), dropped afterwards;
they are skipped, with the reason, when no PostgreSQL answers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mixopt.cli import app
from mixopt.runspec import DomainShard, RunResult
from mixopt.warehouse import ReadOnlyWarehouse, Warehouse, WarehouseError, read_only_query, reads
from mixopt.warehouse.postgres import StoreError, redact, translate
from mixopt.warehouse.schema import MIGRATIONS
from tests.pgstore import pg_url  # noqa: F401 - the fixture

DOMAINS = [DomainShard("web", "a", "b", 10, 1), DomainShard("code", "c", "d", 20, 2)]


def _run(run_id: str, n_steps: int = 20, status: str = "ok") -> RunResult:
    return RunResult(run_id, status, curve=[[s, 8 * s, 3.0 - s / 100, 1e-3] for s in range(n_steps)],
                     val_losses={"web": 2.0, "code": 2.5}, n_params=100, tokens=800, tokens_per_s=10.0)


def _record(wh: Warehouse, run_id: str, target: float = 2.0, **kw) -> None:
    wh.record_run(_run(run_id, **kw), experiment_id="e1", role="proxy", label="design", mixture_id="m1", seed=0,
                  target_loss=target, code_version="t")


# ---------------------------------------------------------------- dialect (no server needed)
def test_the_portable_subset_translates_to_postgresql():
    assert translate("SELECT * FROM runs WHERE run_id = ? AND label LIKE 'a%?'", True) == \
        "SELECT * FROM runs WHERE run_id = %s AND label LIKE 'a%%?'"
    assert translate("SELECT 5 % 2, '?'", False) == "SELECT 5 % 2, '?'"  # no parameters: left as written
    ddl = "CREATE TABLE IF NOT EXISTS t (k VARCHAR PRIMARY KEY, x DOUBLE, w DOUBLE[], y DOUBLE PRECISION)"
    assert translate(ddl, False) == ("CREATE TABLE IF NOT EXISTS t (k VARCHAR PRIMARY KEY, x DOUBLE PRECISION, "
                                     "w DOUBLE PRECISION[], y DOUBLE PRECISION)")
    upsert = translate("INSERT OR REPLACE INTO fits (fit_id, a, b) VALUES (?, ?, ?)", True, lambda t: ["fit_id"])
    assert upsert == ("INSERT INTO fits (fit_id, a, b) VALUES (%s, %s, %s) "
                      "ON CONFLICT (fit_id) DO UPDATE SET a = EXCLUDED.a, b = EXCLUDED.b")
    dedup = translate("INSERT INTO t__new (a, b) SELECT a, b FROM t\n    QUALIFY row_number() OVER "
                      "(PARTITION BY a) = 1;", False)
    assert dedup == "INSERT INTO t__new (a, b) SELECT a, b FROM t ON CONFLICT DO NOTHING;"


def test_a_password_never_shows_in_messages():
    assert redact("postgresql://me:s3cret@db:5432/x") == "postgresql://me:***@db:5432/x"
    assert redact("postgresql://me@db/x") == "postgresql://me@db/x"


# ---------------------------------------------------------------- the store
def test_the_store_records_and_reads_like_a_duckdb_file(pg_url):  # noqa: F811
    with Warehouse(pg_url) as wh:
        wh.record_experiment("e1", "demo", "h", "fp", {"k": 1}, DOMAINS, [0.25, 0.75])
        wh.record_experiment("e1", "demo", "h", "fp", {"k": 1}, DOMAINS, [0.25, 0.75])  # INSERT OR REPLACE
        wh.record_mixture("m1", "e1", "design", [0.3, 0.7], size="target")
        _record(wh, "r1")
        _record(wh, "r1", target=1.5, n_steps=5)  # a retry replaces the earlier attempt
        _record(wh, "r2", target=float("inf"))
        fit = {"name": "linear", "n": 2, "folds": 2, "spearman": 0.5, "kendall": 0.4, "r2": 0.1, "rmse": 0.2}
        wh.record_fit("f1", "e1", fit, True, [("r1", 1.5, 1.6)])
        wh.record_fit("f1", "e1", {**fit, "spearman": 0.7}, True, [("r1", 1.5, 1.6)])
        wh.record_proposal("p1", "e1", "f1", "m", "linear", "m2", [0.5, 0.5], 1.4, [False, True], {"x": [1]})
        assert wh.run_status(["r1", "r2", "nope"]) == {"r1": "ok", "r2": "ok"}
        obs = wh.proxy_observations("e1")  # isfinite() on PostgreSQL: the infinite target is left out
        assert [(o["run_id"], o["target_loss"], o["weights"]) for o in obs] == [("r1", 1.5, [0.3, 0.7])]
        assert wh.mixtures("e1", "design") == [("m1", [0.3, 0.7])] and wh.design_sizes("e1") == {"m1": "target"}
        assert wh.query("SELECT count(*) AS n FROM metrics WHERE run_id = 'r1'") == [{"n": 5}]
        versions = [r["version"] for r in wh.query("SELECT version FROM schema_version ORDER BY version")]
        assert versions == [v for v, _, _ in MIGRATIONS]
    with ReadOnlyWarehouse(pg_url) as db:
        assert reads.experiment_config(db, "e1") == {"k": 1}
        assert reads.domains(db, "e1")["prior"].to_list() == [0.25, 0.75]
        assert reads.fits(db, "e1")["cv_spearman"].to_list() == [0.7]
        speeds = reads.proxy_speeds(db, "e1")  # any_value() and GROUP BY on PostgreSQL 15
        assert speeds.select("size", "n", "n_params").rows() == [("target", 2, 100)]
        assert reads.run_targets(db, ["r1", "r2"]) == {"r1": 1.5}
        prop = reads.latest_proposal(db, "e1")
        assert prop["weights"].to_list() == [[0.5, 0.5]] and prop["caps_active"].to_list() == [[False, True]]
        assert reads.runs(db).height == 2 and reads.runs(db, "nope").height == 0
        weights = db.sql("select domain, weight from mixture_weights where mixture_id = 'm1' order by domain")
        assert weights.rows() == [("code", 0.7), ("web", 0.3)]


def test_a_reader_cannot_write_and_a_runaway_query_stops(pg_url):  # noqa: F811
    Warehouse(pg_url).close()
    with ReadOnlyWarehouse(pg_url, timeout_s=1) as db:
        with pytest.raises(WarehouseError, match="refused"):
            db.sql("DELETE FROM runs")
        with pytest.raises(WarehouseError, match="read-only transaction"):
            db.frame("INSERT INTO runs (run_id) VALUES ('x')")
        t0 = time.monotonic()
        with pytest.raises(WarehouseError, match="stopped after 1 s"):
            db.sql("select count(*) from generate_series(1, 100000000) a, generate_series(1, 100000) b")
        assert time.monotonic() - t0 < 5
    assert read_only_query(pg_url, "select count(*) from runs")[1] == [(0,)]


WRITER = """
import sys
from mixopt.runspec import DomainShard, RunResult
from mixopt.warehouse import Warehouse

url, me, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with Warehouse(url) as wh:
    wh.record_experiment("e1", "demo", "h", "fp", {}, [DomainShard("web", "a", "b", 10, 1)], [1.0])
    wh.record_mixture("m1", "e1", "design", [1.0])
    for i in range(n):
        rid = f"w{me}-r{i:03d}"
        wh.record_run(RunResult(rid, "ok", curve=[[s, 8 * s, 3.0, 1e-3] for s in range(30)], val_losses={"web": 2.0}),
                      experiment_id="e1", role="proxy", label="design", mixture_id="m1", seed=i, target_loss=2.0,
                      code_version="t")
        wh.record_run(RunResult(f"shared-{i:03d}", "ok", val_losses={"web": 2.0}), experiment_id="e1",
                      role="proxy", label="design", mixture_id="m1", seed=i, target_loss=2.0, code_version="t")
"""


@pytest.mark.slow
def test_eight_writer_processes_lose_no_row(pg_url):  # noqa: F811
    n = 25  # each writer records 25 own runs and the same 25 shared ones (a retried proxy, twice at once)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, pg_url, str(w), str(n)], stderr=subprocess.PIPE,
                              text=True) for w in range(8)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    rows = read_only_query(pg_url, "select count(*), count(distinct run_id) from runs")[1]
    assert rows == [(8 * n + n, 8 * n + n)]
    assert read_only_query(pg_url, "select count(*) from metrics")[1] == [(8 * n * 30,)]
    assert read_only_query(pg_url, "select count(*) from evals")[1] == [(8 * n + n,)]
    assert read_only_query(pg_url, "select count(*) from schema_version")[1] == [(len(MIGRATIONS),)]


KILLED = """
import os, signal, sys
from mixopt.runspec import RunResult
from mixopt.warehouse import Warehouse

original = Warehouse._record_trajectory

def die(con, r):  # this run's row, metrics and evals are inserted; COMMIT is not
    if r.run_id == "r-die":
        os.kill(os.getpid(), signal.SIGKILL)
    original(con, r)

Warehouse._record_trajectory = staticmethod(die)
with Warehouse(sys.argv[1]) as wh:
    for rid in ("r-ok", "r-die"):
        wh.record_run(RunResult(rid, "ok", curve=[[s, 8 * s, 3.0, 1e-3] for s in range(40)], val_losses={"web": 2.0}),
                      experiment_id="e1", role="proxy", label="design", mixture_id="m1", seed=0, target_loss=2.0,
                      code_version="t")
"""


def test_a_writer_killed_mid_transaction_leaves_the_store_consistent(pg_url):  # noqa: F811
    Warehouse(pg_url).close()
    proc = subprocess.run([sys.executable, "-c", KILLED, pg_url], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    runs = read_only_query(pg_url, "select run_id from runs order by run_id")[1]
    assert runs == [("r-ok",)]  # the killed transaction left nothing
    assert read_only_query(pg_url, "select run_id, count(*) from metrics group by run_id")[1] == [("r-ok", 40)]
    with Warehouse(pg_url) as wh:  # the lock the dead writer held is free again
        _record(wh, "r-die")
    assert read_only_query(pg_url, "select count(*) from runs")[1] == [(2,)]


# ---------------------------------------------------------------- bad input
BAD_URLS = [
    ("postgresql://postgres@127.0.0.1:1/test", "cannot connect"),  # nothing listens there
    ("postgresql://no_such_role_mixopt@127.0.0.1:5432/test", "cannot connect"),
    ("postgresql://postgres:wrong@127.0.0.1:1/test", "cannot connect"),
]


@pytest.mark.parametrize("url, expected", BAD_URLS)
def test_a_bad_store_url_is_one_line_without_a_traceback(url, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["sql", "select 1", "-w", url], ["report", "-w", url]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        err = " ".join(result.stderr.split())
        assert err.startswith("error: ") and expected in err and "Traceback" not in result.output
        assert "wrong" not in err  # the password is not echoed
    with pytest.raises(StoreError, match=expected):
        Warehouse(url)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_mixopt_run_with_an_unreachable_store_stops_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("name: x\nruntime:\n  warehouse: postgresql://postgres:pw@127.0.0.1:1/test\n"
                   f"  out_dir: {tmp_path / 'out'}\n")
    env = {**os.environ, "PYTHONPATH": str(_repo())}
    proc = subprocess.run([sys.executable, "-m", "mixopt", "run", str(cfg), "-q"], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "cannot connect to the PostgreSQL store" in lines[0] and "pw@" not in lines[0]
    assert not (tmp_path / "out").exists()


def _repo() -> Path:
    return Path(__file__).resolve().parents[2]


LATER = [  # what other migrations may do, in the portable subset of schema.py
    (90, "a column, a table of every portable type, a view over a view",
     "ALTER TABLE runs ADD COLUMN IF NOT EXISTS note VARCHAR;"
     "CREATE TABLE IF NOT EXISTS extra (k VARCHAR PRIMARY KEY, i INTEGER, n BIGINT, x DOUBLE, w DOUBLE[], "
     "b BOOLEAN, j JSON, t TIMESTAMPTZ);"
     "CREATE OR REPLACE VIEW ok_proxies AS SELECT run_id, note FROM proxy_runs WHERE status = 'ok';"),
    (91, "a view redefined with other columns",
     "CREATE OR REPLACE VIEW final_runs AS SELECT run_id, label, note FROM runs WHERE role = 'final';"),
]


def test_later_portable_migrations_apply_on_an_existing_store(pg_url, monkeypatch):  # noqa: F811
    from mixopt.warehouse import schema

    with Warehouse(pg_url) as wh:  # migrated to today's version, with a run
        wh.record_mixture("m1", "e1", "design", [1.0])
        _record(wh, "r1")
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS + LATER)
    with Warehouse(pg_url) as wh:
        with wh.transaction() as con:
            con.execute("UPDATE runs SET note = ? WHERE run_id = ?", ["hello", "r1"])
            con.execute("INSERT INTO extra (k, i, n, x, w, b, j, t) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (k) DO UPDATE SET x = excluded.x",
                        ["a", 1, 2, 0.5, [0.1, 0.9], True, '{"a": 1}', "2026-01-01T00:00:00Z"])
        assert wh.query("SELECT run_id, note FROM ok_proxies") == [{"run_id": "r1", "note": "hello"}]
        assert "note" in wh.frame("SELECT * FROM proxy_runs").columns  # `SELECT *` views see the new column
        assert wh.frame("SELECT * FROM final_runs").columns == ["run_id", "label", "note"]
        assert wh.frame("SELECT w, j FROM extra").rows() == [([0.1, 0.9], '{"a": 1}')]
