"""The shared store's credentials: kept in the process, never in a config, a table, a file or a log.

`runtime.warehouse` is validated through `strip_secret`: a password in the URL
(`postgresql://user:pw@host/db`) and the `password`, `sslpassword` and `sslkey` query parameters are
taken out, so every copy of the config (its hash, `experiments.config_json`, the report, Prefect's
parameters, wandb) holds the clean URL. The full URL is remembered in this process (`_SECRETS`,
keyed by the clean URL) and in the `MIXOPT_STORE_CREDENTIALS` environment variable, which the
processes started from here (Dask's local workers) inherit; `connection_url` gives it back to the
code that connects (`postgres.py`). Nothing else ever sees it.

The recommended ways need none of this: PGPASSWORD, ~/.pgpass (or PGPASSFILE) and PGSERVICE are
read by libpq itself when the URL carries no password.
"""

from __future__ import annotations

import json
import os
import threading
from urllib.parse import unquote, urlsplit, urlunsplit

ENV = "MIXOPT_STORE_CREDENTIALS"
SECRET_PARAMS = frozenset({"password", "sslpassword", "sslkey"})
_SECRETS: dict[str, str] = {}
_lock = threading.Lock()


def _clean_netloc(netloc: str) -> tuple[str, bool]:
    """`user:pw@host:port` -> `user@host:port` (and whether a password was there)."""
    if "@" not in netloc:
        return netloc, False
    userinfo, hostport = netloc.rsplit("@", 1)
    if ":" not in userinfo:
        return netloc, False
    return userinfo.split(":", 1)[0] + "@" + hostport, True


def clean_query(query: str) -> str:
    """The query string without its secret parameters (the others kept exactly as written)."""
    return "&".join(p for p in query.split("&")
                    if p and unquote(p.split("=", 1)[0]).strip().lower() not in SECRET_PARAMS)


def split_secret(url: str) -> tuple[str, bool]:
    """The URL without its secrets, and whether it had any."""
    parts = urlsplit(url)
    netloc, had_password = _clean_netloc(parts.netloc)
    query = clean_query(parts.query)
    had_params = query != parts.query
    if not (had_password or had_params):
        return url, False
    return urlunsplit(parts._replace(netloc=netloc, query=query)), True


def strip_secret(url: str) -> str:
    """The URL without its secrets; a URL that had some is remembered for `connection_url`."""
    clean, had = split_secret(url)
    if had:
        with _lock:
            _SECRETS[clean] = url
            stored = _from_env()
            stored[clean] = url
            os.environ[ENV] = json.dumps(stored)
    return clean


def _from_env() -> dict[str, str]:
    try:
        stored = json.loads(os.environ.get(ENV) or "{}")
    except ValueError:
        return {}
    return stored if isinstance(stored, dict) else {}


def connection_url(url: str) -> str:
    """The URL to connect with: a clean URL's remembered credentials, else the URL as given (libpq
    then reads PGPASSWORD, ~/.pgpass or PGSERVICE)."""
    with _lock:
        full = _SECRETS.get(url)
    if full is None:
        full = _from_env().get(url)
    return full if isinstance(full, str) else url


def forget() -> None:
    """Drop every remembered credential (tests)."""
    with _lock:
        _SECRETS.clear()
        os.environ.pop(ENV, None)
