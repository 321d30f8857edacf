"""Prefect tasks of the final comparison."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from mixopt.experiment import Experiment
from mixopt.runspec import RunResult, RunSpec
from mixopt.stages import final
from mixopt.warehouse import writer


@task(name="plan-final", cache_policy=NONE)
def plan_final_task(exp: Experiment, proposal: list[float]) -> list[RunSpec]:
    """The final runs (proposal and baselines, every seed) not yet finished."""
    return final.plan_final(exp, writer(exp.warehouse), proposal)


@task(name="final-run", task_run_name="final-{spec.label}-seed{spec.seed}", cache_policy=NONE)
def final_run_task(exp: Experiment, spec: RunSpec) -> RunResult:
    """Train one final run in its own process (so it could use DDP) and spool its result."""
    return final.train_final(exp, spec)
