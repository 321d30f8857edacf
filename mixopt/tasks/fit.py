"""Fit regressors from mixture to target loss on the finished proxies, and propose a mixture.

Regressors are judged only by k-fold cross-validation on the proxies (out-of-fold predictions).
The configured regressor (by default `auto`, itself cross-validated with its choice redone inside
every outer fold) is refitted on all proxies and handed to the proposer, whose token caps are set
at the final run's budget. Every fit and the proposal are stored with their ids.

Sizes are never mixed silently: regressors fit the target-size proxies only (one row per mixture;
seed repeats are left out), except `gp_multi_fidelity`, which also learns from the cheap proxies
and predicts at the target size (its CV scores target-size rows only, like the others').

Besides storing the fits and the proposal in the warehouse, the task publishes two artifacts in
the Prefect UI: the fit report (`mixopt-fit`, markdown: every regressor's cross-validation scores
and which one was chosen) and the proposal (`mixopt-proposal`, a table: per domain, the natural
weight, the proposed weight and whether a repetition cap binds).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from mixopt.errors import MixoptError
from mixopt.experiment import Experiment, mixture_id
from mixopt.mixtures.auto import AutoRegressor
from mixopt.mixtures.cv import cross_validate
from mixopt.mixtures.design import token_caps
from mixopt.mixtures.multifidelity import MultiFidelityGP
from mixopt.mixtures.proposers import Proposal, propose_best_seen, propose_exact, propose_regmix
from mixopt.mixtures.regressors import make_regressor
from mixopt.tasks.fidelity import LOW, fidelity_levels
from mixopt.tasks.propose import choice_details, propose_at_final_scale
from mixopt.warehouse import Warehouse, writer

MIN_PROXIES = 4


class NotEnoughProxies(MixoptError, RuntimeError):
    """Fewer finished proxies than a fit needs."""


@dataclass
class FitOutcome:
    """The chosen fit and the proposal made from it (JSON-friendly)."""

    fit_id: str
    regressor: str
    n_train: int
    cv: list[dict]
    proposal_id: str
    method: str
    weights: list[float]
    predicted: float
    caps_active: list[bool]
    details: dict = field(default_factory=dict)
    """The proposal's details: raw optimum, hedge, anchors' predictions, stability, scale checks."""


def _id(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def _rows(exp: Experiment, rows: list[dict]) -> tuple[list[str], np.ndarray, np.ndarray]:
    ids = [r["run_id"] for r in rows]
    X = np.array([r["weights"] for r in rows], dtype=float).reshape(len(rows), len(exp.domains))
    y = np.array([r["target_loss"] for r in rows], dtype=float)
    return ids, X, y


def training_data(exp: Experiment, wh: Warehouse) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The rows every regressor fits: target-size proxies, one per mixture (no seed repeats)."""
    return _rows(exp, wh.training_table(exp.experiment_id))


def fit_and_propose(exp: Experiment, wh: Warehouse) -> FitOutcome:
    cfg = exp.cfg
    ids, X, y = training_data(exp, wh)
    if len(y) < MIN_PROXIES:
        raise NotEnoughProxies(
            f"only {len(y)} target-size proxies finished with a finite target loss; a fit needs at least {MIN_PROXIES}"
        )
    folds = min(cfg.regressor.cv_folds, len(y))
    seed = cfg.swarm.seed
    chosen = cfg.regressor.kind
    factories = {name: (lambda n=name: make_regressor(n, seed=seed)) for name in cfg.regressor.candidates}
    if chosen == "auto":  # judged like the others: its own choice is redone inside every outer fold
        factories["auto"] = lambda: AutoRegressor(candidates=cfg.regressor.candidates, folds=folds, seed=seed,
                                                  repeats=1)
    elif chosen != "gp_multi_fidelity":
        factories = {chosen: factories.get(chosen, lambda: make_regressor(chosen, seed=seed))}
    else:
        factories = {}
    if cfg.design.low_fidelity is not None and chosen in ("auto", "gp_multi_fidelity"):
        # the only model that sees the cheap proxies; scored, like the others, on target-size rows
        low_ids, X_low, y_low = _rows(exp, [r for r in wh.proxy_observations(exp.experiment_id) if r["size"] == LOW])
        level = fidelity_levels(exp)[LOW]
        factories["gp_multi_fidelity"] = lambda: MultiFidelityGP(X_low, y_low, level, X_all=X, seed=seed)
        ids_key = tuple(ids) + tuple(low_ids)
    else:
        ids_key = tuple(ids)
    reports = []
    for name, factory in factories.items():
        rep = cross_validate(factory, X, y, folds=folds, seed=seed, repeats=cfg.regressor.cv_repeats)
        rep.name = name
        reports.append(rep)
    best = next(r for r in reports if r.name == chosen)
    mf = next((r for r in reports if r.name == "gp_multi_fidelity"), None)
    if chosen == "auto" and mf is not None and np.isfinite(mf.spearman) and mf.sort_key() > best.sort_key():
        best, chosen = mf, mf.name  # the cheap proxies help: the same CV, on the same target-size rows, says so
    fit_ids = {}
    for rep in reports:
        rows_key = ids_key if rep.name == "gp_multi_fidelity" else tuple(ids)
        fit_id = "f" + _id(exp.experiment_id, rep.name, rows_key, folds, cfg.regressor.cv_repeats)
        fit_ids[rep.name] = fit_id
        wh.record_fit(
            fit_id, exp.experiment_id,
            {"name": rep.name, "n": len(y), "folds": folds, "spearman": _f(rep.spearman),
             "kendall": _f(rep.kendall), "r2": _f(rep.r2), "rmse": _f(rep.rmse), "repeats": rep.repeats,
             "spearman_sd": _f(rep.spearman_sd), "rmse_sd": _f(rep.rmse_sd)},
            chosen=rep is best,
            predictions=list(zip(ids, y, rep.oof_pred)),
        )
    model = factories[chosen]().fit(X, y)
    caps = token_caps(exp.train_tokens, cfg.final.tokens, cfg.proposer.final_max_epochs)
    p = cfg.proposer
    hierarchy = exp.hierarchy()
    hierarchy = hierarchy if hierarchy is not None and hierarchy.frozen else None  # frozen topics: kept by all
    choice = None
    if p.kind in ("regmix", "bagged") and chosen != "gp_multi_fidelity":
        choice = propose_at_final_scale(exp, wh, chosen, model, caps)
        prop = Proposal(choice.weights, choice.predicted, p.kind, best.name,
                        [bool(abs(a - b) <= 1e-6) for a, b in zip(choice.weights, caps)], choice_details(choice))
        if p.kind == "bagged" and choice.boot is not None:
            prop.weights = choice.boot.bagged if hierarchy is None else hierarchy.project(choice.boot.bagged, caps)
            prop.predicted = float(choice.law_predict(prop.weights))
    elif p.kind in ("regmix", "bagged"):
        prop = propose_regmix(model, exp.prior, caps, n_samples=p.n_samples, top_k=p.top_k, seed=cfg.swarm.seed,
                              hierarchy=hierarchy)
    elif p.kind == "exact":
        prop = propose_exact(model, exp.prior, caps, kl_weight=p.kl_weight, hierarchy=hierarchy)
    else:
        prop = propose_best_seen(X, y, caps=caps, hierarchy=hierarchy)
    details = dict(prop.details)
    if isinstance(model, AutoRegressor):
        details["auto_weights"] = {k: float(v) for k, v in model.weights_.items()}
    weights = [float(w) for w in prop.weights]
    mid = mixture_id(weights)
    proposal_id = "p" + _id(fit_ids[best.name], p.kind, mid)
    wh.record_proposal(
        proposal_id, exp.experiment_id, fit_ids[best.name], p.kind, best.name, mid, weights,
        float(prop.predicted), list(prop.caps_active), details,
    )
    return FitOutcome(
        fit_id=fit_ids[best.name], regressor=best.name, n_train=len(y),
        cv=[{"regressor": r.name, "spearman": _f(r.spearman), "kendall": _f(r.kendall), "r2": _f(r.r2),
             "rmse": _f(r.rmse), "spearman_sd": _f(r.spearman_sd)} for r in reports],
        proposal_id=proposal_id, method=p.kind, weights=weights, predicted=float(prop.predicted),
        caps_active=[bool(c) for c in prop.caps_active], details=details,
    )


def _f(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def fit_markdown(exp: Experiment, outcome: FitOutcome) -> str:
    """The fit report: CV scores of every regressor, the chosen one, and the proposal it made."""
    lines = [
        f"# Fit of {exp.experiment_id}",
        "",
        f"{outcome.n_train} finished proxies; regressors judged by k-fold cross-validation "
        f"(out-of-fold predictions). Chosen: **{outcome.regressor}** (fit `{outcome.fit_id}`).",
        "",
        "| regressor | Spearman | Kendall | R² | RMSE | chosen |",
        "|---|---|---|---|---|---|",
    ]
    for row in outcome.cv:
        chosen = "yes" if row["regressor"] == outcome.regressor else ""
        lines.append(f"| {row['regressor']} | {_num(row['spearman'])} | {_num(row['kendall'])} | "
                     f"{_num(row['r2'])} | {_num(row['rmse'], 4)} | {chosen} |")
    lines += ["", f"Proposal `{outcome.proposal_id}` ({outcome.method}): predicted target "
              f"{outcome.predicted:.4f}."]
    return "\n".join(lines)


def proposal_table(exp: Experiment, outcome: FitOutcome) -> list[dict]:
    """One row per domain: natural (token-proportional) weight, proposed weight, cap binding."""
    return [
        {"domain": name, "natural": round(float(prior), 4), "proposed": round(float(w), 4), "cap_active": bool(cap)}
        for name, prior, w, cap in zip(exp.domain_names, exp.prior, outcome.weights, outcome.caps_active)
    ]


@task(name="fit-and-propose", cache_policy=NONE)
def fit_and_propose_task(exp: Experiment) -> FitOutcome:
    """Fit every candidate regressor with k-fold CV on the finished proxies and propose a mixture."""
    outcome = fit_and_propose(exp, writer(exp.warehouse))
    create_markdown_artifact(key="mixopt-fit", markdown=fit_markdown(exp, outcome),
                             description=f"Regressor fits of {exp.experiment_id}")
    create_table_artifact(key="mixopt-proposal", table=proposal_table(exp, outcome),
                          description=f"Proposed mixture of {exp.experiment_id} ({outcome.method}, "
                                      f"{outcome.regressor}): predicted target {outcome.predicted:.4f}")
    return outcome
