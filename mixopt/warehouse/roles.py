"""Least privilege on the shared store: analysts read through a read-only role, never as a superuser.

`grant_reader` (`mixopt store grant-reader NAME`) creates or updates a login role that can only
SELECT mixopt's tables and views: no superuser or role-creating rights, no membership of any
role (so none of the file/program roles below), every transaction READ ONLY by default, and a
statement timeout. `check_reader` is what `mixopt sql` runs first on the store: it refuses a
superuser, and a role holding any of `ADMIN_ROLES`, unless told otherwise (`--as-admin`).
"""

from __future__ import annotations

import re

from mixopt.warehouse.postgres import PgConnection, StoreError, is_url, redact

ADMIN_ROLES = ("pg_read_server_files", "pg_write_server_files", "pg_execute_server_program")
DEFAULT_READER_TIMEOUT_S = 60
_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_NAMED = re.compile(r"CREATE\s+(?:TABLE\s+IF\s+NOT\s+EXISTS|OR\s+REPLACE\s+VIEW)\s+(\w+)|RENAME\s+TO\s+(\w+)",
                    re.IGNORECASE)


def mixopt_relations() -> list[str]:
    """Every table and view mixopt's migrations create (and `schema_version`)."""
    from mixopt.warehouse.schema import MIGRATIONS

    names = {"schema_version"}
    for _, _, sql in MIGRATIONS:
        names.update((a or b).lower() for a, b in _NAMED.findall(sql))
    return sorted(n for n in names if not n.endswith("__new"))


def check_role_name(name: str) -> str:
    if not _ROLE.match(name):
        raise StoreError(f"role name {name!r}: use lower-case letters, digits and _ (a letter or _ first, "
                         "at most 63 characters)")
    return name


def grant_reader(url: str, name: str, timeout_s: float = DEFAULT_READER_TIMEOUT_S) -> list[str]:
    """Create (or bring back to read-only) the login role `name` on the store at `url`, connected as
    an administrator; the store is created or migrated first. Returns the relations it may read."""
    from mixopt.warehouse.postgres import PgStore

    if not is_url(url):
        raise StoreError(f"{url}: grant-reader needs the shared store's postgresql:// URL")
    check_role_name(name)
    if timeout_s <= 0:
        raise StoreError(f"--timeout {timeout_s:g}: a reader's statement timeout must be positive")
    store = PgStore(url)  # migrated: every relation exists
    try:
        with store.transaction() as con:
            return _grant(con, name, timeout_s)
    except Exception as e:
        import psycopg

        if isinstance(e, psycopg.Error):
            raise StoreError(f"{redact(url)}: cannot grant reader {name} ({' '.join(str(e).split())})") from None
        raise
    finally:
        store.close()


def _grant(con: PgConnection, name: str, timeout_s: float) -> list[str]:
    raw = con.raw
    if raw.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone() is None:
        raw.execute(f'CREATE ROLE "{name}" LOGIN')
    raw.execute(f'ALTER ROLE "{name}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS')
    held = raw.execute("SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                       "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s", [name]).fetchall()
    for (role,) in held:  # every membership, the file and program roles with them
        raw.execute(f'REVOKE "{role}" FROM "{name}"')
    raw.execute(f"ALTER ROLE \"{name}\" SET default_transaction_read_only = on")
    raw.execute(f"ALTER ROLE \"{name}\" SET statement_timeout = '{int(timeout_s * 1000)}ms'")
    raw.execute(f"ALTER ROLE \"{name}\" SET idle_in_transaction_session_timeout = '{int(timeout_s * 1000)}ms'")
    database = raw.execute("SELECT current_database()").fetchone()[0]
    raw.execute(f'GRANT CONNECT ON DATABASE "{database}" TO "{name}"')
    raw.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{name}"')
    raw.execute(f'GRANT USAGE ON SCHEMA public TO "{name}"')
    present = {r[0] for r in raw.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v')").fetchall()}
    relations = [r for r in mixopt_relations() if r in present]
    raw.execute(f'GRANT SELECT ON {", ".join(relations)} TO "{name}"')
    return relations


def check_reader(con: PgConnection, url: str) -> None:
    """Refuse (a `StoreError`, one line) a connection whose role is a superuser or holds any of
    `ADMIN_ROLES`: `mixopt sql` runs users' queries, which should go through a reader role."""
    row = con.raw.execute(
        "SELECT current_user, rolsuper, " + ", ".join(f"pg_has_role(current_user, '{r}', 'MEMBER')"
                                                      for r in ADMIN_ROLES)
        + " FROM pg_roles WHERE rolname = current_user").fetchone()
    user, superuser, *held = row
    what = ["a superuser"] if superuser else [r for r, h in zip(ADMIN_ROLES, held) if h]
    if what:
        raise StoreError(f"refused: `mixopt sql` does not run as {user} ({', '.join(what)}); create a read-only "
                         f"role with `mixopt store grant-reader NAME -w {redact(url)}` and connect as it "
                         "(or pass --as-admin)")
