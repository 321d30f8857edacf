"""`mixopt sql` is read-only: anything that would change something or reach outside is refused.

Each statement goes through the CLI (typer's CliRunner) in an empty working folder against a
warehouse holding one run: exit code 2, an `error:` message on stderr, no traceback, the
warehouse file byte-for-byte unchanged and no file written. `read_only_query` itself is covered by
tests/warehouse/test_store.py::test_sql_surface_refuses_writes_and_outside_access.
"""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from mixopt.cli import app
from mixopt.runspec import DomainShard, RunResult
from mixopt.warehouse import Warehouse
from tests.faults.util import file_digest

REFUSED = [
    "INSERT INTO runs (run_id) VALUES ('x')",
    "UPDATE runs SET status = 'failed'",
    "DELETE FROM runs",
    "WITH x AS (SELECT 1) DELETE FROM runs",
    "DROP TABLE runs",
    "DROP VIEW proxy_runs",
    "CREATE TABLE t AS SELECT 1",
    "CREATE TEMP TABLE t AS SELECT 1",
    "CREATE MACRO m(x) AS x",
    "ALTER TABLE runs ADD COLUMN x INT",
    "COPY runs TO 'leak.csv'",
    "COPY (SELECT * FROM runs) TO 'leak.parquet' (FORMAT parquet)",
    "EXPORT DATABASE 'dump'",
    "IMPORT DATABASE 'dump'",
    "ATTACH 'other.duckdb' AS other",
    "DETACH wh",
    "USE memory",
    "INSTALL httpfs",
    "LOAD httpfs",
    "UPDATE EXTENSIONS",
    "SET threads = 1",
    "SET GLOBAL enable_external_access = true",
    "RESET threads",
    "PRAGMA enable_profiling",
    "PRAGMA version",
    "CALL pragma_version()",
    "CHECKPOINT",
    "FORCE CHECKPOINT",
    "VACUUM",
    "BEGIN TRANSACTION",
    "SELECT 1; DROP TABLE runs",
    "SELECT 1; SELECT 2",
    "EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1",
    "EXPLAIN ANALYZE COPY runs TO 'leak.csv'",
    "EXPLAIN ANALYZE DELETE FROM runs",
    "SELECT * FROM 'some.csv'",
    "SELECT * FROM read_csv('some.csv')",
    "SELECT * FROM read_parquet('some.parquet')",
    "SELECT * FROM read_json('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM glob('*')",
    "SELECT * FROM 'https://example.com/x.csv'",
    "SELECT * FROM sqlite_scan('other.db', 't')",
    "SELECT * FROM duckdb_extensions()",
    "SELECT * FROM query('DROP TABLE runs')",
    "SELECT getenv('HOME')",
    "SELECT * FROM force_checkpoint()",
    "PIVOT runs ON status",
    "not sql at all",
]


@pytest.fixture
def warehouse(tmp_path, monkeypatch):
    """A warehouse with one run, and an empty working folder (besides `some.csv`) as the cwd."""
    path = tmp_path / "wh.duckdb"
    with Warehouse(path) as wh:
        wh.record_experiment("e1", "demo", "h", "fp", {}, [DomainShard("web", "a", "b", 10, 1)], [1.0])
        wh.record_mixture("m1", "e1", "design", [1.0])
        wh.record_run(RunResult("r1", "ok", curve=[[0, 8, 3.0, 1e-3]], val_losses={"web": 2.0}),
                      experiment_id="e1", role="proxy", label="design", mixture_id="m1", seed=0,
                      target_loss=2.0, code_version="t")
    work = tmp_path / "cwd"
    work.mkdir()
    (work / "some.csv").write_text("a,b\n1,2\n")
    monkeypatch.chdir(work)
    return path


def _listing(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files}


@pytest.mark.parametrize("query", REFUSED)
def test_a_statement_that_writes_or_reaches_outside_is_refused(warehouse, query):
    before, files = file_digest(warehouse), _listing(warehouse.parent)
    result = CliRunner().invoke(app, ["sql", query, "--warehouse", str(warehouse)])
    err = " ".join(result.stderr.split())
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert err.startswith("error: ") and any(
        w in err for w in ("refused", "query failed", "could not parse", "exactly one statement")), err
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)  # typer.Exit(2), not a crash
    assert os.environ.get("HOME", "/nonexistent-home") not in result.stdout
    assert file_digest(warehouse) == before and _listing(warehouse.parent) == files


@pytest.mark.parametrize("query, expected", [
    ("select run_id, status from proxy_runs", "r1"),
    ("DESCRIBE runs", "run_id"),
    ("EXPLAIN ANALYZE SELECT count(*) FROM metrics", "analyzed_plan"),
    ("WITH x AS (SELECT 1 AS one) SELECT * FROM x", "one"),
    ("FROM checkpoint()", ""),
])
def test_reading_still_works_and_changes_nothing(warehouse, query, expected):
    before, files = file_digest(warehouse), _listing(warehouse.parent)
    result = CliRunner().invoke(app, ["sql", query, "--warehouse", str(warehouse), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert expected in result.stdout
    assert file_digest(warehouse) == before and _listing(warehouse.parent) == files


def test_a_runaway_query_stops_at_the_timeout_with_one_line(warehouse):
    import time

    before = file_digest(warehouse)
    t0 = time.monotonic()
    result = CliRunner().invoke(app, ["sql", "select count(*) from range(100000000) a, range(1000000) b "
                                      "where a.range + b.range < 0", "--warehouse", str(warehouse), "--timeout", "1"])
    elapsed = time.monotonic() - t0
    assert result.exit_code == 2, result.output
    err = " ".join(result.stderr.split())
    assert err == "error: query stopped after 1 s (the statement timeout; raise it with --timeout)", err
    assert "Traceback" not in result.output and elapsed < 10, elapsed
    assert file_digest(warehouse) == before
