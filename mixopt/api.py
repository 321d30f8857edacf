"""The public, read-only Python API for notebooks: `mixopt.open(path)`.

    import mixopt
    with mixopt.open("out/mixopt.duckdb") as w:
        w.runs().filter(pl.col("status") == "ok").sort("target_loss")
        w.sql("select label, avg(target_loss) from proxy_runs group by label")

Every method returns a `polars.DataFrame`. The warehouse is read with the same guard as `mixopt sql`
(one select statement, no access outside the file), at any moment: each call sees the latest
committed state, also while a run writes (a run's read snapshot, see `warehouse/snapshot.py`), and
an open handle never keeps a run from writing. `path` may also be the shared store's
`postgresql://` URL. `timeout` (seconds) stops a runaway query with a `WarehouseError`.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from mixopt.warehouse import ReadOnlyWarehouse, reads


class Results:
    """A read-only view of one warehouse (a DuckDB file or the shared store)."""

    def __init__(self, path: str | Path, timeout: float | None = None):
        self._db = ReadOnlyWarehouse(path, timeout_s=timeout)
        self.path = self._db.path

    def runs(self, experiment_id: str | None = None) -> pl.DataFrame:
        """Every training run, proxies and final runs (`role`), of one experiment or all."""
        return reads.runs(self._db, experiment_id)

    def fits(self, experiment_id: str | None = None) -> pl.DataFrame:
        """Every regressor fit with its cross-validation scores."""
        return reads.fits(self._db, experiment_id)

    def proposals(self, experiment_id: str | None = None) -> pl.DataFrame:
        """Every proposal with its mixture's weights."""
        return reads.proposals(self._db, experiment_id)

    def sql(self, query: str) -> pl.DataFrame:
        """One read-only query (a single select statement, as `mixopt sql` accepts)."""
        return self._db.sql(query)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Results":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open(path: str | Path, timeout: float | None = None) -> Results:  # noqa: A001 - like `duckdb.connect`
    """Open a warehouse (file or `postgresql://` URL) read-only; a missing file, an unreachable store,
    a refused query or one past `timeout` seconds is a `WarehouseError` (or `StoreError`)."""
    return Results(path, timeout)
