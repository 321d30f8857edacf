"""Fit regressors from mixture to target loss on the finished proxies, and propose a mixture.

Two steps: :func:`fit` (cross-validate the regressors, choose one, refit it on all proxies) and
:func:`propose` (the registered proposer on that choice); :func:`fit_and_propose` is both, as the flows
run them. Nothing here imports torch (parameter counts come from `mixtures/sizing.py`).

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
from functools import partial
from typing import Any

import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from mixopt.errors import MixoptError
from mixopt.experiment import Experiment, mixture_id
from mixopt.mixtures.auto import AutoRegressor
from mixopt.mixtures.cv import CVReport, cross_validate
from mixopt.mixtures.data_constrained import RepetitionData
from mixopt.mixtures.design import token_caps
from mixopt.mixtures.multifidelity import LowFidelityData
from mixopt.mixtures.proposers import PROPOSERS, Proposal, ProposerInputs
from mixopt.mixtures.regressors import REGRESSORS, make_regressor
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


@dataclass
class Fit:
    """The fit step's result: every regressor's CV, the chosen one fitted on all rows (torch-free)."""

    ids: list[str]
    """Run ids of the rows (target-size proxies, one per mixture)."""
    X: np.ndarray
    y: np.ndarray
    reports: list[CVReport]
    """Every cross-validated regressor, in the order they were scored."""
    best: CVReport
    """The chosen regressor's CV report (its `name` is the chosen regressor)."""
    fit_ids: dict[str, str]
    """Regressor name -> its stored fit id."""
    model: Any
    """The chosen regressor, fitted on all of ``(X, y)``."""

    @property
    def chosen(self) -> str:
        return self.best.name


def _inputs(exp: Experiment, wh: Warehouse, X: np.ndarray) -> tuple[dict[str, Any], list[str]]:
    """The extra inputs the config makes available to regressors that need them, and their rows' ids
    (the repetition input only when `regressor.kind` asks for it: it would not change `auto`'s CV)."""
    cfg = exp.cfg
    inputs: dict[str, Any] = {}
    if cfg.regressor.kind == "data_constrained":
        proxy = exp.run_domains("proxy", cfg.swarm)
        base = partial(make_regressor, "auto", cfg.swarm.seed, candidates=cfg.regressor.candidates,
                       folds=min(cfg.regressor.cv_folds, max(2, len(X))), repeats=1)
        inputs["repetition"] = RepetitionData(float(cfg.swarm.tokens),
                                              np.array([d.pool_tokens or d.train_tokens for d in proxy], dtype=float),
                                              float(cfg.final.tokens), exp.train_tokens, base)
    if cfg.design.low_fidelity is None:
        return inputs, []
    low_ids, X_low, y_low = _rows(exp, [r for r in wh.proxy_observations(exp.experiment_id) if r["size"] == LOW])
    inputs["low_fidelity"] = LowFidelityData(X_low, y_low, fidelity_levels(exp)[LOW], X_all=X)
    return inputs, low_ids


def _factories(exp: Experiment, wh: Warehouse, X: np.ndarray, folds: int) -> tuple[dict[str, Any], list[str]]:
    """Name -> zero-argument factory of every regressor to cross-validate, and the ids of the extra rows
    those that need more than (X, y) see. `auto`: its candidates, itself, and every registered regressor
    whose extra inputs the config provides (the only ones that see them); otherwise the chosen one."""
    cfg = exp.cfg
    seed, chosen = cfg.swarm.seed, cfg.regressor.kind
    entry = REGRESSORS.get(chosen)
    if chosen != "auto" and not entry.needs:
        return {chosen: partial(make_regressor, chosen, seed)}, []
    inputs, extra_ids = _inputs(exp, wh, X)
    factories: dict[str, Any] = {}
    if chosen == "auto":  # judged like the others: its own choice is redone inside every outer fold
        factories = {name: partial(make_regressor, name, seed) for name in cfg.regressor.candidates}
        factories["auto"] = partial(make_regressor, "auto", seed, candidates=cfg.regressor.candidates, folds=folds,
                                    repeats=1)
        more = [e for e in REGRESSORS.entries() if e.needs and set(e.needs) <= set(inputs)]
    else:
        more = [entry]
    for e in more:  # scored, like the others, on the target-size rows
        factories[e.name] = partial(make_regressor, e.name, seed, **{k: inputs[k] for k in e.needs})
    return factories, extra_ids


def fit(exp: Experiment, wh: Warehouse) -> Fit:
    """Cross-validate the configured regressor(s) on the finished target-size proxies, store every fit,
    and choose: the configured one, or with `auto`, a regressor that sees more data (the cheap proxies)
    when its out-of-fold score on the same rows beats auto's."""
    cfg = exp.cfg
    ids, X, y = training_data(exp, wh)
    if len(y) < MIN_PROXIES:
        raise NotEnoughProxies(
            f"only {len(y)} target-size proxies finished with a finite target loss; a fit needs at least {MIN_PROXIES}"
        )
    folds = min(cfg.regressor.cv_folds, len(y))
    seed = cfg.swarm.seed
    chosen = cfg.regressor.kind
    factories, extra_ids = _factories(exp, wh, X, folds)
    reports = []
    for name, factory in factories.items():
        rep = cross_validate(factory, X, y, folds=folds, seed=seed, repeats=cfg.regressor.cv_repeats)
        rep.name = name
        reports.append(rep)
    best = next(r for r in reports if r.name == chosen)
    if chosen == "auto":  # the cheap proxies help: the same CV, on the same target-size rows, says so
        for rep in reports:
            if REGRESSORS.get(rep.name).needs and np.isfinite(rep.spearman) and rep.sort_key() > best.sort_key():
                best = rep
    fit_ids = {}
    for rep in reports:
        rows_key = tuple(ids) + (tuple(extra_ids) if REGRESSORS.get(rep.name).needs else ())
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
    record_prior_score(exp, wh, ids, X, y)
    model = factories[best.name]().fit(X, y)
    if hasattr(model, "at_final"):  # a law that knows about repetition: the proposal is at the final budget
        model.at_final()
    return Fit(ids, X, y, reports, best, fit_ids, model)


PRIOR_FIT = "prior:similarity"
"""The fits row of the zero-proxy similarity prior: how well the data alone ranks the proxies."""


def record_prior_score(exp: Experiment, wh: Warehouse, ids: list[str], X: np.ndarray, y: np.ndarray) -> None:
    """Score the proxies' mixtures with the similarity prior (the cross-entropy of the target's hashed
    n-grams under the mixture's; it reads no proxy result, so its rank correlation with the measured
    targets is out-of-sample as it stands) and store it as a fit that is never chosen: the report shows
    whether the swarm told more than the data did. R² and RMSE do not apply (the score is not a loss)."""
    from scipy.stats import kendalltau, spearmanr

    try:
        score = np.asarray(exp.similarity_prior().score_fn(X), dtype=float)
    except (OSError, ValueError) as e:  # shards unreadable here: the fit goes on without the row
        print(f"warning: the similarity prior could not score the proxies ({e})")
        return
    rho = float(spearmanr(score, y)[0]) if len(y) > 2 and np.ptp(score) > 0 else float("nan")
    tau = float(kendalltau(score, y)[0]) if len(y) > 2 and np.ptp(score) > 0 else float("nan")
    fit_id = "f" + _id(exp.experiment_id, PRIOR_FIT, tuple(ids))
    wh.record_fit(fit_id, exp.experiment_id,
                  {"name": PRIOR_FIT, "n": len(y), "folds": 0, "spearman": _f(rho), "kendall": _f(tau),
                   "r2": None, "rmse": None, "repeats": 1},
                  chosen=False, predictions=list(zip(ids, y, score)))


def propose(exp: Experiment, wh: Warehouse, f: Fit) -> FitOutcome:
    """Propose a mixture from the chosen fit at the final run's caps (the registered `proposer.kind`)
    and store the proposal."""
    cfg = exp.cfg
    caps = token_caps(exp.train_tokens, cfg.final.tokens, cfg.proposer.final_max_epochs)
    p = cfg.proposer
    entry = PROPOSERS.get(p.kind)
    hierarchy = exp.hierarchy()
    hierarchy = hierarchy if hierarchy is not None and hierarchy.frozen else None  # frozen topics: kept by all
    if entry.final_scale and not REGRESSORS.get(f.chosen).needs:  # the law, bootstrap and hedge need refits
        choice = propose_at_final_scale(exp, wh, f.chosen, f.model, caps)
        prop = Proposal(choice.weights, choice.predicted, p.kind, f.best.name,
                        [bool(abs(a - b) <= 1e-6) for a, b in zip(choice.weights, caps)], choice_details(choice))
        if entry.from_choice is not None:
            prop = entry.from_choice(prop, choice, caps, hierarchy)
    else:
        prop = entry.propose(ProposerInputs(f.model, f.X, f.y, exp.prior, caps, seed=cfg.swarm.seed,
                                            n_samples=p.n_samples, top_k=p.top_k, kl_weight=p.kl_weight,
                                            hierarchy=hierarchy))
    details = dict(prop.details)
    if isinstance(f.model, AutoRegressor):
        details["auto_weights"] = {k: float(v) for k, v in f.model.weights_.items()}
    weights = [float(w) for w in prop.weights]
    mid = mixture_id(weights)
    fit_id = f.fit_ids[f.best.name]
    proposal_id = "p" + _id(fit_id, p.kind, mid)
    wh.record_proposal(
        proposal_id, exp.experiment_id, fit_id, p.kind, f.best.name, mid, weights,
        float(prop.predicted), list(prop.caps_active), details,
    )
    return FitOutcome(
        fit_id=fit_id, regressor=f.best.name, n_train=len(f.y),
        cv=[{"regressor": r.name, "spearman": _f(r.spearman), "kendall": _f(r.kendall), "r2": _f(r.r2),
             "rmse": _f(r.rmse), "spearman_sd": _f(r.spearman_sd)} for r in f.reports],
        proposal_id=proposal_id, method=p.kind, weights=weights, predicted=float(prop.predicted),
        caps_active=[bool(c) for c in prop.caps_active], details=details,
    )


def fit_and_propose(exp: Experiment, wh: Warehouse) -> FitOutcome:
    """The fit step: :func:`fit`, then :func:`propose` from its choice."""
    return propose(exp, wh, fit(exp, wh))


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
