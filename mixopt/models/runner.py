"""How proxies and final runs execute: the one place that decides it.

A swarm's proxies take one of four paths (`execution_mode`):

- ``isolated`` (`runtime.isolate`): each proxy alone in a child process (`launch.run_in_subprocess`), K = 1;
  a crash or kill of the child comes back as a failed result;
- ``child`` (`runtime.workers: 0` on a multi-core CPU, threads, no isolation): each batch of K proxies in
  its own single-threaded child process (`launch.run_batch_in_subprocess`), one per core;
- ``in_process`` (everything else, Dask workers included): a batch of K > 1 trains as one batched model
  (`swarm_trainer.train_batch`), a single proxy with `train.train_run`, in the worker thread or process.

K (`proxies_per_task`), the tasks at once (`task_workers`), the threads of a child, how a round is
spread over the workers (`round_group_size`) and how many final runs train at once (`final_workers`)
are decided here too; the sizing rules themselves live in `swarm_sizing`, the child processes in
`launch`. Torch is imported only where a device is resolved or a proxy trains.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mixopt.models import launch, swarm_sizing
from mixopt.runspec import RunResult, RunSpec

if TYPE_CHECKING:
    from mixopt.config import ModelConfig, RuntimeConfig

Mode = Literal["isolated", "child", "in_process"]
ISOLATED: Mode = "isolated"
CHILD: Mode = "child"
IN_PROCESS: Mode = "in_process"


def resolve_device(device: str) -> str:
    """`runtime.device` resolved ("auto": "cuda" when available, else "cpu")."""
    from mixopt.models.train import resolve_device as resolve  # torch is imported only here

    return resolve(device)


def task_workers(runtime: RuntimeConfig) -> int:
    """Swarm tasks at once: `runtime.workers`, or (0) `auto_workers` for the device (one per core on
    a CPU, one on a GPU)."""
    if runtime.workers:
        return runtime.workers
    return swarm_sizing.auto_workers(resolve_device(runtime.device))


def proxies_per_task(runtime: RuntimeConfig, model: ModelConfig, vocab_size: int, seq_len: int,
                     batch_size: int) -> int:
    """K, the proxies trained together as one batched model: `runtime.batch_k`, or (0) chosen from the
    proxy's size, the device and its free memory (split among the tasks at once) by `choose_batch_k`;
    1 when proxies are isolated."""
    if runtime.isolate:
        return 1
    if runtime.batch_k:
        return runtime.batch_k
    from mixopt.models.gpt import expected_params

    n_params, _ = expected_params(vocab_size, seq_len, model.n_layer, model.n_embd)
    device = resolve_device(runtime.device)
    share = swarm_sizing.available_memory_bytes(device) // task_workers(runtime)  # batches at once split it
    return swarm_sizing.choose_batch_k(n_params, device, share, tokens_per_step=batch_size * seq_len,
                                       n_layer=model.n_layer, n_embd=model.n_embd)


def execution_mode(runtime: RuntimeConfig) -> Mode:
    """Which of the paths a swarm task takes. A batch goes to its own single-threaded child process with
    `runtime.workers: 0` (auto) on a multi-core CPU and threads (not on Dask, whose workers are processes
    already, and not with `runtime.isolate`); an explicit `runtime.workers` keeps batches in this process."""
    if runtime.isolate:
        return ISOLATED
    child = (runtime.workers == 0 and runtime.dask_address is None and task_workers(runtime) > 1
             and resolve_device(runtime.device) == "cpu")  # fmt: skip
    return CHILD if child else IN_PROCESS


def child_threads(runtime: RuntimeConfig) -> int:
    """Torch threads of a batch's child process: `runtime.threads`, or the cores shared by the tasks."""
    return runtime.threads or swarm_sizing.recommended_threads(0, "cpu", task_workers(runtime))


def round_group_size(n_todo: int, workers: int, k: int) -> int:
    """Proxies per task in a round of `n_todo`: spread evenly over `workers`, each training the same
    number of batches of at most `k` (17 proxies, 1 worker, K = 16: batches of 9 and 8, not 16 and 1)."""
    if n_todo < 1:
        return max(1, k)
    per_worker = -(-n_todo // (workers * k))
    return -(-n_todo // (workers * per_worker))


def train_one(spec: RunSpec, runtime: RuntimeConfig, work: Path) -> RunResult:
    """One proxy: in a child process when isolated (its files go, a failure's stderr log stays), else here."""
    if runtime.isolate:
        result = launch.run_in_subprocess(spec, work)
        for suffix in (".spec.json", ".result.json") + ((".stderr.log",) if result.status != "failed" else ()):
            (work / f"{spec.run_id}{suffix}").unlink(missing_ok=True)  # a failure keeps its stderr log
        return result
    from mixopt.models.train import train_run  # torch is imported only where training happens

    return train_run(spec)


def train_group(specs: list[RunSpec], runtime: RuntimeConfig, work: Path) -> list[RunResult]:
    """K proxies as one batched model (each its own weights, data and optimizer state), results in spec
    order: in a child process on the `child` path (no progress bars: they would interleave; a clean
    batch leaves no files), else here."""
    if execution_mode(runtime) == CHILD:
        threads = child_threads(runtime)
        specs = [dataclasses.replace(s, threads=threads, progress=False) for s in specs]
        results = launch.run_batch_in_subprocess(specs, work)
        if all(r.status != "failed" for r in results):
            for suffix in ("spec.json", "result.json", "stderr.log"):
                (work / f"{specs[0].run_id}.batch.{suffix}").unlink(missing_ok=True)
        return results
    from mixopt.models.swarm_trainer import train_batch

    return train_batch(specs)


def final_workers(runtime: RuntimeConfig, devices: int) -> int:
    """Final runs at once: one for DDP runs (`final.devices` > 1), else `runtime.final_workers` or
    `auto_workers` of the configured device."""
    if devices > 1:
        return 1
    return runtime.final_workers or swarm_sizing.auto_workers(runtime.device)


def final_groups(specs: list[RunSpec], workers: int) -> list[list[RunSpec]]:
    """Final runs in groups of `workers` trained at once; with several at once each gets one thread
    (threads are not part of a run's identity). Sets the threads on the given specs."""
    groups = [specs[i:i + workers] for i in range(0, len(specs), workers)]
    if workers > 1:
        for spec in specs:
            spec.threads = 1
    return groups
