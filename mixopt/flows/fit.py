"""The fit flow: cross-validate regressors on the finished proxies and propose a mixture."""

from __future__ import annotations

from prefect import flow

from mixopt.config import ExperimentConfig
from mixopt.config.file import ConfigFile, resolve_config
from mixopt.tasks.context import experiment_run
from mixopt.tasks.fit import FitOutcome, fit_and_propose_task
from mixopt.tasks.report import report_task


@flow(name="fit-and-propose", log_prints=True)
def fit_and_propose(
    config: ExperimentConfig = ExperimentConfig(),
    config_file: ConfigFile = None,
) -> FitOutcome:
    """Refit on every proxy finished so far, store the fits and a new proposal, refresh the report."""
    with experiment_run(resolve_config(config, config_file)) as exp:
        outcome = fit_and_propose_task(exp)
        report_task(exp)
        return outcome
