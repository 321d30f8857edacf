"""Reusable helpers for integration tests that run Prefect the way users do.

A real `prefect server start` on 127.0.0.1 (a free port, its own PREFECT_HOME, SQLite or a
PostgreSQL database), the `mixopt` process work pool, `prefect deploy --all` from the repo root and
a `prefect worker start` process. Every process logs to a file in the test's temporary folder so
that a failing test can print the tail (`PrefectServer.describe()`); telemetry is off everywhere.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
POOL = "mixopt"
PG_HOST, PG_PORT, PG_USER, PG_ADMIN_DB = "127.0.0.1", 5432, "postgres", "test"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, lines: int = 80) -> str:
    """The last `lines` lines of a log file ("" when there is none)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _prefect_bin() -> str:
    return str(Path(sys.executable).with_name("prefect"))


def stop_process(proc: subprocess.Popen | None, timeout: float = 20) -> None:
    """SIGTERM the process group this helper started (then SIGKILL if it lingers)."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class PrefectServer:
    """A running `prefect server start` and the processes started against it."""

    port: int
    home: Path
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen
    db_url: str | None = None
    others: list[tuple[subprocess.Popen, Path]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def cli(self, *args: str, timeout: float = 300, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
        """Run `prefect ARGS` against this server; raises with the output when it fails."""
        res = subprocess.run([_prefect_bin(), "--no-prompt", *args], cwd=cwd, env=self.env, text=True,
                             capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"`prefect {' '.join(args)}` exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
        return res

    def spawn(self, args: list[str], log_name: str, cwd: Path = REPO_ROOT,
              env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start a long-running `prefect ARGS` (e.g. a worker) logging to `<home>/../<log_name>`."""
        log = self.home.parent / log_name
        with open(log, "ab") as out:
            proc = subprocess.Popen([_prefect_bin(), *args], cwd=cwd, env={**self.env, **(env or {})}, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.others.append((proc, log))
        return proc

    def create_pool(self, name: str = POOL) -> None:
        """Create the `process` work pool (idempotent)."""
        self.cli("work-pool", "create", name, "--type", "process", "--overwrite")

    def deploy_all(self) -> str:
        """`prefect deploy --all` in the repo root, as a user would; returns its output."""
        return self.cli("deploy", "--all", timeout=600).stdout

    def start_worker(self, pool: str = POOL) -> subprocess.Popen:
        """A process worker polling `pool` every second (flow runs become subprocesses of it)."""
        return self.spawn(["worker", "start", "--pool", pool, "--type", "process",
                           "--name", f"it-worker-{self.port}", "--install-policy", "never"], "worker.log",
                          env={"PREFECT_WORKER_QUERY_SECONDS": "1"})

    def describe(self, lines: int = 60) -> str:
        """Tails of the server's and every other process's log, for a failure message."""
        parts = [f"--- prefect server log ({self.log}) ---", log_tail(self.log, lines)]
        for _, log in self.others:
            parts += [f"--- {log.name} ---", log_tail(log, lines)]
        return "\n".join(parts)

    def stop(self) -> None:
        for proc, _ in reversed(self.others):
            stop_process(proc)
        stop_process(self.proc)


def prefect_env(home: Path, api_url: str | None = None, db_url: str | None = None) -> dict[str, str]:
    """The environment of every Prefect process of a test: own home, no telemetry, quiet W&B."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_CLI_COLORS": "false",
        "PREFECT_CLI_WRAP_LINES": "false",
        "WANDB_MODE": "disabled",
        "WANDB_SILENT": "true",
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
    })
    if api_url:
        env["PREFECT_API_URL"] = api_url
    if db_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = db_url
    return env


def start_server(tmp: Path, db_url: str | None = None, timeout: float = 240) -> PrefectServer:
    """Start `prefect server start` on a free port of 127.0.0.1 and wait until its API is healthy."""
    home = tmp / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = prefect_env(home, f"http://127.0.0.1:{port}/api", db_url)
    log = tmp / "server.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [_prefect_bin(), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--analytics-off"],
            cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    server = PrefectServer(port=port, home=home, log=log, env=env, proc=proc, db_url=db_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}:\n{log_tail(log)}")
        try:
            if httpx.get(f"{server.api_url}/health", timeout=5).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(1)
    server.stop()
    raise RuntimeError(f"prefect server did not answer within {timeout:.0f} s:\n{log_tail(log)}")


# ---- PostgreSQL: a fresh database per test module -------------------------------------------------

def postgres_answers(host: str = PG_HOST, port: int = PG_PORT) -> bool:
    """True when something accepts TCP connections on the PostgreSQL port."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


async def _admin(sql: str) -> None:
    import asyncpg

    con = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB, timeout=10)
    try:
        await con.execute(sql)
    finally:
        await con.close()


def create_database() -> tuple[str, str]:
    """Create an empty database; returns (name, the server's asyncpg connection URL)."""
    name = f"mixopt_it_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return name, f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def count_rows(db_url: str, table: str) -> int:
    """Rows of a table in the database behind a server's connection URL (e.g. Prefect's `flow_run`)."""
    import asyncpg

    name = db_url.rsplit("/", 1)[1]

    async def count() -> int:
        con = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=name, timeout=10)
        try:
            return int(await con.fetchval(f'SELECT count(*) FROM "{table}"'))
        finally:
            await con.close()

    return asyncio.run(count())


def drop_database(name: str) -> None:
    """Drop a database made by `create_database` (closing leftover connections)."""
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# ---- the API from the test's process ------------------------------------------------------------

def flow_run_logs(api_url: str, flow_run_id, limit: int = 200) -> str:
    """The flow run's log lines as stored by the server (for failure messages)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=limit)
    return "\n".join(f"{log.timestamp:%H:%M:%S} {log.message}" for log in logs)


# ---- headless Chromium (Debian's package) -------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio"]


def chromium_binary() -> str | None:
    """Path of the installed Chromium (`apt-get install chromium`), or None."""
    import shutil

    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium(url: str, tmp: Path, *extra: str, budget_ms: int = 20_000, timeout: float = 240) -> str:
    """Load `url` in headless Chromium, giving the page's JS `budget_ms` of virtual time; returns stdout."""
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("chromium is not installed")
    profile = tmp / "chromium-profile"
    profile.mkdir(parents=True, exist_ok=True)
    cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *extra, url]
    env = {**os.environ, "HOME": str(tmp)}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL,
                         check=False)
    if res.returncode != 0:
        raise RuntimeError(f"chromium exited {res.returncode}:\n{res.stderr[-3000:]}")
    return res.stdout
