"""The warehouse: idempotent, transactional writes through one writer; a read-only SQL surface."""

import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from mixopt.runspec import DomainShard, RunResult
from mixopt.warehouse import Warehouse, WarehouseError, read_only_query


def _setup(path: Path) -> Warehouse:
    wh = Warehouse(path)
    doms = [DomainShard("web", "a", "b", 300, 30), DomainShard("code", "c", "d", 100, 10)]
    wh.record_experiment("e1", "demo", "h", "fp", {"k": 1}, doms, [0.75, 0.25])
    wh.record_mixture("m1", "e1", "design", [0.5, 0.5])
    return wh


def _result(run_id: str, loss: float = 2.0, status: str = "ok") -> RunResult:
    return RunResult(run_id=run_id, status=status, curve=[[0, 16, 4.0, 1e-3], [1, 32, 3.5, 1e-3]],
                     val_losses={"web": loss, "code": loss + 1})


def _record(wh: Warehouse, r: RunResult, target: float | None = 2.5) -> None:
    wh.record_run(r, experiment_id="e1", role="proxy", label="design", mixture_id="m1", seed=0,
                  target_loss=target, code_version="t")


def test_record_run_is_idempotent(tmp_path):
    with _setup(tmp_path / "w.duckdb") as wh:
        _record(wh, _result("r1", 2.0))
        _record(wh, _result("r1", 1.5))  # a retry replaces the earlier attempt
        assert wh.query("SELECT count(*) AS n FROM runs")[0]["n"] == 1
        assert wh.query("SELECT count(*) AS n FROM metrics")[0]["n"] == 2
        assert wh.query("SELECT loss FROM evals WHERE domain = 'web'")[0]["loss"] == 1.5
        rows = wh.query("SELECT domain, weight FROM mixture_weights WHERE mixture_id = 'm1' ORDER BY domain")
        assert rows == [{"domain": "code", "weight": 0.5}, {"domain": "web", "weight": 0.5}]


def test_failed_and_diverged_runs_are_not_training_data(tmp_path):
    with _setup(tmp_path / "w.duckdb") as wh:
        _record(wh, _result("ok1"))
        _record(wh, RunResult("bad", "failed", error="boom"), target=None)
        _record(wh, RunResult("nan", "diverged", last_good_step=3), target=None)
        assert [r["run_id"] for r in wh.training_table("e1")] == ["ok1"]
        assert wh.run_status(["ok1", "bad", "nan", "zzz"]) == {"ok1": "ok", "bad": "failed", "nan": "diverged"}


def test_a_failed_write_leaves_the_previous_state(tmp_path):
    with _setup(tmp_path / "w.duckdb") as wh:
        _record(wh, _result("r1", 2.0))
        broken = _result("r1", 9.9)
        broken.curve = [[0, 1, "not-a-number", 0.0]]  # fails half-way through the transaction
        with pytest.raises(Exception):  # noqa: B017 - whichever DuckDB error the bad value raises
            _record(wh, broken)
        assert wh.query("SELECT loss FROM evals WHERE domain = 'web'")[0]["loss"] == 2.0
        assert wh.query("SELECT count(*) AS n FROM metrics")[0]["n"] == 2


def test_concurrent_writers_in_one_process_lose_nothing(tmp_path):
    with _setup(tmp_path / "w.duckdb") as wh:
        barrier = threading.Barrier(8)

        def work(i: int) -> None:
            barrier.wait()
            for j in range(5):
                _record(wh, _result(f"r{i}-{j}", 2.0 + i))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wh.query("SELECT count(DISTINCT run_id) AS n, count(*) AS m FROM runs")[0] == {"n": 40, "m": 40}
        assert wh.query("SELECT count(*) AS n FROM evals")[0]["n"] == 80


@pytest.mark.slow
def test_a_second_writer_process_waits_for_the_first(tmp_path):
    path = tmp_path / "w.duckdb"
    wh = _setup(path)
    code = (
        "import sys; from mixopt.warehouse import Warehouse\n"
        f"w = Warehouse({str(path)!r}); print(w.query('SELECT count(*) AS n FROM runs')[0]['n']); w.close()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=3)  # blocked on the writer lock, not failing
    _record(wh, _result("r1"))
    wh.close()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.strip() == "1"


@pytest.mark.parametrize(
    "query",
    [
        "INSERT INTO runs (run_id) VALUES ('x')",
        "UPDATE runs SET status = 'ok'",
        "DELETE FROM runs",
        "DROP TABLE runs",
        "CREATE TABLE t (a INT)",
        "COPY runs TO '{tmp}/out.csv'",
        "ATTACH '{tmp}/other.duckdb'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET threads = 1",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT 1; DROP TABLE runs",
        "PRAGMA enable_profiling",
    ],
)
def test_sql_surface_refuses_writes_and_outside_access(tmp_path, query):
    path = tmp_path / "w.duckdb"
    with _setup(path) as wh:
        _record(wh, _result("r1"))
    with pytest.raises(WarehouseError):
        read_only_query(path, query.format(tmp=tmp_path))
    assert not (tmp_path / "out.csv").exists()
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    con.close()


def test_sql_surface_answers_selects(tmp_path):
    path = tmp_path / "w.duckdb"
    with _setup(path) as wh:
        _record(wh, _result("r1"))
    cols, rows = read_only_query(path, "select run_id, status, target_loss from proxy_runs")
    assert cols == ["run_id", "status", "target_loss"] and rows == [("r1", "ok", 2.5)]
    with pytest.raises(WarehouseError, match="no warehouse here"):
        read_only_query(tmp_path / "nope.duckdb", "select 1")


def test_mixture_trajectory_is_queryable(tmp_path):
    with _setup(tmp_path / "w.duckdb") as wh:
        r = _result("a1")
        r.trajectory = [
            {"round": 0, "step": 0, "weights": {"web": 0.5, "code": 0.5}, "A": None},
            {"round": 1, "step": 10, "weights": {"web": 0.7, "code": 0.3}, "A": [[0.4, 0.1], [0.2, 0.3]]},
        ]
        _record(wh, r)
        rows = wh.query("SELECT step, weight FROM mixture_trajectory WHERE domain = 'web' ORDER BY step")
        assert rows == [{"step": 0, "weight": 0.5}, {"step": 10, "weight": 0.7}]
        a = wh.query("SELECT value FROM aioli_params WHERE row_domain = 'code' AND col_domain = 'web'")
        assert a == [{"value": 0.2}]


def test_a_warehouse_from_before_proxy_sizes_opens_and_reads_as_target_size(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))  # the runs table as it was before the `size` column existed
    con.execute("""CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, experiment_id VARCHAR, role VARCHAR, label VARCHAR,
        mixture_id VARCHAR, seed INTEGER, status VARCHAR, error VARCHAR, n_params BIGINT, n_params_non_embedding BIGINT,
        tokens BIGINT, steps INTEGER, wall_s DOUBLE, tokens_per_s DOUBLE, last_good_step INTEGER,
        target_loss DOUBLE, code_version VARCHAR, created_at TIMESTAMPTZ)""")
    con.execute("CREATE TABLE mixtures (mixture_id VARCHAR PRIMARY KEY, experiment_id VARCHAR, kind VARCHAR, "
                "weights DOUBLE[], created_at TIMESTAMPTZ)")
    con.execute("INSERT INTO mixtures VALUES ('m1', 'e1', 'design', [0.5, 0.5], now())")
    con.execute("INSERT INTO runs VALUES ('old', 'e1', 'proxy', 'design', 'm1', 0, 'ok', NULL, 10, 5, 100, 2, "
                "1.0, 100.0, 1, 2.5, 'v0', now())")
    con.close()
    with Warehouse(path) as wh:
        assert [(r["run_id"], r["size"]) for r in wh.training_table("e1")] == [("old", "target")]
        wh.record_mixture("m2", "e1", "design", [0.2, 0.8], size="low")
        wh.record_run(_result("new"), experiment_id="e1", role="proxy", label="design", mixture_id="m2", seed=0,
                      target_loss=3.0, code_version="t", size="low")
        assert [r["run_id"] for r in wh.training_table("e1")] == ["old"]  # the low-size run is not fit data
        assert {r["run_id"]: r["size"] for r in wh.proxy_observations("e1")} == {"old": "target", "new": "low"}
        assert wh.design_sizes("e1") == {"m2": "low"}
        assert [m for m, _ in wh.mixtures("e1", "design")] == ["m1", "m2"]  # the old mixture is linked too
    cols, rows = read_only_query(path, "select run_id, size from proxy_runs order by run_id")
    assert rows == [("new", "low"), ("old", None)]


def test_seed_repeats_are_not_fit_data(tmp_path):
    with _setup(tmp_path / "w.duckdb") as wh:
        _record(wh, _result("base"))
        wh.record_run(_result("again"), experiment_id="e1", role="proxy", label="seed_repeat", mixture_id="m1",
                      seed=1, target_loss=2.6, code_version="t", size="target")
        assert [r["run_id"] for r in wh.training_table("e1")] == ["base"]
        assert wh.query("SELECT count(*) AS n FROM proxy_runs WHERE label = 'seed_repeat'")[0]["n"] == 1


def test_two_experiments_can_share_a_mixture(tmp_path):
    """A mixture is keyed by its weights; a second experiment drawing the same weights must still
    see it as its own (it used to be dropped: the second experiment then had an empty design)."""
    with _setup(tmp_path / "wh.duckdb") as wh:
        doms = [DomainShard("web", "a", "b", 300, 30), DomainShard("code", "c", "d", 100, 10)]
        wh.record_experiment("e2", "demo", "h2", "fp", {"k": 2}, doms, [0.75, 0.25])
        wh.record_mixture("m1", "e2", "design", [0.5, 0.5])
        wh.record_mixture("m1", "e2", "natural", [0.5, 0.5])
        assert wh.mixtures("e1", "design") == [("m1", [0.5, 0.5])]
        assert wh.mixtures("e2", "design") == [("m1", [0.5, 0.5])]
        assert wh.mixtures("e2", "natural") == [("m1", [0.5, 0.5])]
        assert wh.mixtures("e1", "natural") == []
    _, rows = read_only_query(tmp_path / "wh.duckdb", "select experiment_id, kind, domain, weight from mixture_weights "
                              "order by experiment_id, kind, domain")
    assert rows == [("e1", "design", "code", 0.5), ("e1", "design", "web", 0.5), ("e2", "design", "code", 0.5),
                    ("e2", "design", "web", 0.5), ("e2", "natural", "code", 0.5), ("e2", "natural", "web", 0.5)]


def test_migrations_run_once_and_are_recorded(tmp_path):
    from mixopt.warehouse import reads
    from mixopt.warehouse.schema import MIGRATIONS, migrate

    path = tmp_path / "w.duckdb"
    with Warehouse(path) as wh:
        first = wh.query("SELECT version, applied_at FROM schema_version ORDER BY version")
        assert [r["version"] for r in first] == [v for v, _, _ in MIGRATIONS]
    with Warehouse(path) as wh:  # a second open applies nothing, and leaves the connection ready for reads
        assert reads.runs(wh).height == 0
        assert wh.query("SELECT version, applied_at FROM schema_version ORDER BY version") == first
        assert migrate(wh.con) == []


def test_a_warehouse_from_before_versioning_gets_primary_keys(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))  # the child tables as they were: no primary key, a duplicated row
    con.execute("CREATE TABLE metrics (run_id VARCHAR, step INTEGER, tokens BIGINT, loss DOUBLE, lr DOUBLE)")
    con.execute("INSERT INTO metrics VALUES ('r', 0, 8, 2.0, 0.1), ('r', 0, 8, 2.0, 0.1), ('r', 1, 16, 1.5, 0.1)")
    con.close()
    with Warehouse(path) as wh:
        assert wh.query("SELECT count(*) AS n FROM metrics")[0]["n"] == 2
        keys = wh.query("SELECT table_name FROM information_schema.table_constraints "
                        "WHERE constraint_type = 'PRIMARY KEY'")
        tables = wh.query("SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'")
        assert {r["table_name"] for r in keys} == {r["table_name"] for r in tables}
