"""Helpers of the fault tests: find this process's training children, snapshot a warehouse."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import duckdb

from mixopt.warehouse import Warehouse

TABLES = ("experiments", "domains", "mixtures", "runs", "metrics", "evals", "mixture_trajectory",
          "aioli_params", "fits", "fit_predictions", "proposals")


def launch_children(parent: int | None = None) -> dict[int, str]:
    """pid -> run id of the live `python -m mixopt.models.launch` children of `parent` (default: us).

    Scans /proc (no psutil); only direct children of `parent` are returned, so a test never touches
    anyone else's processes. Zombies (killed, not yet reaped) have no command line and are skipped.
    """
    parent = os.getpid() if parent is None else parent
    found: dict[int, str] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != parent:
                continue
            argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if b"mixopt.models.launch" in argv:
            spec = argv[argv.index(b"mixopt.models.launch") + 1].decode()
            found[int(entry.name)] = Path(spec).name.removesuffix(".spec.json")
    return found


def is_training(pid: int) -> bool:
    """True once the process has memory-mapped a train shard: its training loop drew a batch."""
    try:
        return "train.bin" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def snapshot(source: "str | Path | Warehouse") -> dict[str, str]:
    """Row count and digest of every table's sorted content (row order and file layout do not matter).

    `source` is a warehouse file (opened read-only) or an open `Warehouse` (read through it, since
    DuckDB refuses a second, differently configured connection to a file from the same process).
    """
    if isinstance(source, Warehouse):
        def rows_of(table: str) -> list:
            return [tuple(r.values()) for r in source.query(f"SELECT * FROM {table}")]
        return _digest(rows_of)
    con = duckdb.connect(str(source), read_only=True)
    try:
        return _digest(lambda table: con.execute(f"SELECT * FROM {table}").fetchall())
    finally:
        con.close()


def _digest(rows_of) -> dict[str, str]:
    out = {}
    for t in TABLES:
        rows = sorted(repr(r) for r in rows_of(t))
        out[t] = f"{len(rows)}:" + hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
    return out


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
