"""Reads of a DuckDB warehouse file at any moment of a run, without ever holding the writer's lock.

DuckDB lets one process write a file and nobody else open it meanwhile, so readers never open
the warehouse file itself:

- While a writer holds the file (the exclusive `flock` on `<file>.lock` that `Warehouse` takes),
  it publishes a *read snapshot* `<file>.snapshot`: at most every `SNAPSHOT_INTERVAL_S` when
  something was committed (`Publisher`), it checkpoints (the file then holds every committed
  row) and copies the file to a temporary name, renamed over the snapshot (readers see the old
  snapshot or the new one, never a half-written one). The interval stretches to 10x the time a
  copy takes, so publishing costs the writer at most ~10% on a huge warehouse.
- With no writer, a reader takes the lock shared for as long as it copies the file (and its WAL,
  e.g. after a killed writer) to a private folder, then queries the copy; a writer that starts
  meanwhile waits only for that copy.

A reader therefore answers at any moment, sees every run committed more than ~`SNAPSHOT_INTERVAL_S`
earlier, and its queries (however long) never hold anything the writer needs.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import duckdb

SNAPSHOT_INTERVAL_S = 1.0
WAIT_FOR_SNAPSHOT_S = 10.0  # a writer that just started publishes its first snapshot at once


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def snapshot_path(path: Path) -> Path:
    return path.with_name(path.name + ".snapshot")


def _copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f"{dst.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


class Publisher:
    """The writer's side: `committed()` after each commit; a thread publishes the snapshot."""

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection, lock: threading.RLock):
        self.path, self.con, self.lock = path, con, lock
        self.snapshot = snapshot_path(path)
        self.publish_s = 0.0  # time spent publishing, all told (the writer's cost; benchmarks read it)
        self.published = 0
        self._dirty = threading.Event()
        self._stop = threading.Event()
        for stale in path.parent.glob(self.snapshot.name + ".tmp-*"):  # left by a killed writer
            stale.unlink(missing_ok=True)
        self.publish()
        self._thread = threading.Thread(target=self._loop, name=f"snapshot:{path.name}", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        self._dirty.set()

    def publish(self) -> None:
        with self.lock:
            t0 = time.perf_counter()
            self.con.execute("CHECKPOINT")
            _copy(self.path, self.snapshot)
            self.publish_s += time.perf_counter() - t0
            self.published += 1
            self._last = time.perf_counter() - t0

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(max(SNAPSHOT_INTERVAL_S, 10 * self._last))
            if self._dirty.is_set() and not self._stop.is_set():
                self._dirty.clear()
                try:
                    self.publish()
                except (duckdb.Error, OSError):  # e.g. the connection closed under us at exit
                    self._dirty.set()

    def close(self) -> None:
        """Stop publishing and remove the snapshot (readers then copy the file itself)."""
        self._stop.set()
        self._thread.join(timeout=30)
        self.snapshot.unlink(missing_ok=True)


class CommittedView:
    """The reader's side: `connect()` returns a read-only connection to the latest committed state
    (the writer's snapshot, or a private copy of the file), reused while that state has not changed."""

    def __init__(self, path: Path, prepare=None):
        self.path = path
        self.prepare = prepare  # called on each new connection (the read-only guard's settings)
        self._dir: str | None = None
        self._key: tuple | None = None
        self.con: duckdb.DuckDBPyConnection | None = None

    def connect(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + WAIT_FOR_SNAPSHOT_S
        while True:
            got = self._from_file() or self._from_snapshot()
            if got is not None:
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.path}: a run holds the file and has published no read snapshot")
            time.sleep(0.05)

    def _open(self, key: tuple, target: Path, copy) -> duckdb.DuckDBPyConnection:
        if key != self._key or self.con is None:
            self._close_con()
            if copy is not None:
                copy()
            name = self.path.stem if self.path.stem not in ("memory", "system", "temp", "main") else "warehouse"
            self.con = _attach(target, name)
            if self.prepare is not None:
                self.prepare(self.con)
            self._key = key
        return self.con

    def _from_file(self) -> duckdb.DuckDBPyConnection | None:
        """No writer: a private copy of the file (and WAL) taken under the shared lock."""
        lock = lock_path(self.path)
        try:
            fd = os.open(lock, os.O_RDONLY)
        except FileNotFoundError:  # no mixopt writer ever opened it
            fd = None
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return None
            wal = self.path.with_name(self.path.name + ".wal")
            key = ("file", _stat(self.path), _stat(wal))
            if self._dir is None:
                self._dir = tempfile.mkdtemp(prefix="mixopt-read-")
            copy_path = Path(self._dir) / "copy.duckdb"

            def copy() -> None:
                Path(str(copy_path) + ".wal").unlink(missing_ok=True)
                shutil.copyfile(self.path, copy_path)
                if wal.exists():
                    shutil.copyfile(wal, str(copy_path) + ".wal")

            return self._open(key, copy_path, copy)
        finally:
            if fd is not None:
                os.close(fd)  # releases the shared lock

    def _from_snapshot(self) -> duckdb.DuckDBPyConnection | None:
        snap = snapshot_path(self.path)
        try:
            key = ("snapshot", _stat(snap))
            if key[1] is None:
                return None
            return self._open(key, snap, None)
        except duckdb.IOException:  # replaced or removed between the stat and the open
            return None

    def _close_con(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None
            self._key = None

    def close(self) -> None:
        self._close_con()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _attach(target: Path, name: str) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB with `target` attached read-only as `name` (DuckDB caches databases
    opened by path in a process; attaching keeps each snapshot its own, whatever its path)."""
    con = duckdb.connect(":memory:")
    try:
        quoted = str(target).replace("'", "''")
        ident = '"' + name.replace('"', '""') + '"'
        con.execute(f"ATTACH '{quoted}' AS {ident} (READ_ONLY)")
        con.execute(f"USE {ident}")
    except BaseException:
        con.close()
        raise
    return con


def _stat(p: Path) -> tuple | None:
    try:
        s = p.stat()
    except FileNotFoundError:
        return None
    return (s.st_ino, s.st_size, s.st_mtime_ns)
