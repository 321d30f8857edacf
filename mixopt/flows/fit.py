"""The fit flow: cross-validate regressors on the finished proxies and propose a mixture."""

from __future__ import annotations

from prefect import flow

from mixopt.config import ExperimentConfig
from mixopt.config.file import ConfigFile, resolve_config
from mixopt.tasks.corpus import prepare_experiment_task
from mixopt.tasks.fit import FitOutcome, fit_and_propose_task
from mixopt.tasks.report import report_task
from mixopt.warehouse import close_writer


@flow(name="fit-and-propose", log_prints=True)
def fit_and_propose(
    config: ExperimentConfig = ExperimentConfig(),
    config_file: ConfigFile = None,
) -> FitOutcome:
    """Refit on every proxy finished so far, store the fits and a new proposal, refresh the report."""
    config = resolve_config(config, config_file)  # issue 15: experiments kept as files
    try:
        exp = prepare_experiment_task(config)
        outcome = fit_and_propose_task(exp)
        report_task(exp)
        return outcome
    finally:
        close_writer(config.runtime.warehouse)
