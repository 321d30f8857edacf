"""Read-only access to a warehouse file: the guard behind `mixopt sql` and `mixopt.open`.

The file is opened read-only with external access, extension loading and configuration changes
disabled, and only one SELECT-like statement is accepted (`check_read_only`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import duckdb
import polars as pl

from mixopt.errors import MixoptError

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


def connect_read_only(path: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection that cannot reach outside the file or change its own settings."""
    path = Path(path)
    if not path.exists():
        raise WarehouseError(f"{path}: no warehouse here (run `mixopt run` first, or pass --warehouse)")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as e:
        raise WarehouseError(f"{path}: cannot open read-only ({e}); is a run writing to it right now?") from None
    try:
        con.execute("SET enable_external_access = false")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def read_only_query(path: str | Path, sql: str) -> tuple[list[str], list[tuple]]:
    """Run one read-only statement on the warehouse; refuses anything that writes or reaches outside it."""
    path = Path(path)
    if not path.exists():
        raise WarehouseError(f"{path}: no warehouse here (run `mixopt run` first, or pass --warehouse)")
    check_read_only(sql)
    con = connect_read_only(path)
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description] if cur.description else []
        return cols, cur.fetchall()
    except duckdb.Error as e:
        raise WarehouseError(f"query failed: {e}") from None
    finally:
        con.close()


class ReadOnlyWarehouse:
    """A read-only handle on a warehouse file; reads come back as polars DataFrames.

    `frame(sql, params)` runs the warehouse's own named reads (`reads.py`); `sql(query)` runs a
    user's query through the same guard as `mixopt sql`. Use as a context manager or call `close()`.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.con = connect_read_only(self.path)

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        try:
            return self.con.sql(sql, params=list(params) or None).pl()
        except duckdb.Error as e:
            raise WarehouseError(f"query failed: {e}") from None

    def sql(self, query: str) -> pl.DataFrame:
        """One user query (a single SELECT, as `mixopt sql` accepts) as a DataFrame."""
        check_read_only(query)
        return self.frame(query)

    def close(self) -> None:
        self.con.close()

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
