"""The corpus flow: tokenise the domains and register the experiment (the prior)."""

from __future__ import annotations

from prefect import flow

from mixopt.config import ExperimentConfig
from mixopt.config.file import ConfigFile, resolve_config
from mixopt.experiment import Experiment
from mixopt.tasks.context import experiment_run


@flow(name="prepare-corpus", log_prints=True)
def prepare_corpus(
    config: ExperimentConfig = ExperimentConfig(),
    config_file: ConfigFile = None,
) -> Experiment:
    """Read, split and tokenise every domain; record token counts (the design's prior)."""
    with experiment_run(resolve_config(config, config_file)) as exp:
        return exp
