"""The final step as the flows drive it: train the unfinished final (or pilot) runs and record them.

How many train at once (and with how many threads) is the runner's decision (`runner.final_workers`,
`runner.final_groups`); each run is a Prefect task in its own process (`final_run_task`), and this
(the flow's) process records each result.
"""

from __future__ import annotations

from mixopt.experiment import Experiment
from mixopt.models import runner
from mixopt.tasks.final import final_run_task, latest_proposal, plan_final_task
from mixopt.tasks.swarm import record_result
from mixopt.warehouse import writer


def train_final_runs(exp: Experiment, proposal: list[float], pilot: bool, seeds: list[int] | None = None) -> int:
    """Train the unfinished final (or pilot) runs, `runtime.final_workers` at a time (on a CPU one
    single-threaded process per core), and record each result; returns how many were trained."""
    specs = plan_final_task(exp, proposal, pilot, seeds)
    wh = writer(exp.warehouse)
    for group in runner.final_groups(specs, runner.final_workers(exp.cfg.runtime, exp.cfg.final.devices)):
        futures = [final_run_task.submit(exp, spec) for spec in group]
        for spec, fut in zip(group, futures):
            record_result(exp, wh, spec, fut.result())
    return len(specs)


def proposal_to_train(exp: Experiment) -> list[float]:
    """The weights of the experiment's latest stored proposal."""
    return latest_proposal(exp, writer(exp.warehouse))
