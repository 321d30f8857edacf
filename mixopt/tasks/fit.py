"""Prefect task: cross-validate the regressors, keep the best, propose a mixture.

Besides storing the fits and the proposal in the warehouse, the task publishes two artifacts in
the Prefect UI: the fit report (`mixopt-fit`, markdown: every regressor's cross-validation scores
and which one was chosen) and the proposal (`mixopt-proposal`, a table: per domain, the natural
weight, the proposed weight and whether a repetition cap binds).
"""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from mixopt.experiment import Experiment
from mixopt.stages.fit import FitOutcome, fit_and_propose
from mixopt.warehouse import writer


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
