"""The swarm step as the flows drive it: train every proxy of the design not trained yet, record each result.

Proxies run as Prefect tasks on the swarm subflow's task runner (threads here, or a Dask cluster),
at most `runtime.workers` at a time on threads and one per Dask worker on Dask; results come back to
the flow's process, which writes the warehouse, one run per transaction, as each proxy finishes (on
the shared PostgreSQL store, Dask workers record their own results and the flow only confirms them).
A proxy task that fails is retried `runtime.retries` times with exponential backoff; one that still
fails is recorded as failed and the flow goes on. How the proxies of a task execute (K, threads,
child processes) is `models/runner.py`'s decision. `train_missing_proxies` must run inside a flow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import FlowRunContext
from prefect.futures import as_completed
from prefect.tasks import exponential_backoff

from mixopt.experiment import Experiment
from mixopt.models import runner
from mixopt.progress import SwarmProgress
from mixopt.runspec import RunResult, RunSpec
from mixopt.tasks import swarm
from mixopt.tasks.fidelity import n_extra_runs
from mixopt.tasks.swarm import plan_swarm_task, train_proxies_task, train_proxy_task
from mixopt.warehouse import Warehouse, writer

RETRY_BACKOFF_S = 2.0  # first retry delay of a proxy task; doubles on each further retry


@dataclass
class SwarmSummary:
    experiment_id: str
    trained: int
    reused: int
    ok: int
    failed: int
    diverged: int


def task_runner_for(exp: Experiment):
    """Threads in this process by default (`runner.task_workers` of them); Prefect's Dask task runner
    when an address is configured (`local:N`: a local cluster of N single-threaded worker processes)."""
    address = exp.cfg.runtime.dask_address
    if not address:
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=runner.task_workers(exp.cfg.runtime))
    from prefect_dask import DaskTaskRunner

    if address.startswith("local:"):
        n = int(address.split(":", 1)[1])
        return DaskTaskRunner(cluster_kwargs={"n_workers": n, "threads_per_worker": 1, "processes": True})
    return DaskTaskRunner(address=address)


def proxies_in_flight(exp: Experiment) -> int:
    """Tasks kept submitted: `runner.task_workers` on threads, the cluster's worker count on Dask."""
    if exp.cfg.runtime.dask_address:
        task_runner = getattr(FlowRunContext.get(), "task_runner", None)
        client = getattr(task_runner, "client", None)  # DaskTaskRunner: connects (or starts the cluster)
        if client is not None:
            return max(1, len(client.nthreads()))
    return runner.task_workers(exp.cfg.runtime)


def _outcomes(exp: Experiment, fut, group: list) -> list[RunResult]:
    """The results of one task (one proxy, or a batch of K); after its last retry failed, what the
    worker spooled, or a failed result carrying the task's error."""
    try:
        out = fut.result()
        return out if isinstance(out, list) else [out]
    except Exception as exc:
        return swarm.spooled_or_failed(exp, group, exc)


@dataclass
class _Round:
    """What a swarm run shares across its rounds: the warehouse, the tasks, progress and counts."""

    exp: Experiment
    wh: Warehouse
    bar: SwarmProgress
    artifact: object
    total: int
    k: int
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "failed": 0, "diverged": 0})

    def __post_init__(self) -> None:
        rt = self.exp.cfg.runtime
        retry = dict(retries=rt.retries, retry_delay_seconds=exponential_backoff(RETRY_BACKOFF_S))
        self.train_one = train_proxy_task.with_options(**retry)
        self.train_k = train_proxies_task.with_options(**retry)

    def submit(self, group: list[RunSpec]):
        exp = self.exp
        return self.train_one.submit(exp, group[0]) if len(group) == 1 else self.train_k.submit(exp, group, len(group))

    def record(self, group: list[RunSpec], results: list[RunResult]) -> None:
        for spec, result in zip(group, results):
            target = swarm.record_or_confirm(self.exp, self.wh, spec, result)
            self.counts[result.status] = self.counts.get(result.status, 0) + 1
            self.bar.finished(spec.run_id, result.status, target)
        update_progress_artifact(self.artifact, progress=100.0 * self.bar.done / max(1, self.total))

    def train(self, todo: list[RunSpec]) -> None:
        """Train one round, spread evenly over the workers, recording each task's results as it finishes."""
        size = runner.round_group_size(len(todo), proxies_in_flight(self.exp), self.k)
        pending, inflight = list(todo), {}
        while pending or inflight:
            limit = proxies_in_flight(self.exp) if pending else 0
            while pending and len(inflight) < limit:
                group, pending = pending[:size], pending[size:]
                inflight[self.submit(group)] = group
            fut = next(iter(as_completed(list(inflight))))
            group = inflight.pop(fut)
            self.record(group, _outcomes(self.exp, fut, group))


def train_missing_proxies(exp: Experiment) -> SwarmSummary:
    """Train the missing proxies of `exp` on the current flow's task runner: one pass for a Dirichlet
    design, one pass per round for a sequential one."""
    cfg = exp.cfg
    todo, reused = plan_swarm_task(exp)
    # a sequential design plans round by round; transfer and seed-repeat proxies come on top
    total = max(len(todo), cfg.swarm.n_proxies + n_extra_runs(exp) - reused)
    artifact = create_progress_artifact(progress=0.0, description=f"swarm of {exp.experiment_id}")
    bar = SwarmProgress(total=total, reused=reused, enabled=cfg.runtime.progress)
    rounds = _Round(exp, writer(exp.warehouse), bar, artifact, total, swarm.proxies_per_task(exp))
    attempted: set[str] = set()
    while todo:
        attempted.update(s.run_id for s in todo)
        rounds.train(todo)
        if cfg.design.method != "sequential":
            break
        todo = [s for s in plan_swarm_task(exp)[0] if s.run_id not in attempted]  # the next round
    update_progress_artifact(artifact, progress=100.0)
    c = rounds.counts
    return SwarmSummary(exp.experiment_id, len(attempted), reused, c["ok"], c["failed"], c["diverged"])


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


def extend_swarm(exp: Experiment, add_proxies: int) -> tuple[Experiment, int, int]:
    """`exp` with its swarm grown by `add_proxies` beyond the design mixtures the warehouse holds;
    also returns how many were held and the new swarm size."""
    held = swarm.held_design_mixtures(exp, writer(exp.warehouse))
    n = extended_size(held, add_proxies, exp.cfg.swarm.n_proxies)
    print(f"{exp.experiment_id}: {held} design mixtures held; extending the swarm to {n}")
    return with_swarm_size(exp, n), held, n
