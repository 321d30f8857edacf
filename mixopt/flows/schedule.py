"""The recurring flow: grow an experiment's swarm by a batch of new proxies, then refit and re-propose.

Deployed as `extend-and-refit` with a (nightly) cron schedule in prefect.yaml. Each run looks up how
many design mixtures the warehouse already holds for the experiment, raises `swarm.n_proxies` by
`add_proxies` beyond that, trains only the proxies not finished yet (run ids are content hashes, so a
finished proxy is never trained again, across flow runs too), refits the regressors on every
finished proxy and stores a new proposal. The final comparison is left to the `final-run` deployment.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated

from prefect import flow
from pydantic import Field

from mixopt.config import ExperimentConfig
from mixopt.config.file import ConfigFile, resolve_config
from mixopt.experiment import Experiment
from mixopt.flows.swarm import SwarmSummary, run_swarm
from mixopt.tasks.corpus import prepare_experiment_task
from mixopt.tasks.fit import FitOutcome, fit_and_propose_task
from mixopt.tasks.report import report_task
from mixopt.tasks.swarm import held_design_mixtures
from mixopt.warehouse import close_writer, writer


@dataclass
class ExtendResult:
    """What `extend_and_refit` returns."""

    experiment_id: str
    held_before: int
    n_proxies: int
    swarm: SwarmSummary
    fit: FitOutcome


def extended_size(held: int, add_proxies: int, configured: int) -> int:
    """The swarm size after extending: `held + add_proxies`; an experiment with no design mixture
    yet starts with its configured `swarm.n_proxies` (at least `add_proxies`)."""
    if add_proxies < 1:
        raise ValueError(f"add_proxies must be at least 1, got {add_proxies}")
    return held + add_proxies if held else max(configured, add_proxies, 2)


def with_swarm_size(exp: Experiment, n_proxies: int) -> Experiment:
    """The same experiment (same id: the swarm size is not part of its identity) with `n_proxies`."""
    cfg = exp.cfg
    cfg.swarm.n_proxies = n_proxies
    return dataclasses.replace(exp, config=cfg.model_dump(mode="json"), config_hash=cfg.config_hash())


@flow(name="extend-and-refit", log_prints=True)
def extend_and_refit(
    config: ExperimentConfig = ExperimentConfig(),
    add_proxies: Annotated[int, Field(ge=1, le=10_000, description="New proxies (mixtures) to train in this run.")] = 8,
    config_file: ConfigFile = None,
) -> ExtendResult:
    """Add `add_proxies` proxies to the experiment's swarm, train only those, refit and re-propose."""
    config = resolve_config(config, config_file)  # issue 15: experiments kept as files
    try:
        exp = prepare_experiment_task(config)
        held = held_design_mixtures(exp, writer(exp.warehouse))
        n = extended_size(held, add_proxies, config.swarm.n_proxies)
        print(f"{exp.experiment_id}: {held} design mixtures held; extending the swarm to {n}")
        exp = with_swarm_size(exp, n)
        summary = run_swarm(exp)
        outcome = fit_and_propose_task(exp)
        report_task(exp)
        return ExtendResult(exp.experiment_id, held, n, summary, outcome)
    finally:
        close_writer(config.runtime.warehouse)
