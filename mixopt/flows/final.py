"""The final flow: a pilot, then the proposal and the baselines at the same budget and seeds, compared."""

from __future__ import annotations

from prefect import flow

from mixopt.config import ExperimentConfig
from mixopt.config.file import ConfigFile, resolve_config
from mixopt.experiment import Experiment
from mixopt.tasks.context import experiment_run
from mixopt.tasks.final import PilotOutcome, final_specs, pilot_outcome_task, pilot_specs, spec_labels
from mixopt.tasks.final_runs import proposal_to_train, train_final_runs
from mixopt.tasks.report import report_task


def run_final(exp: Experiment, proposal: list[float]) -> tuple[list[float], PilotOutcome | None]:
    """The pilot (when enabled), then the final runs; returns the mixture trained as `proposed`
    (the proposal, or with `final.pilot.require_win` the pilot's best baseline) and the pilot's outcome."""
    pilot = None
    if exp.cfg.final.pilot.enabled:
        train_final_runs(exp, proposal, pilot=True)
        pilot = pilot_outcome_task(exp, proposal)
        if pilot is not None:
            proposal = pilot.weights
    train_final_runs(exp, proposal, pilot=False)
    return proposal, pilot


@flow(name="final-run", log_prints=True)
def final_run(
    config: ExperimentConfig = ExperimentConfig(),
    config_file: ConfigFile = None,
) -> str:
    """Train the latest proposal and the baselines (after a pilot); returns the report's verdict."""
    with experiment_run(resolve_config(config, config_file)) as exp:
        proposal = proposal_to_train(exp)
        trained, _ = run_final(exp, proposal)
        specs = final_specs(exp, trained)
        labels = spec_labels(specs + pilot_specs(exp, proposal))
        return report_task(exp, [s.run_id for s in specs], labels).verdict
