"""The corpus flow: tokenise the domains and register the experiment (the prior)."""

from __future__ import annotations

from prefect import flow

from mixopt.config import ExperimentConfig
from mixopt.experiment import Experiment
from mixopt.tasks.corpus import prepare_experiment_task
from mixopt.warehouse import close_writer


@flow(name="prepare-corpus", log_prints=True)
def prepare_corpus(config: ExperimentConfig = ExperimentConfig()) -> Experiment:
    """Read, split and tokenise every domain; record token counts (the design's prior)."""
    try:
        return prepare_experiment_task(config)
    finally:
        close_writer(config.runtime.warehouse)
