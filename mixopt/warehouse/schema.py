"""The warehouse's schema: ordered migrations, each applied once and recorded in `schema_version`.

A warehouse created before `schema_version` existed holds the tables of migration 1 (perhaps
without later columns); migration 1 is written so that it brings such a file to its state, and
the version table then records it, so nothing here runs again on the next open.
"""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb

from mixopt.errors import MixoptError

# Migration 1: the schema as it stood before versioning (idempotent, so an old file passes it too).
_BASE = """
CREATE TABLE IF NOT EXISTS experiments (
    experiment_id VARCHAR PRIMARY KEY, name VARCHAR, config_hash VARCHAR, corpus_fingerprint VARCHAR,
    config_json JSON, created_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS domains (
    experiment_id VARCHAR, domain VARCHAR, idx INTEGER, train_tokens BIGINT, val_tokens BIGINT,
    train_docs BIGINT, val_docs BIGINT, prior DOUBLE, train_sha256 VARCHAR, val_sha256 VARCHAR,
    PRIMARY KEY (experiment_id, domain));
CREATE TABLE IF NOT EXISTS mixtures (
    mixture_id VARCHAR PRIMARY KEY, experiment_id VARCHAR, kind VARCHAR, weights DOUBLE[],
    created_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS experiment_mixtures (
    experiment_id VARCHAR, mixture_id VARCHAR, kind VARCHAR, created_at TIMESTAMPTZ,
    PRIMARY KEY (experiment_id, mixture_id, kind));
INSERT INTO experiment_mixtures (experiment_id, mixture_id, kind, created_at)
    SELECT experiment_id, mixture_id, kind, created_at FROM mixtures ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, experiment_id VARCHAR, role VARCHAR, label VARCHAR, mixture_id VARCHAR,
    seed INTEGER, status VARCHAR, error VARCHAR, n_params BIGINT, n_params_non_embedding BIGINT,
    tokens BIGINT, steps INTEGER, wall_s DOUBLE, tokens_per_s DOUBLE, last_good_step INTEGER,
    target_loss DOUBLE, code_version VARCHAR, created_at TIMESTAMPTZ, size VARCHAR);
ALTER TABLE runs ADD COLUMN IF NOT EXISTS size VARCHAR;
CREATE TABLE IF NOT EXISTS design_sizes (
    experiment_id VARCHAR, mixture_id VARCHAR, size VARCHAR, PRIMARY KEY (experiment_id, mixture_id));
CREATE TABLE IF NOT EXISTS metrics (
    run_id VARCHAR, step INTEGER, tokens BIGINT, loss DOUBLE, lr DOUBLE);
CREATE TABLE IF NOT EXISTS evals (
    run_id VARCHAR, domain VARCHAR, loss DOUBLE, PRIMARY KEY (run_id, domain));
CREATE TABLE IF NOT EXISTS mixture_trajectory (
    run_id VARCHAR, round INTEGER, step INTEGER, domain VARCHAR, weight DOUBLE);
CREATE TABLE IF NOT EXISTS aioli_params (
    run_id VARCHAR, round INTEGER, step INTEGER, row_domain VARCHAR, col_domain VARCHAR, value DOUBLE);
CREATE TABLE IF NOT EXISTS fits (
    fit_id VARCHAR PRIMARY KEY, experiment_id VARCHAR, regressor VARCHAR, chosen BOOLEAN,
    n_train INTEGER, folds INTEGER, cv_spearman DOUBLE, cv_kendall DOUBLE, cv_r2 DOUBLE,
    cv_rmse DOUBLE, created_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS fit_predictions (
    fit_id VARCHAR, run_id VARCHAR, actual DOUBLE, predicted DOUBLE);
CREATE TABLE IF NOT EXISTS proposals (
    proposal_id VARCHAR PRIMARY KEY, experiment_id VARCHAR, fit_id VARCHAR, method VARCHAR,
    regressor VARCHAR, mixture_id VARCHAR, predicted_target DOUBLE, caps_active BOOLEAN[],
    details JSON, created_at TIMESTAMPTZ);
CREATE OR REPLACE VIEW proxy_runs AS SELECT * FROM runs WHERE role = 'proxy';
CREATE OR REPLACE VIEW final_runs AS SELECT * FROM runs WHERE role = 'final';
CREATE OR REPLACE VIEW mixture_weights AS
    SELECT e.mixture_id, e.experiment_id, e.kind, d.domain, m.weights[d.idx + 1] AS weight
    FROM experiment_mixtures e JOIN mixtures m USING (mixture_id) JOIN domains d ON d.experiment_id = e.experiment_id;
"""


def _with_primary_key(table: str, columns: str, key: str) -> str:
    """Rebuild `table` with a primary key on `key`, keeping the first row of any duplicate key."""
    names = ", ".join(c.split()[0] for c in columns.split(", "))
    return f"""
CREATE TABLE {table}__new ({columns}, PRIMARY KEY ({key}));
INSERT INTO {table}__new ({names}) SELECT {names} FROM {table}
    QUALIFY row_number() OVER (PARTITION BY {key}) = 1;
DROP TABLE {table};
ALTER TABLE {table}__new RENAME TO {table};
"""


# Migration 2: every table gets a primary key (the per-run child tables had none).
_PRIMARY_KEYS = "".join([
    _with_primary_key("metrics", "run_id VARCHAR, step INTEGER, tokens BIGINT, loss DOUBLE, lr DOUBLE",
                      "run_id, step"),
    _with_primary_key("mixture_trajectory",
                      "run_id VARCHAR, round INTEGER, step INTEGER, domain VARCHAR, weight DOUBLE",
                      "run_id, round, step, domain"),
    _with_primary_key("aioli_params", "run_id VARCHAR, round INTEGER, step INTEGER, row_domain VARCHAR, "
                      "col_domain VARCHAR, value DOUBLE", "run_id, round, step, row_domain, col_domain"),
    _with_primary_key("fit_predictions", "fit_id VARCHAR, run_id VARCHAR, actual DOUBLE, predicted DOUBLE",
                      "fit_id, run_id"),
])

# Migration 6: hierarchical domains (`source:topic`): mixture_weights shows both levels (columns added
# at the end, so PostgreSQL's CREATE OR REPLACE VIEW accepts it), and one row per source.
_HIERARCHY_VIEWS = """
CREATE OR REPLACE VIEW mixture_weights AS
    SELECT mixture_id, experiment_id, kind, domain, weight, source, topic, source_weight,
           CASE WHEN source_weight > 0 THEN weight / source_weight ELSE 0.0 END AS topic_weight
    FROM (SELECT b.mixture_id, b.experiment_id, b.kind, b.domain, b.weight, b.source, b.topic,
                 sum(b.weight) OVER (PARTITION BY b.mixture_id, b.experiment_id, b.kind, b.source) AS source_weight
          FROM (SELECT e.mixture_id, e.experiment_id, e.kind, d.domain, m.weights[d.idx + 1] AS weight,
                       CASE WHEN strpos(d.domain, ':') > 0 THEN split_part(d.domain, ':', 1) ELSE d.domain END
                           AS source,
                       CASE WHEN strpos(d.domain, ':') > 0 THEN split_part(d.domain, ':', 2) ELSE d.domain END
                           AS topic
                FROM experiment_mixtures e JOIN mixtures m USING (mixture_id)
                JOIN domains d ON d.experiment_id = e.experiment_id) b) w;
CREATE OR REPLACE VIEW mixture_source_weights AS
    SELECT mixture_id, experiment_id, kind, source, sum(weight) AS weight, count(*) AS topics
    FROM mixture_weights GROUP BY mixture_id, experiment_id, kind, source;
"""

# Migration 5 (viz): what each run measured while it trained, what it actually drew, and the
# experiment's domain-interaction matrices (`method`: "swarm" or "gradient"; one row per i, j).
_VIZ = """
CREATE TABLE IF NOT EXISTS heldout_curves (
    run_id VARCHAR, step INTEGER, tokens BIGINT, domain VARCHAR, loss DOUBLE, PRIMARY KEY (run_id, step, domain));
CREATE TABLE IF NOT EXISTS heldout_targets (
    run_id VARCHAR, step INTEGER, tokens BIGINT, target_loss DOUBLE, PRIMARY KEY (run_id, step));
CREATE TABLE IF NOT EXISTS achieved_mixture (
    run_id VARCHAR, domain VARCHAR, requested DOUBLE, tokens BIGINT, fraction DOUBLE, PRIMARY KEY (run_id, domain));
CREATE TABLE IF NOT EXISTS gradient_cosines (
    run_id VARCHAR, step INTEGER, row_domain VARCHAR, col_domain VARCHAR, value DOUBLE,
    PRIMARY KEY (run_id, step, row_domain, col_domain));
CREATE TABLE IF NOT EXISTS interactions (
    experiment_id VARCHAR, method VARCHAR, row_domain VARCHAR, col_domain VARCHAR, value DOUBLE, details JSON,
    created_at TIMESTAMPTZ, PRIMARY KEY (experiment_id, method, row_domain, col_domain));
"""

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "base schema (as before versioning) and the experiment_mixtures backfill", _BASE),
    (2, "primary keys on metrics, mixture_trajectory, aioli_params and fit_predictions", _PRIMARY_KEYS),
    (3, "repeated cross-validation (the spread of each score over the repeats); domains' text checksums",
     "ALTER TABLE fits ADD COLUMN IF NOT EXISTS cv_repeats INTEGER;"
     "ALTER TABLE fits ADD COLUMN IF NOT EXISTS cv_spearman_sd DOUBLE;"
     "ALTER TABLE fits ADD COLUMN IF NOT EXISTS cv_rmse_sd DOUBLE;"
     "ALTER TABLE domains ADD COLUMN IF NOT EXISTS text_sha256 VARCHAR;"),
    (4, "evals.kind (domain, eval set or group: eval-only targets) and the run_evals view",
     "ALTER TABLE evals ADD COLUMN IF NOT EXISTS kind VARCHAR;"
     "CREATE OR REPLACE VIEW run_evals AS SELECT e.run_id, r.experiment_id, r.role, r.label, r.seed, r.size, "
     "e.domain AS name, coalesce(e.kind, 'domain') AS kind, e.loss FROM evals e JOIN runs r ON r.run_id = e.run_id;"),
    (5, "held-out curves during training, achieved mixtures, gradient cosines and domain interactions", _VIZ),
    (6, "hierarchical domains: mixture_weights with source and topic levels; mixture_source_weights",
     _HIERARCHY_VIEWS),
]

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMPTZ)"""


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest migration applied to this file (0: none, or a file from before versioning)."""
    con.execute(_VERSION_TABLE)
    rows = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()  # fetch it all:
    return int(rows[0][0])  # DuckDB refuses other work on a connection with an unfinished result


class SchemaTooNew(MixoptError, RuntimeError):
    """The warehouse was migrated by a newer mixopt than this one: writing it could break it."""


def check_not_newer(current: int, where: str) -> None:
    """Refuse a warehouse whose schema is newer than this code's migrations (one line, both versions)."""
    latest = MIGRATIONS[-1][0]
    if current > latest:
        raise SchemaTooNew(f"{where}: the warehouse's schema is version {current}, newer than this mixopt's "
                           f"version {latest}; upgrade mixopt to write to it (`mixopt sql` can still read it)")


def migrate(con: duckdb.DuckDBPyConnection, where: str = "the warehouse") -> list[int]:
    """Apply the migrations this file has not had yet, in order, each in its own transaction;
    returns the versions applied now (none on an up-to-date file). A file migrated by a newer
    mixopt is refused (`SchemaTooNew`)."""
    current = schema_version(con)
    check_not_newer(current, where)
    applied = []
    for version, description, sql in MIGRATIONS:
        if version <= current:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                        [version, description, datetime.now(timezone.utc)])
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        applied.append(version)
    return applied
