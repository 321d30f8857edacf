"""The recurring flow: grow an experiment's swarm by a batch of new proxies, then refit and re-propose.

Deployed as `extend-and-refit` with a (nightly) cron schedule in prefect.yaml. Each run looks up how
many design mixtures the warehouse already holds for the experiment, raises `swarm.n_proxies` by
`add_proxies` beyond that, trains only the proxies not finished yet (run ids are content hashes, so a
finished proxy is never trained again, across flow runs too), refits the regressors on every
finished proxy and stores a new proposal. The final comparison is left to the `final-run` deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from prefect import flow
from pydantic import Field

from mixopt.config import ExperimentConfig
from mixopt.config.file import ConfigFile, resolve_config
from mixopt.flows.swarm import SwarmSummary, run_swarm
from mixopt.tasks.context import experiment_run
from mixopt.tasks.fit import FitOutcome, fit_and_propose_task
from mixopt.tasks.report import report_task
from mixopt.tasks.swarm_run import extend_swarm, extended_size, with_swarm_size

__all__ = ["ExtendResult", "extend_and_refit", "extended_size", "with_swarm_size"]


@dataclass
class ExtendResult:
    """What `extend_and_refit` returns."""

    experiment_id: str
    held_before: int
    n_proxies: int
    swarm: SwarmSummary
    fit: FitOutcome


@flow(name="extend-and-refit", log_prints=True)
def extend_and_refit(
    config: ExperimentConfig = ExperimentConfig(),
    add_proxies: Annotated[int, Field(ge=1, le=10_000, description="New proxies (mixtures) to train in this run.")] = 8,
    config_file: ConfigFile = None,
) -> ExtendResult:
    """Add `add_proxies` proxies to the experiment's swarm, train only those, refit and re-propose."""
    with experiment_run(resolve_config(config, config_file)) as exp:
        exp, held, n = extend_swarm(exp, add_proxies)
        summary = run_swarm(exp)
        outcome = fit_and_propose_task(exp)
        report_task(exp)
        return ExtendResult(exp.experiment_id, held, n, summary, outcome)
