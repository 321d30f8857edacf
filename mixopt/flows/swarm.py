"""The swarm flow: train every proxy of the design that is not trained yet, record each result.

Proxies run as Prefect tasks on the swarm subflow's task runner (threads here, or a Dask cluster),
at most `runtime.workers` at a time on threads and one per Dask worker on Dask; results come back to
this (the flow's) process, which writes the warehouse, one run per transaction, as each proxy
finishes (on the shared PostgreSQL store, Dask workers record their own results and the flow only
confirms them). A proxy task that fails is retried `runtime.retries` times with exponential backoff; one
that still fails is recorded as failed and the flow goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import FlowRunContext
from prefect.futures import as_completed
from prefect.tasks import exponential_backoff

from mixopt.config import ExperimentConfig
from mixopt.config.file import ConfigFile, resolve_config
from mixopt.experiment import Experiment
from mixopt.progress import SwarmProgress
from mixopt.runspec import RunResult
from mixopt.tasks import swarm
from mixopt.tasks.corpus import prepare_experiment_task
from mixopt.tasks.fidelity import n_extra_runs
from mixopt.tasks.swarm import plan_swarm_task, train_proxies_task, train_proxy_task
from mixopt.warehouse import close_writer, writer


@dataclass
class SwarmSummary:
    experiment_id: str
    trained: int
    reused: int
    ok: int
    failed: int
    diverged: int


def _outcomes(exp: Experiment, fut, group: list) -> list[RunResult]:
    """The results of one task (one proxy, or a batch of K); after its last retry failed, what the
    worker spooled, or a failed result carrying the task's error."""
    try:
        out = fut.result()
        return out if isinstance(out, list) else [out]
    except Exception as exc:
        return swarm.spooled_or_failed(exp, group, exc)


RETRY_BACKOFF_S = 2.0  # first retry delay of a proxy task; doubles on each further retry


def proxies_in_flight(exp: Experiment) -> int:
    """Proxies kept submitted: `runtime.workers` (resolved) on threads, the cluster's worker count on Dask."""
    if exp.cfg.runtime.dask_address:
        runner = getattr(FlowRunContext.get(), "task_runner", None)
        client = getattr(runner, "client", None)  # DaskTaskRunner: connects (or starts the cluster)
        if client is not None:
            return max(1, len(client.nthreads()))
    return swarm.task_workers(exp)


@flow(name="swarm", log_prints=True)
def swarm_subflow(exp: Experiment) -> SwarmSummary:
    """Train the missing proxies of `exp` on this subflow's task runner."""
    cfg = exp.cfg
    todo, reused = plan_swarm_task(exp)
    wh = writer(exp.warehouse)
    counts = {"ok": 0, "failed": 0, "diverged": 0}
    # a sequential design plans round by round; transfer and seed-repeat proxies come on top
    total = max(len(todo), cfg.swarm.n_proxies + n_extra_runs(exp) - reused)
    artifact = create_progress_artifact(progress=0.0, description=f"swarm of {exp.experiment_id}")
    bar = SwarmProgress(total=total, reused=reused, enabled=cfg.runtime.progress)
    retry = dict(retries=cfg.runtime.retries, retry_delay_seconds=exponential_backoff(RETRY_BACKOFF_S))
    train_one, train_k = train_proxy_task.with_options(**retry), train_proxies_task.with_options(**retry)
    k = swarm.proxies_per_task(exp)
    attempted: set[str] = set()
    while todo:  # one pass for a Dirichlet design; one pass per round for a sequential one
        attempted.update(s.run_id for s in todo)
        pending, inflight = list(todo), {}
        # spread a round evenly over the workers: each trains the same number of batches of <= k
        workers = proxies_in_flight(exp)
        per_worker = -(-len(todo) // (workers * k))
        k_round = -(-len(todo) // (workers * per_worker))
        while pending or inflight:
            limit = proxies_in_flight(exp) if pending else 0
            while pending and len(inflight) < limit:
                group, pending = pending[:k_round], pending[k_round:]
                fut = (train_one.submit(exp, group[0]) if len(group) == 1
                       else train_k.submit(exp, group, len(group)))
                inflight[fut] = group
            fut = next(iter(as_completed(list(inflight))))
            group = inflight.pop(fut)
            for spec, result in zip(group, _outcomes(exp, fut, group)):
                target = swarm.record_or_confirm(exp, wh, spec, result)
                counts[result.status] = counts.get(result.status, 0) + 1
                bar.finished(spec.run_id, result.status, target)
            update_progress_artifact(artifact, progress=100.0 * bar.done / max(1, total))
        if cfg.design.method != "sequential":
            break
        todo = [s for s in plan_swarm_task(exp)[0] if s.run_id not in attempted]  # the next round
    update_progress_artifact(artifact, progress=100.0)
    return SwarmSummary(exp.experiment_id, len(attempted), reused, counts["ok"], counts["failed"], counts["diverged"])


def task_runner_for(exp: Experiment):
    """Threads in this process by default; Prefect's Dask task runner when an address is configured."""
    cfg = exp.cfg
    address = cfg.runtime.dask_address
    if not address:
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=swarm.task_workers(exp))
    from prefect_dask import DaskTaskRunner

    if address.startswith("local:"):
        n = int(address.split(":", 1)[1])
        return DaskTaskRunner(cluster_kwargs={"n_workers": n, "threads_per_worker": 1, "processes": True})
    return DaskTaskRunner(address=address)


def run_swarm(exp: Experiment) -> SwarmSummary:
    """Train the missing proxies of `exp` as a subflow on the configured task runner."""
    return swarm_subflow.with_options(task_runner=task_runner_for(exp))(exp)


@flow(name="train-swarm", log_prints=True)
def train_swarm(
    config: ExperimentConfig = ExperimentConfig(),
    config_file: ConfigFile = None,
) -> SwarmSummary:
    """Extend the experiment's swarm to `swarm.n_proxies` proxies and train the missing ones."""
    config = resolve_config(config, config_file)  # issue 15: experiments kept as files
    try:
        return run_swarm(prepare_experiment_task(config))
    finally:
        close_writer(config.runtime.warehouse)
