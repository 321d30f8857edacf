"""A fresh PostgreSQL database per test for the shared store (`pg_url` fixture), dropped afterwards.

The server is `MIXOPT_TEST_PG` (default: trust auth on 127.0.0.1:5432, database `test`); tests that
need it are skipped, with the reason, when none answers.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager

import pytest

BASE_URL = os.environ.get("MIXOPT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _admin():
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(BASE_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as e:
        pytest.skip(f"no PostgreSQL answers at {BASE_URL} (set MIXOPT_TEST_PG): {' '.join(str(e).split())[:200]}")


@contextmanager
def fresh_database(base_url: str = BASE_URL):
    """The URL of a new, empty database; dropped (with any connection left to it) afterwards."""
    admin = _admin()
    name = f"mixopt_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield base_url.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def pg_url():
    """A fresh database for one test (`fresh_database`)."""
    with fresh_database() as url:
        yield url
