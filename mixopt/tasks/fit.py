"""Prefect task: cross-validate the regressors, keep the best, propose a mixture."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from mixopt.experiment import Experiment
from mixopt.stages.fit import FitOutcome, fit_and_propose
from mixopt.warehouse import writer


@task(name="fit-and-propose", cache_policy=NONE)
def fit_and_propose_task(exp: Experiment) -> FitOutcome:
    """Fit every candidate regressor with k-fold CV on the finished proxies and propose a mixture."""
    return fit_and_propose(exp, writer(exp.warehouse))
