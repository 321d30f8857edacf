"""The final flow: a pilot, then the proposal and the baselines at the same budget and seeds, compared."""

from __future__ import annotations

from prefect import flow

from mixopt.config import ExperimentConfig
from mixopt.config.file import ConfigFile, resolve_config
from mixopt.experiment import Experiment
from mixopt.tasks.context import experiment_run
from mixopt.tasks.final import (
    PilotOutcome,
    final_specs,
    look_task,
    pilot_outcome_task,
    pilot_specs,
    planned_seeds,
    seed_plan_task,
    spec_labels,
)
from mixopt.tasks.final_runs import proposal_to_train, train_final_runs
from mixopt.tasks.report import report_task


def run_final(exp: Experiment, proposal: list[float]) -> tuple[list[float], PilotOutcome | None, list[int]]:
    """The pilot (when enabled), the seed plan, then the final runs look by look until every comparison
    is decided or the plan's seeds are spent; returns the mixture trained as `proposed` (the proposal, or
    with `final.pilot.require_win` the pilot's best baseline), the pilot's outcome and the seeds trained."""
    pilot = None
    if exp.cfg.final.pilot.enabled:
        train_final_runs(exp, proposal, pilot=True)
        pilot = pilot_outcome_task(exp, proposal)
        if pilot is not None:
            proposal = pilot.weights
    plan = seed_plan_task(exp)
    seeds = planned_seeds(exp, plan)
    for n in plan.looks:
        train_final_runs(exp, proposal, pilot=False, seeds=seeds[:n])
        if n == plan.looks[-1] or look_task(exp, proposal, plan, seeds[:n]):
            return proposal, pilot, seeds[:n]
    return proposal, pilot, seeds


@flow(name="final-run", log_prints=True)
def final_run(
    config: ExperimentConfig = ExperimentConfig(),
    config_file: ConfigFile = None,
) -> str:
    """Train the latest proposal and the baselines (after a pilot); returns the report's verdict."""
    with experiment_run(resolve_config(config, config_file)) as exp:
        proposal = proposal_to_train(exp)
        trained, _, seeds = run_final(exp, proposal)
        specs = final_specs(exp, trained, seeds)
        labels = spec_labels(specs + pilot_specs(exp, proposal))
        return report_task(exp, [s.run_id for s in specs], labels).verdict
