"""The corpus flow: tokenise the domains and register the experiment (the prior)."""

from __future__ import annotations

from prefect import flow

from mixopt.config import ExperimentConfig
from mixopt.config.file import ConfigFile, resolve_config
from mixopt.experiment import Experiment
from mixopt.tasks.corpus import prepare_experiment_task
from mixopt.warehouse import close_writer


@flow(name="prepare-corpus", log_prints=True)
def prepare_corpus(
    config: ExperimentConfig = ExperimentConfig(),
    config_file: ConfigFile = None,
) -> Experiment:
    """Read, split and tokenise every domain; record token counts (the design's prior)."""
    config = resolve_config(config, config_file)  # issue 15: experiments kept as files
    try:
        return prepare_experiment_task(config)
    finally:
        close_writer(config.runtime.warehouse)
