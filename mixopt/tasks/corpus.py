"""Prefect task: ingest the corpus and register the experiment."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from mixopt.config import ExperimentConfig
from mixopt.experiment import Experiment
from mixopt.stages.corpus import prepare_experiment
from mixopt.warehouse import writer


@task(name="prepare-corpus", cache_policy=NONE)
def prepare_experiment_task(config: ExperimentConfig) -> Experiment:
    """Tokenise the domains (reusing shards whose inputs did not change) and record the experiment."""
    return prepare_experiment(config, writer(config.runtime.warehouse), progress=config.runtime.progress)
