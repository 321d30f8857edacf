"""The swarm flow: train every proxy of the design that is not trained yet, record each result.

The subflow runs on the task runner the experiment asks for (threads here, or a Dask cluster); the
rounds, retries and recording are `mixopt/tasks/swarm_run.py`, how proxies execute `models/runner.py`.
"""

from __future__ import annotations

from prefect import flow

from mixopt.config import ExperimentConfig
from mixopt.config.file import ConfigFile, resolve_config
from mixopt.experiment import Experiment
from mixopt.tasks.context import experiment_run
from mixopt.tasks.swarm_run import RETRY_BACKOFF_S, SwarmSummary, task_runner_for, train_missing_proxies

__all__ = ["RETRY_BACKOFF_S", "SwarmSummary", "run_swarm", "swarm_subflow", "train_swarm"]


@flow(name="swarm", log_prints=True)
def swarm_subflow(exp: Experiment) -> SwarmSummary:
    """Train the missing proxies of `exp` on this subflow's task runner."""
    return train_missing_proxies(exp)


def run_swarm(exp: Experiment) -> SwarmSummary:
    """Train the missing proxies of `exp` as a subflow on the configured task runner."""
    return swarm_subflow.with_options(task_runner=task_runner_for(exp))(exp)


@flow(name="train-swarm", log_prints=True)
def train_swarm(
    config: ExperimentConfig = ExperimentConfig(),
    config_file: ConfigFile = None,
) -> SwarmSummary:
    """Extend the experiment's swarm to `swarm.n_proxies` proxies and train the missing ones."""
    with experiment_run(resolve_config(config, config_file)) as exp:
        return run_swarm(exp)
