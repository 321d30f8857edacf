"""The opening and closing every flow shares: prepare the experiment, and close the warehouse writer after.

    config = resolve_config(config, config_file)
    with experiment_run(config) as exp:
        ...  # compose tasks on `exp`

`experiment_run` tokenises the corpus (or reuses its shards) and registers the experiment
(`prepare_experiment_task`); on the way out, normal or not, it closes the process's writer of the
configured warehouse, so a flow never leaves the DuckDB file locked.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from mixopt.config import ExperimentConfig
from mixopt.experiment import Experiment
from mixopt.tasks.corpus import prepare_experiment_task
from mixopt.warehouse import close_writer


@contextmanager
def experiment_run(config: ExperimentConfig) -> Iterator[Experiment]:
    """The prepared experiment of a resolved `config`; the warehouse writer is closed on exit."""
    try:
        yield prepare_experiment_task(config)
    finally:
        close_writer(config.runtime.warehouse)
