"""The swarm flow: train every proxy of the design that is not trained yet, record each result.

Proxies run as Prefect tasks on the flow's task runner, at most `swarm.workers` at a time; results
come back to this (the flow's) process, which alone writes the warehouse, one run per transaction,
as each proxy finishes. A proxy that fails after its retries is recorded as failed; the flow goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mixopt.config import ExperimentConfig
from mixopt.experiment import Experiment
from mixopt.runspec import RunResult
from mixopt.stages import swarm
from mixopt.tasks.corpus import prepare_experiment_task
from mixopt.tasks.swarm import plan_swarm_task, train_proxy_task
from mixopt.warehouse import close_writer, writer


@dataclass
class SwarmSummary:
    experiment_id: str
    trained: int
    reused: int
    ok: int
    failed: int
    diverged: int


def _outcome(exp: Experiment, fut, spec) -> RunResult:
    try:
        return fut.result()
    except Exception as exc:  # the task failed after its retries: keep what the worker spooled
        path = swarm.spool_path(exp, spec.run_id)
        if path.exists():
            import json

            return RunResult(**json.loads(path.read_text())["result"])
        return RunResult(run_id=spec.run_id, status="failed", error=str(exc)[:500])


def run_swarm(exp: Experiment) -> SwarmSummary:
    """Train the missing proxies of `exp` (inside a running flow)."""
    cfg = exp.cfg
    todo, reused = plan_swarm_task(exp)
    wh = writer(exp.warehouse)
    counts = {"ok": 0, "failed": 0, "diverged": 0}
    artifact = create_progress_artifact(progress=0.0, description=f"swarm of {exp.experiment_id}")
    bar = Progress(TextColumn("swarm"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("eta"), TimeRemainingColumn(), disable=not cfg.runtime.progress, transient=False)
    pending, inflight = list(todo), {}
    with bar:
        bar_task = bar.add_task("proxies", total=len(todo))
        while pending or inflight:
            while pending and len(inflight) < cfg.swarm.workers:
                spec = pending.pop(0)
                inflight[train_proxy_task.submit(exp, spec)] = spec
            fut = next(iter(as_completed(list(inflight))))
            spec = inflight.pop(fut)
            result = _outcome(exp, fut, spec)
            swarm.record_result(exp, wh, spec, result)
            counts[result.status] = counts.get(result.status, 0) + 1
            bar.advance(bar_task)
            done = len(todo) - len(pending) - len(inflight)
            update_progress_artifact(artifact, progress=100.0 * done / max(1, len(todo)))
    update_progress_artifact(artifact, progress=100.0)
    return SwarmSummary(exp.experiment_id, len(todo), reused, counts["ok"], counts["failed"], counts["diverged"])


@flow(name="train-swarm", log_prints=True)
def train_swarm(config: ExperimentConfig = ExperimentConfig()) -> SwarmSummary:
    """Extend the experiment's swarm to `swarm.n_proxies` proxies and train the missing ones."""
    try:
        return run_swarm(prepare_experiment_task(config))
    finally:
        close_writer(config.runtime.warehouse)
