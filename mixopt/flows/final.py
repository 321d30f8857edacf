"""The final flow: a pilot, then the proposal and the baselines at the same budget and seeds, compared."""

from __future__ import annotations

from prefect import flow

from mixopt.config import ExperimentConfig
from mixopt.config.file import ConfigFile, resolve_config
from mixopt.experiment import Experiment
from mixopt.models.swarm_sizing import auto_workers
from mixopt.tasks.corpus import prepare_experiment_task
from mixopt.tasks.final import (
    PilotOutcome,
    final_run_task,
    final_specs,
    latest_proposal,
    pilot_outcome_task,
    pilot_specs,
    plan_final_task,
    spec_labels,
)
from mixopt.tasks.report import report_task
from mixopt.tasks.swarm import record_result
from mixopt.warehouse import close_writer, writer


def _train(exp: Experiment, proposal: list[float], pilot: bool) -> int:
    """Train the unfinished final (or pilot) runs, each in its own process, `runtime.final_workers` at a
    time (on a CPU one single-threaded process per core); the flow records each result."""
    specs = plan_final_task(exp, proposal, pilot)
    wh = writer(exp.warehouse)
    rt = exp.cfg.runtime
    workers = 1 if exp.cfg.final.devices > 1 else (rt.final_workers or auto_workers(rt.device))
    for i in range(0, len(specs), workers):
        batch = specs[i:i + workers]
        if workers > 1:
            for spec in batch:
                spec.threads = 1  # one core per run (threads are not part of a run's identity)
        futures = [final_run_task.submit(exp, spec) for spec in batch]
        for spec, fut in zip(batch, futures):
            record_result(exp, wh, spec, fut.result())
    return len(specs)


def run_final(exp: Experiment, proposal: list[float]) -> tuple[list[float], PilotOutcome | None]:
    """The pilot (when enabled), then the final runs; returns the mixture trained as `proposed`
    (the proposal, or with `final.pilot.require_win` the pilot's best baseline) and the pilot's outcome."""
    pilot = None
    if exp.cfg.final.pilot.enabled:
        _train(exp, proposal, pilot=True)
        pilot = pilot_outcome_task(exp, proposal)
        if pilot is not None:
            proposal = pilot.weights
    _train(exp, proposal, pilot=False)
    return proposal, pilot


@flow(name="final-run", log_prints=True)
def final_run(
    config: ExperimentConfig = ExperimentConfig(),
    config_file: ConfigFile = None,
) -> str:
    """Train the latest proposal and the baselines (after a pilot); returns the report's verdict."""
    config = resolve_config(config, config_file)  # issue 15: experiments kept as files
    try:
        exp = prepare_experiment_task(config)
        proposal = latest_proposal(exp, writer(exp.warehouse))
        trained, _ = run_final(exp, proposal)
        specs = final_specs(exp, trained)
        labels = spec_labels(specs + pilot_specs(exp, proposal))
        return report_task(exp, [s.run_id for s in specs], labels).verdict
    finally:
        close_writer(config.runtime.warehouse)



