"""Secrets never stored or shown: a password planted in `runtime.warehouse` is taken out of the
config at its edge, so no byte mixopt writes (the store's tables, the out/ folder, wandb's offline
files, Prefect's database of parameters, logs and artifacts) and no line it prints holds it.

The end-to-end search needs PostgreSQL (`tests/pgstore.py`) and is skipped, with the reason, without one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mixopt.config import ExperimentConfig
from mixopt.warehouse import credentials
from mixopt.warehouse.credentials import connection_url, split_secret
from mixopt.warehouse.postgres import redact
from tests.helpers import tiny_config
from tests.pgstore import fresh_database

SECRET = "PlantedSecret-7f3a9c"


@pytest.fixture(autouse=True)
def _forget_credentials():
    credentials.forget()
    yield
    credentials.forget()


@pytest.mark.parametrize("url, clean", [
    ("postgresql://root:pw@127.0.0.1:5432/db", "postgresql://root@127.0.0.1:5432/db"),
    ("postgres://u:p%40ss:w@host/db?sslmode=require", "postgres://u@host/db?sslmode=require"),
    ("postgresql://u@host/db?password=pw&application_name=x", "postgresql://u@host/db?application_name=x"),
    ("postgresql://u@host/db?sslkey=/k.pem&sslpassword=pw&sslmode=verify-full",
     "postgresql://u@host/db?sslmode=verify-full"),
    ("postgresql://u@host/db?Password=pw", "postgresql://u@host/db"),
    ("postgresql://u@host/db?sslmode=require", "postgresql://u@host/db?sslmode=require"),  # nothing secret
    ("postgresql:///db", "postgresql:///db"),
])
def test_the_secret_parts_of_a_store_url_are_taken_out(url, clean):
    assert split_secret(url)[0] == clean
    cfg = ExperimentConfig.model_validate({"name": "x", "runtime": {"warehouse": url}})
    assert cfg.runtime.warehouse == clean
    assert connection_url(clean) == url  # the connection code gets it back, in this process only
    assert "pw" not in redact(url).split("@")[-1]  # messages: no secret parameter


def test_identity_and_every_copy_of_the_config_are_free_of_the_password():
    a = ExperimentConfig.model_validate({"name": "x", "runtime": {"warehouse": f"postgresql://r:{SECRET}@h/db"}})
    b = ExperimentConfig.model_validate({"name": "x", "runtime": {"warehouse": "postgresql://r:other@h/db"}})
    assert a.config_hash() == b.config_hash()
    assert SECRET not in a.model_dump_json() and SECRET not in json.dumps(a.model_dump(mode="json"))
    b.runtime.warehouse = f"postgresql://r:{SECRET}@h/db?sslpassword={SECRET}"  # assignment: validated too
    assert b.runtime.warehouse == "postgresql://r@h/db" and SECRET not in repr(b)
    assert ExperimentConfig.model_validate({"name": "x", "runtime": {"warehouse": "a:b@c.duckdb"}}
                                           ).runtime.warehouse == "a:b@c.duckdb"  # a file path: left alone


def _files(root: Path):
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            yield p


def _prefect_database() -> list[Path]:
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    url = PREFECT_API_DATABASE_CONNECTION_URL.value() or ""
    if "sqlite" not in url:
        return []
    db = Path(url.split("///", 1)[-1])
    return [p for p in db.parent.glob(db.name + "*") if p.is_file()]


def _store_dump(url: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()]
        assert "experiments" in tables and "runs" in tables
        return "\n".join(str(row) for t in tables for row in con.execute(f'SELECT * FROM "{t}"').fetchall())


@pytest.mark.slow
def test_a_planted_password_lands_nowhere(tmp_path, prefect_harness, capfd, caplog):
    from mixopt.flows.search import mixture_search
    from mixopt.warehouse import read_only_query

    with fresh_database() as url:
        scheme, rest = url.split("://", 1)
        user, host = rest.split("@", 1)
        planted = f"{scheme}://{user.split(':')[0]}:{SECRET}@{host}"  # trust auth: any password connects
        cfg = tiny_config(tmp_path, swarm={"n_proxies": 4}, final={"seeds": [0]},
                          runtime={"warehouse": planted, "wandb_mode": "offline"})
        assert SECRET not in cfg.runtime.warehouse
        result = mixture_search(config=cfg)
        assert result.swarm.ok == 4
        stored = read_only_query(cfg.runtime.warehouse, "select config_json from experiments")[1]
        assert stored and json.loads(stored[0][0])["runtime"]["warehouse"] == cfg.runtime.warehouse
        dump = _store_dump(url)
    assert dump.count(SECRET) == 0 and len(dump) > 1000
    out = Path(cfg.runtime.out_dir)
    written = list(_files(out))
    assert any("wandb" in p.parts for p in written), "wandb offline wrote nothing"
    assert any(p.name == "report.md" for p in written)
    prefect = _prefect_database()
    hits = [str(p) for p in written + prefect if SECRET.encode() in p.read_bytes()]
    assert hits == []
    printed = capfd.readouterr()
    assert SECRET not in printed.out + printed.err and SECRET not in caplog.text
    assert os.environ.get(credentials.ENV, "").count(SECRET) == 1  # only the process's own memory has it
