"""The warehouse's writer: `Warehouse` opens the store, migrates it and records results.

Stores. A DuckDB file (the default) or the shared PostgreSQL store (`runtime.warehouse:
postgresql://...`, `postgres.py`); the methods below are written once, in portable SQL, and
`transaction()/query()/frame()` run them on either. Readers never take the writer's lock: a
DuckDB writer publishes a read snapshot after commits (`snapshot.py`); PostgreSQL readers see
its own MVCC snapshot.

Write path (DuckDB file). DuckDB allows one writing process per file, so nothing but the flow's own
process writes here. Workers (threads, Dask workers, child processes) never open the file: they spool each
finished run as one JSON file (atomic rename) under `<out>/spool/`, and return it. The flow then
records it through `Warehouse`, whose writes are serialised by a lock inside the process and by
an exclusive file lock across processes (two `mixopt run` on one warehouse wait for each other).
(On the shared store, Dask workers also record their own results:
`tasks/swarm.py`.) Every record is one transaction and idempotent (keyed by run id), so a crash mid-write leaves the
previous state and re-ingesting the spool completes it.

Reads. The few lookups the flow's tasks need while writing are methods here; the report's and the
public API's reads are the functions of `reads.py`, which take a `Warehouse` or a read-only
handle (`readonly.py`) alike.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

import duckdb
import polars as pl

from mixopt.runspec import DomainShard, RunResult
from mixopt.warehouse.postgres import PgStore, is_url
from mixopt.warehouse.schema import migrate
from mixopt.warehouse.snapshot import Publisher, lock_path

_RUN_COLUMNS = ("run_id, experiment_id, role, label, mixture_id, seed, status, error, n_params, "
                "n_params_non_embedding, tokens, steps, wall_s, tokens_per_s, last_good_step, target_loss, "
                "code_version, created_at, size")


log = logging.getLogger(__name__)
RECONNECTS = 3  # shared store: a write or read whose connection drops is re-run this many times


def _reconnecting(method):
    """On the shared store, re-run a write (or read) whose connection dropped mid-way (the server
    restarted, an administrator ran pg_terminate_backend, the network broke): every write here is one
    idempotent transaction keyed by its ids (DELETE + INSERT of a run, ON CONFLICT for the rest), so
    re-running it after a rollback, or after a COMMIT whose answer was lost, stores it exactly once."""
    @functools.wraps(method)
    def wrapper(self: "Warehouse", *args: Any, **kwargs: Any) -> Any:
        for attempt in range(RECONNECTS + 1):
            try:
                return method(self, *args, **kwargs)
            except Exception as e:
                if self._store is None or attempt == RECONNECTS or not self._store.lost(e):
                    raise
                log.warning("%s: connection to the store lost (%s); reconnecting (%d/%d)", method.__name__,
                            " ".join(str(e).split()), attempt + 1, RECONNECTS)
                time.sleep(0.2 * 2 ** attempt)
    return wrapper


def _jsonable(o: Any) -> Any:
    """numpy arrays and scalars in JSON columns."""
    return o.tolist() if hasattr(o, "tolist") else str(o)


def _insert_mixture(con: duckdb.DuckDBPyConnection, mixture_id: str, experiment_id: str, kind: str,
                    weights: Sequence[float], link: bool = True) -> None:
    """A mixture is its weights (`mixtures`, keyed by the content address, first experiment kept
    as its origin); which experiments use it, and as what, is `experiment_mixtures` (`link`)."""
    now = _now()
    con.execute("INSERT INTO mixtures (mixture_id, experiment_id, kind, weights, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [mixture_id, experiment_id, kind, [float(w) for w in weights], now])
    if not link:
        return
    con.execute("INSERT INTO experiment_mixtures (experiment_id, mixture_id, kind, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [experiment_id, mixture_id, kind, now])


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Warehouse:
    """The writer of one warehouse: a DuckDB file, or the shared PostgreSQL store when `path` is a
    `postgresql://` URL (`postgres.py`). Use as a context manager or call `close()`."""

    def __init__(self, path: str | Path):
        self._lock = threading.RLock()
        self._lock_file = self._store = self._publisher = None
        if is_url(path):
            self.path = str(path)
            self._store = PgStore(self.path)
            self._lock_file = True  # open (see `writer()`)
            return
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(lock_path(self.path), "a+")
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        try:
            self.con = duckdb.connect(str(self.path))
            migrate(self.con, str(self.path))
            self._publisher = Publisher(self.path, self.con, self._lock)  # readers' snapshot (snapshot.py)
        except Exception:
            self._release_file_lock()
            raise

    def _release_file_lock(self) -> None:
        if self._lock_file is not None and self._store is None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
        self._lock_file = None

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None
        with self._lock:
            if self._store is not None:
                self._store.close()
            elif self._lock_file is not None:
                self.con.close()
            self._release_file_lock()

    def __enter__(self) -> "Warehouse":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One all-or-nothing write; concurrent callers in this process take turns (on the shared
        store, so do writers in every process). `con.execute(sql, params)` / `con.executemany`."""
        with self._lock:
            if self._store is not None:
                with self._store.transaction() as con:
                    yield con
                return
            self.con.execute("BEGIN TRANSACTION")
            try:
                yield self.con
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            self.con.execute("COMMIT")
            self._publisher.committed()

    @_reconnecting
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of one statement as dicts (the tasks' lookups; tests use it too)."""
        with self._lock:
            if self._store is not None:
                return self._store.query(sql, params)
            cur = self.con.execute(sql, list(params))
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row)) for row in cur.fetchall()]

    @_reconnecting
    def frame(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        """The result of one read as a polars DataFrame (what `reads.py` builds on)."""
        with self._lock:
            if self._store is not None:
                return self._store.frame(sql, params)
            return self.con.sql(sql, params=list(params) or None).pl()

    # ---------------------------------------------------------------- experiments and corpus
    @_reconnecting
    def record_experiment(
        self, experiment_id: str, name: str, config_hash: str, fingerprint: str, config: dict,
        domains: list[DomainShard], prior: Sequence[float],
    ) -> None:
        with self.transaction() as con:
            con.execute(
                "INSERT INTO experiments (experiment_id, name, config_hash, corpus_fingerprint, config_json, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [experiment_id, name, config_hash, fingerprint, json.dumps(config), _now()],
            )
            for i, (d, p) in enumerate(zip(domains, prior)):
                con.execute(
                    "INSERT OR REPLACE INTO domains (experiment_id, domain, idx, train_tokens, val_tokens, "
                    "train_docs, val_docs, prior, train_sha256, val_sha256, text_sha256) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [experiment_id, d.name, i, d.train_tokens, d.val_tokens, d.train_docs, d.val_docs,
                     float(p), d.train_sha256, d.val_sha256, d.text_sha256],
                )

    @_reconnecting
    def record_mixture(self, mixture_id: str, experiment_id: str, kind: str, weights: Sequence[float],
                       size: str | None = None, link: bool = True) -> None:
        """Store a mixture; `size` (multi-fidelity design) is the proxy size its design run trains at;
        `link=False` stores the weights without saying the experiment uses the mixture as `kind`."""
        with self.transaction() as con:
            _insert_mixture(con, mixture_id, experiment_id, kind, weights, link)
            if size is not None:
                con.execute("INSERT INTO design_sizes (experiment_id, mixture_id, size) VALUES (?, ?, ?) "
                            "ON CONFLICT DO NOTHING",
                            [experiment_id, mixture_id, size])

    def design_sizes(self, experiment_id: str) -> dict[str, str]:
        """Proxy size chosen for each design mixture of a multi-fidelity design (absent: the target size)."""
        rows = self.query("SELECT mixture_id, size FROM design_sizes WHERE experiment_id = ?", [experiment_id])
        return {r["mixture_id"]: r["size"] for r in rows}

    def mixtures(self, experiment_id: str, kind: str) -> list[tuple[str, list[float]]]:
        rows = self.query(
            "SELECT e.mixture_id, m.weights FROM experiment_mixtures e JOIN mixtures m USING (mixture_id) "
            "WHERE e.experiment_id = ? AND e.kind = ? ORDER BY e.created_at, e.mixture_id",
            [experiment_id, kind],
        )
        return [(r["mixture_id"], list(r["weights"])) for r in rows]

    # ---------------------------------------------------------------- runs
    @_reconnecting
    def record_run(
        self, result: RunResult, *, experiment_id: str, role: str, label: str, mixture_id: str,
        seed: int, target_loss: float | None, code_version: str, size: str | None = None,
        eval_kinds: dict[str, str] | None = None, group_losses: dict[str, float] | None = None,
        weights: dict[str, float] | None = None, heldout_targets: Sequence[float | None] | None = None,
    ) -> None:
        """Store one run with its curve and per-domain losses, replacing an earlier attempt.
        `size`: a proxy's size ("target" or "low"); None for final runs. `eval_kinds`: the kind of each
        measured loss ("domain" or "eval"; default "domain"); `group_losses`: rows of kind "group".
        `weights`: the requested mixture (domain -> weight), stored next to the achieved one;
        `heldout_targets`: the target at each point of `result.heldout_curve`."""
        r = result
        with self.transaction() as con:
            for table in ("runs", "metrics", "evals", "mixture_trajectory", "aioli_params", "heldout_curves",
                          "heldout_targets", "achieved_mixture", "gradient_cosines"):
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [r.run_id])
            con.execute(
                f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join('?' * 19)})",
                [r.run_id, experiment_id, role, label, mixture_id, seed, r.status, r.error, r.n_params,
                 r.n_params_non_embedding, r.tokens, r.steps, r.wall_s, r.tokens_per_s, r.last_good_step,
                 target_loss, code_version, _now(), size],
            )
            if r.curve:
                con.executemany(
                    "INSERT INTO metrics (run_id, step, tokens, loss, lr) VALUES (?, ?, ?, ?, ?)",
                    [[r.run_id, int(s), int(t), float(l), float(lr)] for s, t, l, lr in r.curve],
                )
            kinds = eval_kinds or {}
            rows = [[r.run_id, d, float(v), kinds.get(d, "domain")] for d, v in r.val_losses.items()]
            rows += [[r.run_id, g, float(v), "group"] for g, v in (group_losses or {}).items()]
            if rows:
                con.executemany("INSERT INTO evals (run_id, domain, loss, kind) VALUES (?, ?, ?, ?)", rows)
            self._record_trajectory(con, r)
            self._record_heldout(con, r, weights, heldout_targets)

    @staticmethod
    def _record_trajectory(con: duckdb.DuckDBPyConnection, r: RunResult) -> None:
        """Online mixture updates: entries {"round", "step", "weights": {domain: w}, "A": k x k | None}."""
        weights, params = [], []
        for e in r.trajectory:
            names = list(e["weights"])
            weights += [[r.run_id, e["round"], e["step"], d, float(w)] for d, w in e["weights"].items()]
            for i, row in enumerate(e.get("A") or []):
                params += [[r.run_id, e["round"], e["step"], names[i], names[j], float(v)] for j, v in enumerate(row)]
        if weights:
            con.executemany("INSERT INTO mixture_trajectory (run_id, round, step, domain, weight) "
                            "VALUES (?, ?, ?, ?, ?)", weights)
        if params:
            con.executemany("INSERT INTO aioli_params (run_id, round, step, row_domain, col_domain, value) "
                            "VALUES (?, ?, ?, ?, ?, ?)", params)

    @staticmethod
    def _record_heldout(con: duckdb.DuckDBPyConnection, r: RunResult, weights: dict[str, float] | None,
                        targets: Sequence[float | None] | None) -> None:
        """Held-out curve (per domain, and the target), achieved mixture and gradient cosines."""
        rows = [[r.run_id, int(s), int(t), d, float(v)] for s, t, losses in r.heldout_curve for d, v in losses.items()]
        if rows:
            con.executemany("INSERT INTO heldout_curves (run_id, step, tokens, domain, loss) VALUES (?, ?, ?, ?, ?)",
                            rows)
        rows = [[r.run_id, int(p[0]), int(p[1]), float(t)] for p, t in zip(r.heldout_curve, targets or [])
                if t is not None]
        if rows:
            con.executemany("INSERT INTO heldout_targets (run_id, step, tokens, target_loss) VALUES (?, ?, ?, ?)", rows)
        total = sum(r.domain_tokens.values())
        names = list(weights or {}) + [d for d in r.domain_tokens if d not in (weights or {})]
        rows = [[r.run_id, d, (weights or {}).get(d), int(r.domain_tokens.get(d, 0)),
                 r.domain_tokens.get(d, 0) / total if total else None] for d in names]
        if rows and (total or weights):
            con.executemany("INSERT INTO achieved_mixture (run_id, domain, requested, tokens, fraction) "
                            "VALUES (?, ?, ?, ?, ?)", rows)
        rows = [[r.run_id, int(e["step"]), a, b, float(v)] for e in r.grad_cosines
                for a, row in zip(e["domains"], e["matrix"]) for b, v in zip(e["domains"], row)]
        if rows:
            con.executemany("INSERT INTO gradient_cosines (run_id, step, row_domain, col_domain, value) "
                            "VALUES (?, ?, ?, ?, ?)", rows)

    @_reconnecting
    def record_interaction(self, experiment_id: str, method: str, domains: Sequence[str], matrix: Any,
                           details: dict[str, Any] | None = None) -> None:
        """One domains x domains interaction matrix of the experiment (replacing the method's earlier one):
        row i, column j: how training on domain j changes the held-out loss of domain i (positive: helps)."""
        with self.transaction() as con:
            con.execute("DELETE FROM interactions WHERE experiment_id = ? AND method = ?", [experiment_id, method])
            now = _now()
            con.executemany(
                "INSERT INTO interactions (experiment_id, method, row_domain, col_domain, value, details, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [[experiment_id, method, a, b, float(matrix[i][j]), json.dumps(details or {}, default=_jsonable), now]
                 for i, a in enumerate(domains) for j, b in enumerate(domains)])

    def trained_mixture_ids(self, experiment_id: str, label: str = "design") -> set[str]:
        """Mixtures with at least one proxy run of `label` recorded, whatever its outcome."""
        rows = self.query("SELECT DISTINCT mixture_id FROM runs WHERE experiment_id = ? AND role = 'proxy' "
                          "AND label = ?", [experiment_id, label])
        return {r["mixture_id"] for r in rows}

    def run_status(self, run_ids: Sequence[str]) -> dict[str, str]:
        if not run_ids:
            return {}
        rows = self.query("SELECT run_id, status FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
                          [list(run_ids)])
        return {r["run_id"]: r["status"] for r in rows}

    def proxy_observations(self, experiment_id: str) -> list[dict[str, Any]]:
        """Finished (status ok) proxy runs with a finite target: weights, target loss and size
        ("target", "low" or a ladder rung), one per mixture and size (seed repeats, label `seed_repeat`,
        left out), ordered by mixture content (so CV folds follow the data, not run ids or code versions)."""
        return self.query(
            """SELECT r.run_id, r.target_loss, m.weights, coalesce(r.size, 'target') AS size
               FROM proxy_runs r JOIN mixtures m USING (mixture_id)
               WHERE r.experiment_id = ? AND r.status = 'ok' AND r.target_loss IS NOT NULL
               AND isfinite(r.target_loss) AND r.label IS DISTINCT FROM 'seed_repeat'
               ORDER BY r.mixture_id, size""",
            [experiment_id],
        )

    def training_table(self, experiment_id: str) -> list[dict[str, Any]]:
        """What regressors fit: the target-size rows of `proxy_observations` (sizes are never mixed)."""
        return [r for r in self.proxy_observations(experiment_id) if r["size"] == "target"]

    # ---------------------------------------------------------------- fits and proposals
    @_reconnecting
    def record_fit(self, fit_id: str, experiment_id: str, report: dict[str, Any], chosen: bool,
                   predictions: Sequence[tuple[str, float, float]]) -> None:
        with self.transaction() as con:
            con.execute("DELETE FROM fit_predictions WHERE fit_id = ?", [fit_id])
            con.execute(
                "INSERT OR REPLACE INTO fits (fit_id, experiment_id, regressor, chosen, n_train, folds, cv_spearman, "
                "cv_kendall, cv_r2, cv_rmse, created_at, cv_repeats, cv_spearman_sd, cv_rmse_sd) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [fit_id, experiment_id, report["name"], chosen, report["n"], report["folds"],
                 report["spearman"], report["kendall"], report["r2"], report["rmse"], _now(),
                 report.get("repeats", 1), report.get("spearman_sd"), report.get("rmse_sd")],
            )
            if predictions:
                con.executemany(
                    "INSERT INTO fit_predictions (fit_id, run_id, actual, predicted) VALUES (?, ?, ?, ?)",
                    [[fit_id, rid, float(a), float(p)] for rid, a, p in predictions],
                )

    @_reconnecting
    def record_proposal(self, proposal_id: str, experiment_id: str, fit_id: str, method: str, regressor: str,
                        mixture_id: str, weights: Sequence[float], predicted: float,
                        caps_active: Sequence[bool], details: dict[str, Any]) -> None:
        with self.transaction() as con:
            _insert_mixture(con, mixture_id, experiment_id, "proposal", weights)
            con.execute(
                "INSERT OR REPLACE INTO proposals (proposal_id, experiment_id, fit_id, method, regressor, mixture_id, "
                "predicted_target, caps_active, details, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [proposal_id, experiment_id, fit_id, method, regressor, mixture_id, float(predicted),
                 [bool(c) for c in caps_active], json.dumps(details, default=_jsonable), _now()],
            )


_writers: dict[str, Warehouse] = {}
_writers_lock = threading.Lock()


def writer(path: str | Path) -> Warehouse:
    """The process's single writer for `path` (opened on first use, shared by every task thread)."""
    key = _key(path)
    with _writers_lock:
        wh = _writers.get(key)
        if wh is None or wh._lock_file is None:
            wh = _writers[key] = Warehouse(path)
        return wh


def close_writer(path: str | Path) -> None:
    """Close the process's writer for `path` (and its connection, or its lock on the file)."""
    key = _key(path)
    with _writers_lock:
        wh = _writers.pop(key, None)
    if wh is not None:
        wh.close()


def _key(path: str | Path) -> str:
    return str(path) if is_url(path) else str(Path(path).resolve())
