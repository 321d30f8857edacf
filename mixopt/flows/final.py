"""The final flow: train the proposal and the baselines at the same budget and seeds, compare."""

from __future__ import annotations

from prefect import flow

from mixopt.config import ExperimentConfig
from mixopt.experiment import Experiment
from mixopt.tasks.corpus import prepare_experiment_task
from mixopt.tasks.final import final_run_task, final_specs, latest_proposal, plan_final_task
from mixopt.tasks.report import report_task
from mixopt.tasks.swarm import record_result
from mixopt.warehouse import close_writer, writer


def run_final(exp: Experiment, proposal: list[float]) -> int:
    """Train the unfinished final runs one after another (each its own process); returns how many."""
    specs = plan_final_task(exp, proposal)
    wh = writer(exp.warehouse)
    for spec in specs:
        result = final_run_task(exp, spec)
        record_result(exp, wh, spec, result)
    return len(specs)


@flow(name="final-run", log_prints=True)
def final_run(config: ExperimentConfig = ExperimentConfig()) -> str:
    """Train the latest proposal and the baselines; returns the report's verdict."""
    try:
        exp = prepare_experiment_task(config)
        proposal = latest_proposal(exp, writer(exp.warehouse))
        run_final(exp, proposal)
        return report_task(exp, [s.run_id for s in final_specs(exp, proposal)]).verdict
    finally:
        close_writer(config.runtime.warehouse)
