"""Every read of the report and of the public API, by name; each returns a polars DataFrame.

`db` is a `Warehouse` (the flow's writer) or a `ReadOnlyWarehouse` (`mixopt.open`): anything
with `frame(sql, params) -> polars.DataFrame`. The rule for which proxy runs a fit sees lives in
`Warehouse.proxy_observations`; the report's top mixtures apply the same rule here.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, Sequence

import polars as pl


class Frames(Protocol):
    def frame(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame: ...


def _where_experiment(experiment_id: str | None, column: str = "experiment_id") -> tuple[str, list]:
    return (f" WHERE {column} = ?", [experiment_id]) if experiment_id is not None else ("", [])


# ---------------------------------------------------------------- public API tables
def runs(db: Frames, experiment_id: str | None = None) -> pl.DataFrame:
    """Every training run (proxies and final runs), oldest first."""
    where, params = _where_experiment(experiment_id)
    return db.frame(f"SELECT * FROM runs{where} ORDER BY created_at, run_id", params)


def fits(db: Frames, experiment_id: str | None = None) -> pl.DataFrame:
    """Every regressor fit with its cross-validation scores, oldest first."""
    where, params = _where_experiment(experiment_id)
    return db.frame(f"SELECT * FROM fits{where} ORDER BY created_at, fit_id", params)


def proposals(db: Frames, experiment_id: str | None = None) -> pl.DataFrame:
    """Every proposal with its mixture's weights, oldest first."""
    where, params = _where_experiment(experiment_id, "p.experiment_id")
    return db.frame("SELECT p.*, m.weights FROM proposals p JOIN mixtures m USING (mixture_id)"
                    f"{where} ORDER BY p.created_at, p.proposal_id", params)


# ---------------------------------------------------------------- experiments and domains
def latest_experiment(db: Frames) -> str | None:
    """The id of the experiment recorded last, or None."""
    df = db.frame("SELECT experiment_id FROM experiments ORDER BY created_at DESC LIMIT 1")
    return df["experiment_id"][0] if df.height else None


def experiment(db: Frames, experiment_id: str) -> pl.DataFrame:
    """The experiment's row (empty when it is not recorded)."""
    return db.frame("SELECT * FROM experiments WHERE experiment_id = ?", [experiment_id])


def experiment_config(db: Frames, experiment_id: str) -> dict | None:
    """The config stored with the experiment (as first recorded), or None."""
    df = db.frame("SELECT config_json FROM experiments WHERE experiment_id = ?", [experiment_id])
    return json.loads(df["config_json"][0]) if df.height and df["config_json"][0] is not None else None


def domains(db: Frames, experiment_id: str) -> pl.DataFrame:
    """Domain, train and validation tokens and prior weight, in the experiment's domain order."""
    return db.frame("SELECT domain, train_tokens, val_tokens, prior, text_sha256 FROM domains WHERE experiment_id = ? "
                    "ORDER BY idx",
                    [experiment_id])


def domain_checksums(db: Frames, experiment_id: str) -> pl.DataFrame:
    """The token shards' checksums recorded for the experiment's domains."""
    return db.frame("SELECT domain, train_sha256, val_sha256 FROM domains WHERE experiment_id = ?", [experiment_id])


# ---------------------------------------------------------------- the swarm
def proxy_status_counts(db: Frames, experiment_id: str) -> pl.DataFrame:
    return db.frame("SELECT status, count(*) AS n FROM proxy_runs WHERE experiment_id = ? GROUP BY status "
                    "ORDER BY status", [experiment_id])


def excluded_proxies(db: Frames, experiment_id: str) -> pl.DataFrame:
    """Proxy runs that did not finish ok (failed or diverged): left out of every fit."""
    return db.frame("SELECT run_id, status, last_good_step, error FROM proxy_runs WHERE experiment_id = ? "
                    "AND status <> 'ok' ORDER BY run_id", [experiment_id])


def proxy_speeds(db: Frames, experiment_id: str) -> pl.DataFrame:
    """Per proxy size: finished runs, training time, mean tokens/s, parameters and tokens."""
    return db.frame(
        "SELECT coalesce(size, 'target') AS size, count(*) AS n, sum(wall_s) AS wall_s, "
        "avg(tokens_per_s) AS tokens_per_s, any_value(n_params) AS n_params, any_value(tokens) AS tokens "
        "FROM proxy_runs WHERE experiment_id = ? AND status = 'ok' GROUP BY 1 ORDER BY size DESC", [experiment_id])


def finished_proxies(db: Frames, experiment_id: str) -> pl.DataFrame:
    """Every proxy run with status ok and a finite target, all sizes and labels (the trust checks)."""
    return db.frame(
        """SELECT mixture_id, coalesce(size, 'target') AS size, label, target_loss, n_params, tokens
           FROM proxy_runs WHERE experiment_id = ? AND status = 'ok' AND target_loss IS NOT NULL
           AND isfinite(target_loss) ORDER BY run_id""", [experiment_id])


def top_proxies(db: Frames, experiment_id: str, fit_id: str | None, limit: int = 10) -> pl.DataFrame:
    """The best target-size proxies (one seed each): measured target, `fit_id`'s out-of-fold
    prediction and the weights."""
    return db.frame(
        """SELECT r.run_id, r.target_loss AS measured, fp.predicted AS predicted_cv, m.weights
           FROM proxy_runs r JOIN mixtures m USING (mixture_id)
           LEFT JOIN fit_predictions fp ON fp.run_id = r.run_id AND fp.fit_id = ?
           WHERE r.experiment_id = ? AND r.status = 'ok' AND coalesce(r.size, 'target') = 'target'
           AND r.label IS DISTINCT FROM 'seed_repeat' ORDER BY r.target_loss LIMIT ?""",
        [fit_id or "", experiment_id, limit])


# ---------------------------------------------------------------- fits and proposals
def latest_fits(db: Frames, experiment_id: str) -> pl.DataFrame:
    """Each regressor's latest fit, best CV Spearman first."""
    return db.frame(
        "SELECT fit_id, regressor, chosen, n_train, folds, cv_repeats, cv_spearman, cv_spearman_sd, cv_kendall, "
        "cv_r2, cv_rmse FROM fits "
        "WHERE experiment_id = ? AND created_at = (SELECT max(created_at) FROM fits f2 WHERE "
        "f2.experiment_id = fits.experiment_id AND f2.regressor = fits.regressor) ORDER BY cv_spearman DESC NULLS LAST",
        [experiment_id])


def fit_predictions(db: Frames, fit_id: str) -> pl.DataFrame:
    """A fit's out-of-fold predictions against the measured targets."""
    return db.frame("SELECT actual, predicted FROM fit_predictions WHERE fit_id = ?", [fit_id])


def latest_proposal(db: Frames, experiment_id: str) -> pl.DataFrame:
    """The experiment's latest proposal with its weights (empty when there is none)."""
    return db.frame("SELECT p.*, m.weights FROM proposals p JOIN mixtures m USING (mixture_id) "
                    "WHERE p.experiment_id = ? ORDER BY p.created_at DESC LIMIT 1", [experiment_id])


# ---------------------------------------------------------------- final runs
def final_comparison(db: Frames, experiment_id: str, run_ids: list[str] | None = None) -> pl.DataFrame:
    """Final runs grouped by mixture label: mean and spread of the target over seeds. Only runs of
    one final configuration: `run_ids`, else those of the latest final run's size and tokens."""
    if run_ids is None:
        run_ids = final_run_ids(db, experiment_id)
    return db.frame(
        """SELECT label, count(*) FILTER (WHERE status = 'ok') AS seeds,
                  avg(target_loss) AS mean_target, stddev_samp(target_loss) AS std_target,
                  min(target_loss) AS best, max(target_loss) AS worst,
                  any_value(n_params) AS n_params, any_value(tokens) AS tokens
           FROM final_runs WHERE experiment_id = ? AND run_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY label
           ORDER BY CASE label WHEN 'proposed' THEN 0 ELSE 1 END, label""",
        [experiment_id, list(run_ids)])


def final_curves(db: Frames, experiment_id: str) -> pl.DataFrame:
    """The final runs' training curves: label, seed, tokens seen and loss, in step order."""
    return db.frame(
        """SELECT r.label, r.seed, m.tokens, m.loss FROM final_runs r JOIN metrics m USING (run_id)
           WHERE r.experiment_id = ? ORDER BY r.label, r.seed, m.step""", [experiment_id])


def final_trajectories(db: Frames, experiment_id: str) -> pl.DataFrame:
    """The mixture trajectories of the final runs that adapt their mixture online (Aioli)."""
    return db.frame(
        """SELECT t.run_id, t.step, t.domain, t.weight, r.label, r.seed, r.steps FROM mixture_trajectory t
           JOIN final_runs r USING (run_id) WHERE r.experiment_id = ? ORDER BY t.run_id, t.step""", [experiment_id])


def run_targets(db: Frames, run_ids: Sequence[str]) -> dict[str, float]:
    """run_id -> target loss of the given runs that finished ok with a finite target."""
    if not run_ids:
        return {}
    df = db.frame("SELECT run_id, target_loss FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[])) "
                  "AND status = 'ok' AND target_loss IS NOT NULL AND isfinite(target_loss)", [list(run_ids)])
    return dict(zip(df["run_id"].to_list(), df["target_loss"].to_list()))


def anchor_proxies(db: Frames, experiment_id: str) -> pl.DataFrame:
    """The anchors' proxy runs at the target size: one row per anchor and seed (the anchor's name,
    its mixture, seed and measured target), from the `anchor:<name>` run and the mixture's seed repeats."""
    return db.frame(
        """WITH a AS (SELECT DISTINCT substr(label, 8) AS anchor, mixture_id FROM proxy_runs
                      WHERE experiment_id = ? AND label LIKE 'anchor:%')
           SELECT a.anchor, r.mixture_id, r.seed, r.target_loss FROM a JOIN proxy_runs r USING (mixture_id)
           WHERE r.experiment_id = ? AND r.status = 'ok' AND coalesce(r.size, 'target') = 'target'
           AND (r.label LIKE 'anchor:%' OR r.label = 'seed_repeat') ORDER BY a.anchor, r.seed""",
        [experiment_id, experiment_id])


def pilot_runs(db: Frames, experiment_id: str) -> pl.DataFrame:
    """The pilot's finished runs: label, seed, tokens and target loss."""
    return db.frame("SELECT run_id, label, seed, tokens, target_loss FROM runs WHERE experiment_id = ? "
                    "AND role = 'pilot' AND status = 'ok' ORDER BY label, seed", [experiment_id])


def final_targets(db: Frames, experiment_id: str, run_ids: list[str]) -> pl.DataFrame:
    """run_id, label, seed and target loss of the given final runs that finished ok (for paired verdicts)."""
    return db.frame("SELECT run_id, label, seed, target_loss, n_params, tokens FROM final_runs WHERE experiment_id = ? "
                    "AND status = 'ok' AND run_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY label, seed",
                    [experiment_id, list(run_ids)])


def final_run_ids(db: Frames, experiment_id: str) -> list[str]:
    """The final runs of the latest final configuration (the size and tokens of the latest final run)."""
    latest = db.frame("SELECT n_params, tokens FROM final_runs WHERE experiment_id = ? "
                      "ORDER BY created_at DESC LIMIT 1", [experiment_id])
    if not latest.height:
        return []
    return db.frame("SELECT run_id FROM final_runs WHERE experiment_id = ? AND n_params = ? AND tokens = ?",
                    [experiment_id, latest["n_params"][0], latest["tokens"][0]])["run_id"].to_list()


def run_evals(db: Frames, experiment_id: str, role: str | None = None) -> pl.DataFrame:
    """Every measured loss of the experiment's finished runs, long: run_id, role, label, seed, size, name,
    kind ("domain", "eval" or "group") and loss (the `run_evals` view)."""
    where, params = ("AND v.role = ?", [role]) if role else ("", [])
    return db.frame(f"""SELECT v.run_id, v.role, v.label, v.seed, v.size, v.name, v.kind, v.loss FROM run_evals v
                        JOIN runs r ON r.run_id = v.run_id WHERE v.experiment_id = ? AND r.status = 'ok' {where}
                        ORDER BY v.run_id, v.kind, v.name""", [experiment_id, *params])


def eval_table(db: Frames, experiment_id: str, role: str | None = None) -> pl.DataFrame:
    """`run_evals` pivoted wide: one row per run (run_id, role, label, seed, size), one column per
    domain, eval set and group (named as in the config; kinds never share a name)."""
    long = run_evals(db, experiment_id, role)
    if not long.height:
        return long
    return long.pivot(on="name", index=["run_id", "role", "label", "seed", "size"], values="loss",
                      maintain_order=True)
# ---------------------------------------------------------------- hierarchical domains and mixture files
def mixture_levels(db: Frames, experiment_id: str, mixture_id: str) -> pl.DataFrame:
    """One mixture of the experiment at both levels of `source:topic` domains: per domain its source,
    topic, weight, the source's weight and the weight within the source (domain order)."""
    return db.frame(
        """SELECT DISTINCT w.domain, w.source, w.topic, w.weight, w.source_weight, w.topic_weight, d.idx, d.prior
           FROM mixture_weights w JOIN domains d ON d.experiment_id = w.experiment_id AND d.domain = w.domain
           WHERE w.experiment_id = ? AND w.mixture_id = ? ORDER BY d.idx""", [experiment_id, mixture_id])


def proposal(db: Frames, experiment_id: str, proposal_id: str | None = None) -> pl.DataFrame:
    """One proposal (the latest when `proposal_id` is None) with its weights and its fit's regressor
    and CV scores (empty when there is none)."""
    where, params = ("AND p.proposal_id = ?", [proposal_id]) if proposal_id else ("", [])
    return db.frame(
        f"""SELECT p.*, m.weights, f.regressor AS fit_regressor, f.cv_spearman, f.cv_rmse, f.n_train
            FROM proposals p JOIN mixtures m USING (mixture_id) LEFT JOIN fits f ON f.fit_id = p.fit_id
            WHERE p.experiment_id = ? {where} ORDER BY p.created_at DESC LIMIT 1""", [experiment_id, *params])


def final_runs_of_mixture(db: Frames, experiment_id: str, mixture_id: str) -> pl.DataFrame:
    """The finished final runs that trained `mixture_id`: run_id, label, seed, tokens, n_params and
    target, newest first (empty when none did)."""
    return db.frame(
        """SELECT run_id, label, seed, tokens, n_params, target_loss, created_at FROM final_runs
           WHERE experiment_id = ? AND mixture_id = ? AND status = 'ok' AND target_loss IS NOT NULL
           ORDER BY created_at DESC, run_id""", [experiment_id, mixture_id])
# ---------------------------------------------------------------- held-out curves, achieved mixtures, interactions
def heldout_target_curves(db: Frames, experiment_id: str, run_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """The final runs' held-out target measured during training (the same evaluation windows for
    every run): run_id, label, seed, step, tokens, target_loss; only `run_ids` when given."""
    where, params = "", [experiment_id]
    if run_ids is not None:
        where, params = " AND r.run_id IN (SELECT unnest(?::VARCHAR[]))", [experiment_id, list(run_ids)]
    return db.frame(
        f"""SELECT r.run_id, r.label, r.seed, h.step, h.tokens, h.target_loss FROM final_runs r
            JOIN heldout_targets h USING (run_id) WHERE r.experiment_id = ? AND r.status = 'ok'{where}
            ORDER BY r.label, r.seed, h.step""", params)


def heldout_domain_curves(db: Frames, experiment_id: str) -> pl.DataFrame:
    """Every run's per-domain held-out losses measured during training: run_id, role, label, seed, step,
    tokens, domain, loss."""
    return db.frame(
        """SELECT r.run_id, r.role, r.label, r.seed, h.step, h.tokens, h.domain, h.loss FROM runs r
           JOIN heldout_curves h USING (run_id) WHERE r.experiment_id = ? ORDER BY r.run_id, h.step, h.domain""",
        [experiment_id])


def achieved_mixtures(db: Frames, experiment_id: str, role: str | None = None) -> pl.DataFrame:
    """Per run and domain: the requested weight and the fraction of training tokens actually drawn."""
    where, params = ("", [experiment_id]) if role is None else (" AND r.role = ?", [experiment_id, role])
    return db.frame(
        f"""SELECT r.run_id, r.role, r.label, r.seed, a.domain, a.requested, a.tokens, a.fraction
            FROM runs r JOIN achieved_mixture a USING (run_id) JOIN domains d
            ON d.experiment_id = r.experiment_id AND d.domain = a.domain
            WHERE r.experiment_id = ?{where} ORDER BY r.role, r.label, r.seed, r.run_id, d.idx""", params)


def proxy_domain_losses(db: Frames, experiment_id: str) -> pl.DataFrame:
    """The finished target-size proxies (one per mixture, as the fits see them): run_id, weights and
    each domain's held-out loss (long form: one row per run and domain)."""
    return db.frame(
        """SELECT r.run_id, m.weights, e.domain, e.loss FROM proxy_runs r JOIN mixtures m USING (mixture_id)
           JOIN evals e USING (run_id) WHERE r.experiment_id = ? AND r.status = 'ok'
           AND coalesce(r.size, 'target') = 'target' AND r.label IS DISTINCT FROM 'seed_repeat'
           AND isfinite(e.loss) ORDER BY r.mixture_id, e.domain""", [experiment_id])


def run_gradient_cosines(db: Frames, experiment_id: str) -> pl.DataFrame:
    """Per-domain gradient cosines measured during the runs: run_id, label, seed, step, row/col domain, value."""
    return db.frame(
        """SELECT r.run_id, r.label, r.seed, g.step, g.row_domain, g.col_domain, g.value FROM runs r
           JOIN gradient_cosines g USING (run_id) WHERE r.experiment_id = ? AND r.status = 'ok'
           ORDER BY r.run_id, g.step""", [experiment_id])


def interactions(db: Frames, experiment_id: str) -> pl.DataFrame:
    """The experiment's interaction matrices: method, row_domain, col_domain, value, details."""
    return db.frame("SELECT method, row_domain, col_domain, value, details FROM interactions "
                    "WHERE experiment_id = ? ORDER BY method, row_domain, col_domain", [experiment_id])


def current_final_runs(db: Frames, experiment_id: str) -> dict[str, list[tuple[str, int]]]:
    """run_id -> [(label, seed)] of the final runs compared now, among the latest final configuration's
    (`final_run_ids`): for every label other than `proposed` the mixture of its latest run, and for
    `proposed` the latest proposal's mixture, whatever label its runs were stored under (a proposal
    equal to a baseline shares that baseline's runs). A rerun whose proposal changed never mixes two
    mixtures under one label."""
    ids = final_run_ids(db, experiment_id)
    if not ids:
        return {}
    runs = db.frame("SELECT run_id, label, seed, mixture_id FROM final_runs WHERE experiment_id = ? "
                    "AND run_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY created_at DESC, run_id",
                    [experiment_id, ids]).to_dicts()
    prop = latest_proposal(db, experiment_id)
    proposed = prop["mixture_id"][0] if prop.height else None
    latest: dict[str, str] = {}
    for r in runs:  # newest first: the first mixture seen per label is its latest
        latest.setdefault(r["label"], r["mixture_id"])
    if proposed is None and "proposed" in latest:  # no proposal stored: its latest runs, like any label
        proposed = latest["proposed"]
    own = {int(r["seed"]) for r in runs if r["label"] == "proposed" and r["mixture_id"] == proposed}
    out: dict[str, list[tuple[str, int]]] = {}
    for r in runs:
        names = [r["label"]] if r["label"] != "proposed" and latest[r["label"]] == r["mixture_id"] else []
        if r["mixture_id"] == proposed and (r["label"] == "proposed" or int(r["seed"]) not in own):
            names.append("proposed")
            own.add(int(r["seed"]))
        if names:
            out[r["run_id"]] = [(n, int(r["seed"])) for n in dict.fromkeys(names)]
    return out


def run_mixtures(db: Frames, run_ids: Sequence[str]) -> dict[str, list[float]]:
    """run_id -> the weights of its mixture (for an adaptive run: the one it started from)."""
    if not run_ids:
        return {}
    df = db.frame("SELECT r.run_id, m.weights FROM runs r JOIN mixtures m USING (mixture_id) "
                  "WHERE r.run_id IN (SELECT unnest(?::VARCHAR[]))", [list(run_ids)])
    return {r["run_id"]: [float(w) for w in r["weights"]] for r in df.to_dicts()}


def noise_inputs(db: Frames, experiment_id: str) -> tuple[dict[str, dict[int, float]], dict[str, dict[int, float]]]:
    """What the final seeds are planned from: the pilot's targets (label -> seed -> target) and the
    anchors' proxy seed repeats (anchor -> seed -> target)."""
    pilot: dict[str, dict[int, float]] = {}
    for r in pilot_runs(db, experiment_id).to_dicts():
        if r["target_loss"] is not None:
            pilot.setdefault(r["label"], {})[int(r["seed"])] = float(r["target_loss"])
    anchors: dict[str, dict[int, float]] = {}
    for r in anchor_proxies(db, experiment_id).to_dicts():
        if r["target_loss"] is not None:
            anchors.setdefault(r["anchor"], {})[int(r["seed"])] = float(r["target_loss"])
    return pilot, anchors


# ---------------------------------------------------------------- mixture reuse: domains by content
def domain_identities(db: Frames, experiment_id: str) -> pl.DataFrame:
    """The experiment's domains with what identifies their content across experiments (the text checksum,
    and the shards' checksums for pre-tokenized domains), in domain order (empty when not recorded)."""
    return db.frame("SELECT domain, idx, text_sha256, train_sha256, val_sha256 FROM domains WHERE experiment_id = ? "
                    "ORDER BY idx", [experiment_id])


def experiment_ids(db: Frames) -> list[str]:
    """Every recorded experiment's id, newest first."""
    return db.frame("SELECT experiment_id FROM experiments ORDER BY created_at DESC, experiment_id")[
        "experiment_id"].to_list()
