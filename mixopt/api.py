"""The public, read-only Python API for notebooks: `mixopt.open(path)`.

    import mixopt
    with mixopt.open("out/mixopt.duckdb") as w:
        w.runs().filter(pl.col("status") == "ok").sort("target_loss")
        w.sql("select label, avg(target_loss) from proxy_runs group by label")

Every method returns a `polars.DataFrame`. The file is opened read-only with the same guard as
`mixopt sql` (one select statement, no access outside the file); close the handle (or leave the `with`
block) before a run writes to the same file, since DuckDB allows one writing process.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from mixopt.warehouse import ReadOnlyWarehouse, reads


class Results:
    """A read-only view of one warehouse file."""

    def __init__(self, path: str | Path):
        self._db = ReadOnlyWarehouse(path)
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


def open(path: str | Path) -> Results:  # noqa: A001 - `mixopt.open`, like `duckdb.connect`
    """Open a warehouse file read-only; a missing file or a refused query is a `WarehouseError`."""
    return Results(path)
