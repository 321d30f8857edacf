"""What reading at any moment costs: the writer's overhead per recorded run, reader latency and
lag while another process writes, and the shared PostgreSQL store under 8 writer processes.

    PYTHONPATH=. python benchmarks/warehouse_reads.py [--pg postgresql://postgres@127.0.0.1:5432/test]

1. Writer: seconds per `record_run` (a 200-step curve, 3 evals) on a fresh DuckDB file, with the
   read snapshot (`snapshot.Publisher`) and without it; then on a grown warehouse (`--grown` runs
   already stored) where each publish copies a bigger file.
2. Reader: a writer process records runs; this process reads the count through `read_only_query`
   (a fresh handle each time, as `mixopt sql` does): latency of each read, and the lag between a
   run's commit and the first read that sees it.
3. Shared store: 8 writer processes x `--per-writer` runs on a fresh PostgreSQL database: rows
   found vs recorded, wall time; one writer's seconds per run.

Writes benchmarks/warehouse_reads.json (and prints it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from mixopt.runspec import DomainShard, RunResult
from mixopt.warehouse import Warehouse, read_only_query, snapshot, store

DOMAINS = [DomainShard(n, "a", "b", 10, 1) for n in ("web", "code", "books")]


def _result(run_id: str, steps: int = 200) -> RunResult:
    return RunResult(run_id, "ok", curve=[[s, 8 * s, 3.0 - s / 1000, 1e-3] for s in range(steps)],
                     val_losses={d.name: 2.0 for d in DOMAINS}, n_params=1000, tokens=1600)


def _record(wh: Warehouse, run_id: str) -> None:
    wh.record_run(_result(run_id), experiment_id="e1", role="proxy", label="design", mixture_id="m1", seed=0,
                  target_loss=2.0, code_version="bench")


def _setup(wh: Warehouse) -> None:
    wh.record_experiment("e1", "bench", "h", "fp", {}, DOMAINS, [1 / 3] * 3)
    wh.record_mixture("m1", "e1", "design", [1 / 3] * 3)


def writer_overhead(folder: Path, n: int, grown: int) -> dict:
    out = {}
    for label, publish in (("without_snapshot", False), ("with_snapshot", True)):
        real = store.Publisher
        if not publish:
            store.Publisher = _NoPublisher
        try:
            path = folder / f"{label}.duckdb"
            with Warehouse(path) as wh:
                _setup(wh)
                t0 = time.perf_counter()
                for i in range(n):
                    _record(wh, f"r{i}")
                elapsed = time.perf_counter() - t0
                pub = wh._publisher
                out[label] = {"ms_per_run": 1000 * elapsed / n, "runs": n,
                              "publishes": pub.published if pub else 0,
                              "ms_per_publish": 1000 * pub.publish_s / max(1, pub.published) if pub else 0,
                              "publish_share": pub.publish_s / elapsed if pub else 0}
        finally:
            store.Publisher = real
    # a grown warehouse: each publish copies more
    path = folder / "grown.duckdb"
    with Warehouse(path) as wh:
        _setup(wh)
        with wh.transaction() as con:
            con.execute("INSERT INTO metrics SELECT 'old' || (i // 200), i % 200, 8 * i, 2.0, 1e-3 "
                        "FROM range(?) t(i)", [grown * 200])
        t0, p0, n0 = time.perf_counter(), wh._publisher.publish_s, wh._publisher.published
        for i in range(n):
            _record(wh, f"g{i}")
        elapsed = time.perf_counter() - t0
        pub = wh._publisher
        out["grown"] = {"metric_rows": grown * 200, "file_mb": path.stat().st_size / 1e6,
                        "ms_per_run": 1000 * elapsed / n, "publishes": pub.published - n0,
                        "ms_per_publish": 1000 * (pub.publish_s - p0) / max(1, pub.published - n0),
                        "publish_share": (pub.publish_s - p0) / elapsed}
    # the writer's real cost is the time it spends publishing (its lock held): `publish_share`; the
    # difference of the two ms_per_run is within this machine's noise
    out["overhead_ms_per_run"] = out["with_snapshot"]["ms_per_run"] - out["without_snapshot"]["ms_per_run"]
    return out


class _NoPublisher:
    def __init__(self, *a, **k):
        self.published, self.publish_s = 0, 0.0

    def committed(self) -> None:
        pass

    def close(self) -> None:
        pass


WRITER = """
import sys, time
sys.path.insert(0, sys.argv[4])
from benchmarks.warehouse_reads import _record, _setup
from mixopt.warehouse import Warehouse
path, n, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
with Warehouse(path) as wh:
    _setup(wh)
    print("open", flush=True)
    for i in range(n):
        _record(wh, f"r{i:04d}")
        print(i + 1, time.time(), flush=True)
        time.sleep(pause)
    time.sleep(3)
"""


def reader_latency(folder: Path, n: int, pause: float) -> dict:
    path = folder / "live.duckdb"
    repo = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(n), str(pause), repo],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "open"
    commits: dict[int, float] = {}
    import threading

    def follow() -> None:
        for line in proc.stdout:
            k, t = line.split()
            commits[int(k)] = float(t)

    threading.Thread(target=follow, daemon=True).start()
    latencies, seen_at, counts = [], {}, []
    while proc.poll() is None:
        t0 = time.perf_counter()
        (count,), = read_only_query(path, "select count(*) from runs")[1]
        latencies.append(time.perf_counter() - t0)
        now = time.time()
        counts.append(count)
        for k in range(1, count + 1):
            seen_at.setdefault(k, now)
        time.sleep(0.1)
    lags = [seen_at[k] - commits[k] for k in commits if k in seen_at]
    q = statistics.quantiles(latencies, n=20)
    return {"reads": len(latencies), "read_ms_p50": 1000 * statistics.median(latencies), "read_ms_p95": 1000 * q[18],
            "read_ms_max": 1000 * max(latencies), "monotonic": counts == sorted(counts),
            "final_count": counts[-1], "runs": n, "lag_s_median": statistics.median(lags), "lag_s_max": max(lags)}


PG_WRITER = """
import sys, time
sys.path.insert(0, sys.argv[4])
from benchmarks.warehouse_reads import _record, _setup
from mixopt.warehouse import Warehouse
url, me, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Warehouse(url) as wh:
    _setup(wh)
    t0 = time.perf_counter()
    for i in range(n):
        _record(wh, f"w{me}-{i:04d}")
    print(time.perf_counter() - t0)
"""


def shared_store(base_url: str, per_writer: int, writers: int = 8) -> dict:
    import psycopg

    admin = psycopg.connect(base_url, autocommit=True)
    name = f"mixopt_bench_{uuid.uuid4().hex[:8]}"
    admin.execute(f"CREATE DATABASE {name}")
    url = base_url.rsplit("/", 1)[0] + "/" + name
    repo = str(Path(__file__).resolve().parents[1])
    try:
        one = subprocess.run([sys.executable, "-c", PG_WRITER, url, "solo", str(per_writer), repo],
                             capture_output=True, text=True, check=True)
        solo_s = float(one.stdout.split()[-1])
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", PG_WRITER, url, str(w), str(per_writer), repo],
                                  stdout=subprocess.PIPE, text=True) for w in range(writers)]
        codes = [p.wait() for p in procs]
        wall = time.perf_counter() - t0
        (runs, metrics), = read_only_query(url, "select (select count(*) from runs where run_id not like 'wsolo%'), "
                                                "(select count(*) from metrics where run_id not like 'wsolo%')")[1]
        return {"writers": writers, "runs_per_writer": per_writer, "exit_codes": codes,
                "runs_expected": writers * per_writer, "runs_found": runs, "rows_lost": writers * per_writer - runs,
                "metric_rows_expected": writers * per_writer * 200, "metric_rows_found": metrics,
                "wall_s": wall, "runs_per_s": writers * per_writer / wall,
                "solo_ms_per_run": 1000 * solo_s / per_writer}
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=150)
    ap.add_argument("--grown", type=int, default=5000, help="runs of 200 steps already stored (grown case)")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--per-writer", type=int, default=50)
    args = ap.parse_args()
    out = {"snapshot_interval_s": snapshot.SNAPSHOT_INTERVAL_S}
    with tempfile.TemporaryDirectory() as d:
        out["writer"] = writer_overhead(Path(d), args.runs, args.grown)
        out["reader"] = reader_latency(Path(d), args.runs, 0.02)
    try:
        out["shared_store"] = shared_store(args.pg, args.per_writer)
    except Exception as e:  # noqa: BLE001 - no server: say so
        out["shared_store"] = {"skipped": str(e).splitlines()[0]}
    text = json.dumps(out, indent=1)
    Path(__file__).with_suffix(".json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
