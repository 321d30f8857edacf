"""Reads of a DuckDB warehouse at any moment: while another process writes it, readers answer from
the writer's read snapshot, never go back in time, see every committed run within a few seconds,
and never keep the writer from opening the file or committing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mixopt.runspec import DomainShard, RunResult
from mixopt.warehouse import ReadOnlyWarehouse, Warehouse, WarehouseError, read_only_query
from mixopt.warehouse.snapshot import SNAPSHOT_INTERVAL_S, snapshot_path

WRITER = """
import sys, time
from pathlib import Path
from mixopt.runspec import DomainShard, RunResult
from mixopt.warehouse import Warehouse

path, n, pause, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4])
with Warehouse(path) as wh:
    wh.record_experiment("e1", "demo", "h", "fp", {}, [DomainShard("web", "a", "b", 10, 1)], [1.0])
    wh.record_mixture("m1", "e1", "design", [1.0])
    for i in range(n):
        wh.record_run(RunResult(f"r{i:03d}", "ok", curve=[[s, 8 * s, 3.0, 1e-3] for s in range(50)],
                                val_losses={"web": 2.0}), experiment_id="e1", role="proxy", label="design",
                      mixture_id="m1", seed=i, target_loss=2.0, code_version="t")
        print(i, flush=True)
        time.sleep(pause)
    while hold.exists():  # keep the file (and its lock) until the test lets go
        time.sleep(0.05)
"""


def _writer(path: Path, n: int, pause: float, hold: Path) -> subprocess.Popen:
    hold.touch()
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(n), str(pause), str(hold)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _count(path: Path) -> int:
    return read_only_query(path, "select count(*) from runs")[1][0][0]


def test_reads_answer_while_another_process_writes_and_never_go_back(tmp_path):
    path, hold, n = tmp_path / "wh.duckdb", tmp_path / "hold", 40
    writer = _writer(path, n, 0.05, hold)
    try:
        counts, slowest = [], 0.0
        while writer.poll() is None and (not counts or counts[-1] < n):
            t0 = time.monotonic()
            try:
                counts.append(_count(path))
            except WarehouseError as e:  # only before the writer created the file
                assert "no warehouse here" in str(e) and not counts, e
            slowest = max(slowest, time.monotonic() - t0)
            time.sleep(0.05)
        assert writer.poll() is None, writer.stderr.read()  # still holding the file: these were live reads
        assert slowest < 5 and len(counts) >= 5
        assert counts == sorted(counts) and counts[-1] == n  # never back in time; every committed run seen
        assert 0 < min(c for c in counts if c > 0) < n  # some reads saw the swarm half done
    finally:
        hold.unlink()
        assert writer.wait(timeout=60) == 0, writer.stderr.read()
    assert _count(path) == n and not snapshot_path(path).exists()  # a clean close removes the snapshot


def test_a_commit_is_visible_within_a_few_seconds_while_the_writer_holds_the_file(tmp_path):
    path, hold = tmp_path / "wh.duckdb", tmp_path / "hold"
    writer = _writer(path, 5, 0.0, hold)
    try:
        for _ in range(5):
            writer.stdout.readline()  # run i committed
        committed = time.monotonic()
        while _count(path) < 5:
            assert time.monotonic() - committed < SNAPSHOT_INTERVAL_S + 4
            time.sleep(0.05)
        assert writer.poll() is None
    finally:
        hold.unlink()
        writer.wait(timeout=60)


def test_an_open_reader_and_its_long_query_never_block_the_writer(tmp_path):
    path = tmp_path / "wh.duckdb"
    with Warehouse(path) as wh:
        wh.record_experiment("e1", "demo", "h", "fp", {}, [DomainShard("web", "a", "b", 10, 1)], [1.0])
    reader = ReadOnlyWarehouse(path, timeout_s=4)  # opened with no writer around
    stop: list[BaseException] = []
    # before: `duckdb.connect` of the writer failed with "Could not set lock" while a reader had the file open
    long_query = threading.Thread(target=lambda: _expect_timeout(reader, stop))
    long_query.start()
    time.sleep(0.5)  # the cross join is running now
    t0 = time.monotonic()
    with Warehouse(path) as wh:  # a writer opens and commits while that query runs
        wh.record_mixture("m1", "e1", "design", [1.0])
        wh.record_run(RunResult("r1", "ok", val_losses={"web": 2.0}), experiment_id="e1", role="proxy",
                      label="design", mixture_id="m1", seed=0, target_loss=2.0, code_version="t")
        opened_and_wrote = time.monotonic() - t0
        long_query.join()
        assert reader.frame("select count(*) as n from runs")["n"][0] == 1  # the same handle sees the new run
    reader.close()
    assert opened_and_wrote < 2, opened_and_wrote
    assert stop and isinstance(stop[0], WarehouseError) and "stopped after 4 s" in str(stop[0])


def _expect_timeout(reader: ReadOnlyWarehouse, out: list) -> None:
    try:
        reader.sql("select count(*) from range(100000000) a, range(100000) b where a.range + b.range < 0")
    except BaseException as e:  # noqa: BLE001 - handed to the test
        out.append(e)


def test_a_killed_writer_leaves_a_file_readers_still_read(tmp_path):
    path, hold = tmp_path / "wh.duckdb", tmp_path / "hold"
    writer = _writer(path, 8, 0.0, hold)
    for _ in range(8):
        writer.stdout.readline()
    writer.kill()  # kill -9: no checkpoint, the WAL holds the last commits, the snapshot is stale or fresh
    writer.wait(timeout=30)
    hold.unlink()
    assert _count(path) == 8  # no writer: the file and its WAL are copied and read


@pytest.mark.parametrize("query", ["select 1", "select count(*) from runs"])
def test_reading_writes_nothing_next_to_the_warehouse(tmp_path, query):
    path = tmp_path / "wh.duckdb"
    Warehouse(path).close()
    before = sorted(p.name for p in tmp_path.iterdir())
    read_only_query(path, query)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_report_and_the_python_api_answer_while_a_writer_holds_the_file(tmp_path):
    """Before: `mixopt report` opened the file as a writer and waited for the run's lock (hours);
    `mixopt.open` failed with "Could not set lock"."""
    from typer.testing import CliRunner

    import mixopt
    from mixopt.cli import app

    path = tmp_path / "wh.duckdb"
    with Warehouse(path) as wh:  # the run, holding the file
        wh.record_experiment("e1", "demo", "h", "fp", {}, [DomainShard("web", "a", "b", 10, 1)], [1.0])
        wh.record_mixture("m1", "e1", "design", [1.0])
        wh.record_run(RunResult("r1", "ok", val_losses={"web": 2.0}), experiment_id="e1", role="proxy",
                      label="design", mixture_id="m1", seed=0, target_loss=2.0, code_version="t")
        wh._publisher.publish()  # what the publisher thread does within a second
        t0 = time.monotonic()
        result = CliRunner().invoke(app, ["report", "-w", str(path), "-o", str(tmp_path / "rep")])
        assert result.exit_code == 0, result.output
        assert "mixopt report — e1" in (tmp_path / "rep" / "report.md").read_text()
        with mixopt.open(path) as w:
            assert w.runs()["run_id"].to_list() == ["r1"]
        assert time.monotonic() - t0 < 30
