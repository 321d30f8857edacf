"""The shared store: the warehouse on a PostgreSQL database (`runtime.warehouse: postgresql://...`).

The store's SQL is written once, in the portable subset of HELPERS/`schema.py` with DuckDB's `?`
parameters; `translate` turns it into PostgreSQL's in one place:

- `?` parameters become `%s` (and a literal `%` becomes `%%` when parameters are bound);
- `DOUBLE` (and `DOUBLE[]`) become `DOUBLE PRECISION`;
- `INSERT OR REPLACE INTO t (cols)` becomes `INSERT ... ON CONFLICT (t's primary key) DO UPDATE`;
- migration 2's `QUALIFY row_number() ... = 1` (keep the first row of a duplicate key) becomes
  `ON CONFLICT DO NOTHING`, which keeps the first row the same way;
- `CREATE OR REPLACE VIEW v` becomes `DROP VIEW IF EXISTS v CASCADE; CREATE VIEW v` (DuckDB lets a
  migration change a view's columns; PostgreSQL only appends), and after migrations every view is
  re-created from its latest definition (PostgreSQL expands `SELECT *` when a view is created).

The two DuckDB functions the reads use and PostgreSQL 15 lacks, `isfinite(double)` and
`any_value`, are created in the database by `migrate` (`_COMPAT`). Writers take turns through a
transaction-scoped advisory lock (`pg_advisory_xact_lock`): every write is one short transaction,
readers never wait (MVCC), and a writer that dies mid-transaction leaves nothing behind (the
server rolls its transaction back and frees the lock when the connection drops).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

from mixopt.errors import MixoptError

if TYPE_CHECKING:
    import polars as pl

URL_SCHEMES = ("postgresql://", "postgres://")
WRITE_LOCK = 0x6D69786F7074  # "mixopt": the advisory lock every write transaction holds
CONNECT_TIMEOUT_S = 5
WRITER_NAME, READER_NAME = "mixopt-writer", "mixopt-reader"  # application_name (pg_stat_activity)


class StoreError(MixoptError, RuntimeError):
    """The shared store cannot be reached or used (unreachable host, wrong password, ...)."""


def is_url(location: object) -> bool:
    """Whether `runtime.warehouse` names the shared PostgreSQL store rather than a DuckDB file."""
    return isinstance(location, str) and location.lower().startswith(URL_SCHEMES)


def redact(url: str) -> str:
    """The URL without its password (shown as `***`) and secret parameters (for messages)."""
    from mixopt.warehouse.credentials import clean_query

    parts = urlsplit(url)
    netloc, query = parts.netloc, clean_query(parts.query)
    if parts.password is not None:
        userinfo, hostport = netloc.rsplit("@", 1)
        netloc = userinfo.split(":", 1)[0] + ":***@" + hostport
    return urlunsplit(parts._replace(netloc=netloc, query=query))


# ---------------------------------------------------------------- dialect
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|[?%]|\bDOUBLE\b(?!\s+PRECISION)",
                     re.IGNORECASE | re.DOTALL)
_QUALIFY_FIRST = re.compile(r"\s*QUALIFY\s+row_number\(\)\s+OVER\s*\(PARTITION BY [^)]*\)\s*=\s*1", re.IGNORECASE)
_REPLACE_VIEW = re.compile(r"CREATE\s+OR\s+REPLACE\s+VIEW\s+(\w+)", re.IGNORECASE)
_INSERT_OR_REPLACE = re.compile(r"INSERT\s+OR\s+REPLACE\s+INTO\s+(\w+)\s*\(([^)]*)\)", re.IGNORECASE)


def translate(sql: str, bound: bool, primary_key=None) -> str:
    """DuckDB-flavoured portable SQL -> PostgreSQL. `bound`: parameters will be passed (psycopg then
    reads `%s` placeholders and needs a literal `%` doubled). `primary_key(table)` gives the key
    columns an `INSERT OR REPLACE` conflicts on."""
    sql = _QUALIFY_FIRST.sub(" ON CONFLICT DO NOTHING", sql)
    sql = _REPLACE_VIEW.sub(r"DROP VIEW IF EXISTS \1 CASCADE; CREATE VIEW \1", sql)

    def token(m: re.Match) -> str:
        t = m.group(0)
        if t == "?":
            return "%s" if bound else t
        if t == "%":
            return "%%" if bound else t
        if t.upper() == "DOUBLE":
            return "DOUBLE PRECISION"
        if t.startswith("'") and bound:
            return t.replace("%", "%%")
        return t

    sql = _TOKENS.sub(token, sql)
    m = _INSERT_OR_REPLACE.search(sql)
    if m and primary_key is not None:
        table, cols = m.group(1), [c.strip() for c in m.group(2).split(",")]
        key = primary_key(table)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in key)
        action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        sql = (sql[:m.start()] + f"INSERT INTO {table} ({m.group(2)})" + sql[m.end():].rstrip().rstrip(";")
               + f" ON CONFLICT ({', '.join(key)}) {action}")
    return sql


_COMPAT = """
CREATE OR REPLACE FUNCTION isfinite(double precision) RETURNS boolean LANGUAGE sql IMMUTABLE AS
    $$ SELECT $1 NOT IN ('Infinity'::float8, '-Infinity'::float8, 'NaN'::float8) $$;
CREATE OR REPLACE FUNCTION mixopt_any_value_step(anyelement, anyelement) RETURNS anyelement
    LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce($1, $2) $$;
"""
_ANY_VALUE = ("CREATE AGGREGATE any_value(anyelement) (SFUNC = mixopt_any_value_step, STYPE = anyelement)")



def _dtypes() -> dict[str, Any]:
    """PostgreSQL type name -> polars dtype (typed frames even when empty, as DuckDB gives them)."""
    import polars as pl

    return {"int2": pl.Int64, "int4": pl.Int64, "int8": pl.Int64, "float4": pl.Float64, "float8": pl.Float64,
            "numeric": pl.Float64, "text": pl.Utf8, "varchar": pl.Utf8, "bpchar": pl.Utf8, "json": pl.Utf8,
            "jsonb": pl.Utf8, "bool": pl.Boolean, "timestamptz": pl.Datetime("us", "UTC"),
            "_float8": pl.List(pl.Float64), "_bool": pl.List(pl.Boolean), "_text": pl.List(pl.Utf8),
            "_varchar": pl.List(pl.Utf8), "_int8": pl.List(pl.Int64), "_int4": pl.List(pl.Int64)}


# ---------------------------------------------------------------- connections
def _connect(url: str, *, read_only: bool = False, timeout_s: float | None = None, name: str = "mixopt"):
    import psycopg
    from psycopg.types.json import set_json_loads
    from psycopg.types.numeric import FloatLoader

    from mixopt.warehouse.credentials import connection_url

    try:
        con = psycopg.connect(connection_url(url), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                              application_name=name)
    except psycopg.Error as e:
        detail = " ".join(str(e).split()) or type(e).__name__
        raise StoreError(f"{redact(url)}: cannot connect to the PostgreSQL store ({detail})") from None
    set_json_loads(lambda data: data if isinstance(data, str) else bytes(data).decode(), con)  # JSON as text
    con.adapters.register_loader("numeric", FloatLoader)  # sum() and avg() of integers: floats, as in DuckDB
    if read_only:
        con.execute("SET default_transaction_read_only = on")
    if timeout_s:
        con.execute(f"SET statement_timeout = {int(timeout_s * 1000)}")
    return con


class PgConnection:
    """The `con` of `Warehouse.transaction()` on the shared store: `execute`/`executemany` of the
    store's portable SQL, translated, with DuckDB's call shapes (`execute(...).fetchall()`)."""

    def __init__(self, con):
        self.raw = con
        self._keys: dict[str, list[str]] = {}

    def primary_key(self, table: str) -> list[str]:
        if table not in self._keys:
            rows = self.raw.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary "
                "ORDER BY array_position(i.indkey, a.attnum)", [table]).fetchall()
            if not rows:
                raise StoreError(f"INSERT OR REPLACE INTO {table}: the table has no primary key")
            self._keys[table] = [r[0] for r in rows]
        return self._keys[table]

    def execute(self, sql: str, params: Sequence[Any] | None = None):
        bound = bool(params)
        return self.raw.execute(translate(sql, bound, self.primary_key), list(params) if bound else None)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]):
        cur = self.raw.cursor()
        cur.executemany(translate(sql, True, self.primary_key), [list(r) for r in rows])
        return cur

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        import polars as pl

        cur = self.execute(sql, params)
        if cur.description is None:
            return pl.DataFrame()
        dtypes = _dtypes()
        schema = [(d.name, dtypes.get(_type_name(self.raw, d.type_code))) for d in cur.description]
        return pl.DataFrame(cur.fetchall(), schema=schema, orient="row", infer_schema_length=None)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple]]:
        cur = self.execute(sql, params)
        cols = [d.name for d in cur.description] if cur.description else []
        return cols, cur.fetchall() if cur.description else []

    def close(self) -> None:
        self.raw.close()


def _type_name(con, oid: int) -> str | None:
    info = con.adapters.types.get(oid)  # an array's oid gives its element's info
    if info is None:
        return None
    return "_" + info.name if oid == info.array_oid else info.name


class PgStore:
    """The writer's side of the shared store: one connection (reopened when it breaks), writes
    serialised across every process by the advisory lock."""

    def __init__(self, url: str):
        self.url = url
        self.con = PgConnection(_connect(url, name=WRITER_NAME))
        try:
            migrate(self.con, redact(url))
        except BaseException:
            self.con.close()
            raise

    def _alive(self) -> PgConnection:
        if self.con.raw.closed or self.con.raw.broken:
            self.con = PgConnection(_connect(self.url, name=WRITER_NAME))
        return self.con

    def lost(self, error: BaseException) -> bool:
        """Whether `error` is the connection dropping (server restart, `pg_terminate_backend`, network):
        the transaction it was in is rolled back (or, if COMMIT was under way, maybe committed), and
        the next call reconnects. `Warehouse` then re-runs the whole (idempotent) write."""
        import psycopg

        return isinstance(error, psycopg.OperationalError) and (self.con.raw.closed or self.con.raw.broken)

    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        con = self._alive()
        with con.raw.transaction():
            con.raw.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
            yield con

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cols, rows = self._alive().rows(sql, params)
        return [dict(zip(cols, r)) for r in rows]

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        return self._alive().frame(sql, params)

    def close(self) -> None:
        self.con.close()


def check_reachable(location: str) -> None:
    """For a store URL: connect once (a `StoreError` naming the URL if that fails); files: nothing."""
    if is_url(location):
        _connect(location).close()


def open_reader(url: str, timeout_s: float | None) -> PgConnection:
    """A read-only connection (every transaction READ ONLY, `statement_timeout` set)."""
    return PgConnection(_connect(url, read_only=True, timeout_s=timeout_s, name=READER_NAME))


# ---------------------------------------------------------------- schema
def migrate(con: PgConnection, where: str = "the store") -> list[int]:
    """`schema.MIGRATIONS` on the shared store, translated, under the write lock (several processes
    may open a fresh store at once). A migration's views come after its tables and columns: every
    view is re-created from its latest definition, so `SELECT *` views see columns added since and
    views over them can name those columns (PostgreSQL binds a view when it is created, DuckDB when
    it is read)."""
    from mixopt.warehouse.schema import _VERSION_TABLE, MIGRATIONS, check_not_newer

    applied = []
    with con.raw.transaction():
        con.raw.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
        con.raw.execute(_COMPAT)
        if con.raw.execute("SELECT to_regprocedure('any_value(anyelement)')").fetchone()[0] is None:
            con.raw.execute(_ANY_VALUE)
        con.raw.execute(translate(_VERSION_TABLE, False))
        current = con.raw.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
        check_not_newer(current, where)
        for version, description, sql in MIGRATIONS:
            if version <= current:
                continue
            tables = _VIEW.sub("", sql).strip()
            if tables.strip(" ;\n"):
                con.raw.execute(translate(tables, False))
            _recreate_views(con, [m for v, _, m in MIGRATIONS if v <= version])  # views last: see `migrate`
            con.raw.execute("INSERT INTO schema_version (version, description, applied_at) VALUES (%s, %s, %s)",
                            [version, description, datetime.now(timezone.utc)])
            applied.append(version)
    return applied


_VIEW = re.compile(r"CREATE\s+OR\s+REPLACE\s+VIEW\s+(\w+)\s.*?(?:;|$)", re.IGNORECASE | re.DOTALL)


def _recreate_views(con: PgConnection, scripts: list[str]) -> None:
    """Every view as its latest migration defines it (DuckDB's state after the same migrations):
    all dropped, then created, those that need another one retried after it."""
    latest: dict[str, str] = {}
    for sql in scripts:
        for m in _VIEW.finditer(sql):
            latest.pop(m.group(1).lower(), None)
            latest[m.group(1).lower()] = m.group(0)
    for name in latest:
        con.raw.execute(f"DROP VIEW IF EXISTS {name} CASCADE")
    pending = list(latest.values())
    while pending:
        failed, error = [], None
        for view in pending:
            try:
                with con.raw.transaction():  # a savepoint inside the migration's transaction
                    con.raw.execute(_translate_view(view))
            except Exception as e:  # noqa: BLE001 - e.g. a view over a view created later: retried
                failed.append(view)
                error = e
        if len(failed) == len(pending):
            raise error
        pending = failed


def _translate_view(view: str) -> str:
    return translate(re.sub(r"^CREATE\s+OR\s+REPLACE\s+VIEW", "CREATE VIEW", view, flags=re.IGNORECASE), False)
