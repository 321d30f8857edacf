"""Least privilege on the shared store: `mixopt store grant-reader` makes a read-only role, `mixopt sql`
refuses superusers and roles with server file or program rights, and every hostile statement run
as the reader is refused with one line, the store unchanged.

Needs PostgreSQL (`tests/pgstore.py`): skipped, with the reason, when none answers. Roles are
cluster-wide, so each test makes its own (a random name) and drops it afterwards.
"""

from __future__ import annotations

import os
import uuid

import pytest
from typer.testing import CliRunner

from mixopt.cli import app
from mixopt.runspec import DomainShard, RunResult
from mixopt.warehouse import Warehouse
from mixopt.warehouse.roles import mixopt_relations
from tests.faults.test_sql_cli import REFUSED
from tests.pgstore import _admin, fresh_database

PG_REFUSED = [
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_read_binary_file('/etc/hostname')",
    "SELECT * FROM pg_ls_dir('.')",
    "COPY runs TO PROGRAM 'touch /tmp/mixopt-pwned'",
    "COPY (SELECT 1) TO PROGRAM 'id'",
    "COPY runs FROM '/etc/passwd'",
    "SELECT lo_import('/etc/passwd')",
    "SELECT lo_export(1, '/tmp/mixopt-leak')",
    "SELECT dblink_exec('dbname=test user=postgres', 'DROP TABLE runs')",
    "SELECT * FROM dblink('dbname=test user=postgres', 'SELECT rolpassword FROM pg_authid') AS t(p text)",
    "SET ROLE postgres",
    "SET SESSION AUTHORIZATION postgres",
    "ALTER SYSTEM SET work_mem = '1GB'",
    "ALTER ROLE CURRENT_USER SUPERUSER",
    "SELECT pg_reload_conf()",
    "SELECT rolpassword FROM pg_authid",
    "SELECT * FROM runs FOR UPDATE",
    "SELECT * FROM not_mixopt",
    "WITH d AS (DELETE FROM runs RETURNING *) SELECT * FROM d",
    "CREATE EXTENSION pgcrypto",
    "DO $$ BEGIN DROP TABLE runs; END $$",
]


_MORE_ROLES: list[str] = []


def _cli(args: list[str]):
    result = CliRunner().invoke(app, args)
    return result, " ".join(result.stderr.split())


def _as(url: str, role: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{role}@{rest.split('@', 1)[-1]}"


def _state(url: str):
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "metrics", "not_mixopt")}
        rows["tables"] = con.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                                     ).fetchone()[0]
        return rows


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with one run, a table that is not mixopt's, dblink when the server has it, and a
    reader role made by `mixopt store grant-reader`: (admin URL, reader URL)."""
    role = f"mixopt_reader_{uuid.uuid4().hex[:8]}"
    with fresh_database() as url:
        with Warehouse(url) as wh:
            wh.record_experiment("e1", "demo", "h", "fp", {}, [DomainShard("web", "a", "b", 10, 1)], [1.0])
            wh.record_mixture("m1", "e1", "design", [1.0])
            wh.record_run(RunResult("r1", "ok", curve=[[0, 8, 3.0, 1e-3]], val_losses={"web": 2.0}),
                          experiment_id="e1", role="proxy", label="design", mixture_id="m1", seed=0,
                          target_loss=2.0, code_version="t")
        import psycopg

        with psycopg.connect(url, autocommit=True) as con:
            con.execute("CREATE TABLE not_mixopt (secret text); INSERT INTO not_mixopt VALUES ('x')")
            try:
                con.execute("CREATE EXTENSION IF NOT EXISTS dblink")
            except psycopg.Error:
                pass  # not installed on this server: its statements fail as unknown functions
        result, err = _cli(["store", "grant-reader", role, "-w", url, "--timeout", "5"])
        assert result.exit_code == 0, err
        assert f"role {role}: read-only, SELECT on {len(mixopt_relations())} tables and views" in result.stdout
        try:
            yield url, _as(url, role)
        finally:
            admin = _admin()
            admin.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
            for name in [role, *_MORE_ROLES]:
                admin.execute(f"DROP ROLE IF EXISTS {name}")
            admin.close()


def test_the_reader_reads_mixopt_tables_only(store):
    _, reader = store
    result, err = _cli(["sql", "select run_id, status from proxy_runs", "-w", reader, "-f", "csv"])
    assert result.exit_code == 0, err
    assert result.stdout.split() == ["run_id,status", "r1,ok"]
    import psycopg

    with psycopg.connect(reader, autocommit=True) as con:
        settings = dict(con.execute("SELECT name, setting FROM pg_settings WHERE name IN "
                                    "('default_transaction_read_only', 'statement_timeout')").fetchall())
        assert settings == {"default_transaction_read_only": "on", "statement_timeout": "5000"}
        role = con.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
                           ).fetchone()
        assert role == (False, False, False)
        granted = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.role_table_grants WHERE grantee = current_user").fetchall()}
        assert granted and granted <= set(mixopt_relations()) and "not_mixopt" not in granted


@pytest.mark.parametrize("query", REFUSED + PG_REFUSED)
def test_a_hostile_statement_as_the_reader_is_refused(store, query, tmp_path, monkeypatch):
    admin, reader = store
    monkeypatch.chdir(tmp_path)
    before = _state(admin)
    result, err = _cli(["sql", query, "-w", reader])
    assert result.exit_code == 2, (query, result.stdout, err)
    assert err.startswith("error: ") and any(
        w in err for w in ("refused", "query failed", "could not parse", "exactly one statement")), err
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert os.environ.get("HOME", "/nonexistent-home") not in result.stdout
    assert _state(admin) == before and list(tmp_path.iterdir()) == []
    assert not os.path.exists("/tmp/mixopt-pwned") and not os.path.exists("/tmp/mixopt-leak")


WRITES = ["INSERT INTO runs (run_id) VALUES ('x')", "UPDATE runs SET status = 'failed'", "DELETE FROM runs",
          "TRUNCATE runs", "DROP TABLE runs", "DROP VIEW proxy_runs", "CREATE TABLE t (a int)",
          "ALTER TABLE runs ADD COLUMN x int", "GRANT SELECT ON not_mixopt TO CURRENT_USER",
          "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'"]


@pytest.mark.parametrize("query", PG_REFUSED + WRITES)
def test_the_role_alone_refuses_it_even_past_mixopt_sql_and_read_only_off(store, query):
    """Defence in depth: the statement sent straight to the server as the reader, with its default
    READ ONLY turned off, still fails on the role's privileges (or PostgreSQL's own rules)."""
    import psycopg

    admin, reader = store
    before = _state(admin)
    with psycopg.connect(reader, autocommit=True) as con:
        con.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.Error) as e:
            con.execute(query)
    assert not isinstance(e.value, psycopg.errors.SyntaxError), e.value
    assert _state(admin) == before and not os.path.exists("/tmp/mixopt-pwned")


def test_mixopt_sql_refuses_a_superuser_unless_told(store):
    admin, _ = store
    result, err = _cli(["sql", "select count(*) from runs", "-w", admin])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, err
    assert "a superuser" in err and "mixopt store grant-reader NAME" in err and "--as-admin" in err
    result, err = _cli(["sql", "select count(*) from runs", "-w", admin, "--as-admin", "-f", "csv"])
    assert result.exit_code == 0, err
    assert result.stdout.split()[-1] == "1"


def test_a_role_with_server_file_rights_is_refused_and_grant_reader_takes_them_back(store):
    admin_url, _ = store
    role = f"mixopt_files_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    try:
        admin.execute(f"CREATE ROLE {role} LOGIN CREATEROLE")
        admin.execute(f"GRANT pg_read_server_files, pg_execute_server_program TO {role}")
        url = _as(admin_url, role)
        result, err = _cli(["sql", "select 1", "-w", url])
        assert result.exit_code == 2
        assert f"does not run as {role} (pg_read_server_files, pg_execute_server_program)" in err
        result, err = _cli(["store", "grant-reader", role, "-w", admin_url])  # update: back to read-only
        assert result.exit_code == 0, err
        result, err = _cli(["sql", "select count(*) from runs", "-w", url, "-f", "csv"])
        assert result.exit_code == 0 and result.stdout.split()[-1] == "1", err
        held = admin.execute("SELECT count(*) FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member "
                             "WHERE u.rolname = %s", [role]).fetchone()[0]
        assert held == 0
        assert admin.execute("SELECT rolcreaterole FROM pg_roles WHERE rolname = %s", [role]).fetchone() == (False,)
    finally:
        _MORE_ROLES.append(role)  # dropped after the store's database (which holds its grants)
        admin.close()


@pytest.mark.parametrize("args, expected", [
    (["store", "grant-reader", "Robert'); DROP TABLE runs; --"], "role name"),
    (["store", "grant-reader", "reader", "-w", "out/mixopt.duckdb"], "needs the shared store's postgresql:// URL"),
    (["store", "grant-reader", "reader", "-w", "postgresql://postgres@127.0.0.1:1/test"], "cannot connect"),
])
def test_grant_reader_bad_input_is_one_line(args, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result, err = _cli(args)
    assert result.exit_code == 2 and err.startswith("error: ") and expected in err, err
    assert list(tmp_path.iterdir()) == []
