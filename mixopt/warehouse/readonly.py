"""Read-only access to a warehouse: the guard behind `mixopt sql`, `mixopt report` and `mixopt.open`.

A DuckDB file is read through its latest committed state (`snapshot.py`: the running writer's
read snapshot, or a private copy), never the file the writer holds, attached read-only with
external access, extension loading and configuration changes disabled; the shared store is read
through READ ONLY transactions. Only one SELECT-like statement is accepted (`check_read_only`),
and a statement stops after its timeout (DuckDB: `interrupt()` from a timer; PostgreSQL:
`statement_timeout`).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import duckdb

from mixopt.errors import MixoptError
from mixopt.warehouse import postgres
from mixopt.warehouse.postgres import is_url
from mixopt.warehouse.snapshot import CommittedView

if TYPE_CHECKING:
    import polars as pl

DEFAULT_TIMEOUT_S = 60.0  # `mixopt sql --timeout`: a runaway query cannot hang a terminal or a deployment
_ALLOWED_STATEMENTS = {"SELECT", "EXPLAIN"}
_EXPLAIN_PREFIX = re.compile(  # `EXPLAIN [ANALYZE] [(options)]`, the part before the explained statement
    r"\s*EXPLAIN\s+(?:ANALY[SZ]E\s+)?(?:\((?!\s*(?:SELECT|WITH|FROM|VALUES)\b)[^()]*\)\s*)?", re.IGNORECASE)


class WarehouseError(MixoptError, RuntimeError):
    """A warehouse problem the user can act on (wrong path, refused statement, ...)."""


def check_read_only(sql: str) -> None:
    """Refuse anything but exactly one SELECT (or EXPLAIN of one) with a `WarehouseError`."""
    statements = _parse(sql)
    if len(statements) != 1:
        raise WarehouseError(f"give exactly one statement, got {len(statements)}")
    kind, text = statements[0]
    if kind == "EXPLAIN":  # EXPLAIN ANALYZE executes its statement: that one must be a SELECT too
        m = _EXPLAIN_PREFIX.match(text)
        inner = _parse(text[m.end():]) if m else []
        if len(inner) != 1 or inner[0][0] != "SELECT":
            kind = "EXPLAIN " + (inner[0][0] if len(inner) == 1 else "of something else")
    if kind not in _ALLOWED_STATEMENTS:
        raise WarehouseError(f"refused: `mixopt sql` is read-only and runs SELECT queries only (got {kind})")


def _guard(con: duckdb.DuckDBPyConnection) -> None:
    """Settings of every read-only connection: nothing outside the warehouse, no setting changes."""
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET lock_configuration = true")


def _missing(path: Path) -> WarehouseError:
    return WarehouseError(f"{path}: no warehouse here (run `mixopt run` first, or pass --warehouse)")


def _timed_out(timeout_s: float | None) -> WarehouseError:
    return WarehouseError(f"query stopped after {timeout_s:g} s (the statement timeout; raise it with --timeout)")


def read_only_query(path: str | Path, sql: str, timeout_s: float | None = DEFAULT_TIMEOUT_S,
                    allow_admin: bool = True) -> tuple[list[str], list[tuple]]:
    """Run one read-only statement on the warehouse (the latest committed state, even while a run
    writes); refuses anything that writes or reaches outside it; stops after `timeout_s`.
    `allow_admin=False` (`mixopt sql`): on the shared store, refuse a superuser or a role that
    reads or writes server files or runs programs (`roles.check_reader`)."""
    with ReadOnlyWarehouse(path, timeout_s=timeout_s, allow_admin=allow_admin) as db:
        return db.rows(sql)


class ReadOnlyWarehouse:
    """A read-only handle on a warehouse (file or shared store); reads come back as polars DataFrames.

    `frame(sql, params)` runs the warehouse's own named reads (`reads.py`); `sql(query)` runs a
    user's query through the same guard as `mixopt sql`. Each read sees the latest committed state
    (a DuckDB file: the run's read snapshot, `snapshot.py`; the shared store: PostgreSQL's own
    snapshot) and stops after `timeout_s` (None: no limit). `allow_admin=False`: refuse to read the
    shared store as a superuser or a role with server file or program rights (`roles.check_reader`).
    Use as a context manager or call `close()`.
    """

    def __init__(self, path: str | Path, timeout_s: float | None = None, allow_admin: bool = True):
        self.timeout_s = timeout_s
        self._pg = self._view = None
        if is_url(path):
            self.path = str(path)
            self._pg = postgres.open_reader(self.path, timeout_s)
            if not allow_admin:
                from mixopt.warehouse.roles import check_reader

                try:
                    check_reader(self._pg, self.path)
                except BaseException:
                    self._pg.close()
                    raise
            return
        self.path = Path(path)
        if not self.path.exists():
            raise _missing(self.path)
        self._view = CommittedView(self.path, prepare=_guard)
        self._connect()  # fail now on a file that is not a warehouse

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            return self._view.connect()
        except (duckdb.Error, TimeoutError) as e:
            raise WarehouseError(f"{self.path}: cannot open read-only ({e})") from None
        except FileNotFoundError:
            raise _missing(self.path) from None

    def _run(self, fn, sql: str, params: Sequence[Any]):
        if self._pg is not None:
            import psycopg

            try:
                return getattr(self._pg, fn)(sql, params)
            except psycopg.errors.QueryCanceled:
                raise _timed_out(self.timeout_s) from None
            except psycopg.Error as e:
                raise WarehouseError("query failed: " + " ".join(str(e).split())) from None
        con = self._connect()
        timer = threading.Timer(self.timeout_s, con.interrupt) if self.timeout_s else None
        if timer is not None:
            timer.start()
        try:
            if fn == "frame":
                return con.sql(sql, params=list(params) or None).pl()
            cur = con.execute(sql, list(params) or None)
            cols = [d[0] for d in cur.description] if cur.description else []
            return cols, cur.fetchall()
        except duckdb.InterruptException:
            raise _timed_out(self.timeout_s) from None
        except duckdb.Error as e:
            raise WarehouseError(f"query failed: {e}") from None
        finally:
            if timer is not None:
                timer.cancel()

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        return self._run("frame", sql, params)

    def rows(self, query: str) -> tuple[list[str], list[tuple]]:
        """One user query (a single SELECT, as `mixopt sql` accepts): column names and rows."""
        check_read_only(query)
        return self._run("rows", query, ())

    def sql(self, query: str) -> pl.DataFrame:
        """One user query (a single SELECT, as `mixopt sql` accepts) as a DataFrame."""
        check_read_only(query)
        return self.frame(query)

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
        if self._view is not None:
            self._view.close()

    def __enter__(self) -> "ReadOnlyWarehouse":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse(sql: str) -> list[tuple[str, str]]:
    """(type, text) of each statement in `sql`; anything DuckDB cannot parse is a `WarehouseError`."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise WarehouseError(f"could not parse the query: {e}") from None
    parsed = []
    for st in statements:
        try:
            kind = st.type.name
        except ValueError:  # a statement type the Python API does not know (e.g. UPDATE EXTENSIONS)
            kind = "UNKNOWN"
        parsed.append((kind, st.query))
    return parsed
