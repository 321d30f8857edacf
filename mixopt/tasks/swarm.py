"""Prefect tasks of the swarm: plan the proxies and train one (the flow records results itself)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from mixopt.experiment import Experiment
from mixopt.runspec import RunResult, RunSpec
from mixopt.stages import swarm
from mixopt.warehouse import writer


class ProxyFailed(RuntimeError):
    """A proxy's training failed (Prefect retries the task; the last failure is recorded)."""


@task(name="plan-swarm", cache_policy=NONE)
def plan_swarm_task(exp: Experiment) -> tuple[list[RunSpec], int]:
    """Extend the design to n_proxies mixtures; return the proxies still to train and the count done."""
    return swarm.plan_swarm(exp, writer(exp.warehouse))


@task(name="train-proxies", task_run_name="proxies-{specs[0].run_id}-k{k}", cache_policy=NONE, retries=1,
      retry_delay_seconds=1)
def train_proxies_task(exp: Experiment, specs: list[RunSpec], k: int) -> list[RunResult]:
    """Train k proxies as one batched model; if every one of them failed, raise so Prefect retries."""
    results = swarm.train_group_and_spool(exp, specs)
    if all(r.status == "failed" for r in results):
        raise ProxyFailed(f"all {len(specs)} proxies of the batch failed: {results[0].error}")
    return results


@task(name="train-proxy", task_run_name="proxy-{spec.run_id}", cache_policy=NONE, retries=1, retry_delay_seconds=1)
def train_proxy_task(exp: Experiment, spec: RunSpec) -> RunResult:
    """Train one proxy; a failure raises (so Prefect retries) after the result is spooled."""
    result = swarm.train_and_spool(exp, spec)
    if result.status == "failed":
        raise ProxyFailed(f"proxy {spec.run_id} failed: {result.error}")
    return result
