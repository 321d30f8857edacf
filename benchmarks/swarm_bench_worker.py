"""The worker side of `swarm_throughput.py`: trains one size's modes in this process and times them.

Run through `swarm_throughput.py --worker ...` (a fresh process per call). Also holds what both
sides share: the proxy sizes, the FLOP count and the matmul reference measurements.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SIZES: dict[str, dict[str, int]] = {
    "small": dict(n_layer=1, n_embd=32, n_head=2, vocab=512, seq_len=64, batch_size=16),
    "default": dict(n_layer=2, n_embd=64, n_head=4, vocab=2048, seq_len=128, batch_size=16),
    "large": dict(n_layer=4, n_embd=128, n_head=4, vocab=2048, seq_len=128, batch_size=16),
}


TINY = dict(n_layer=1, n_embd=16, n_head=2, vocab=64, seq_len=16, batch_size=2)
"""A proxy so small that training it only loads code (before a memory measurement)."""


def model_counts(size: dict[str, int]) -> tuple[int, int]:
    """(total parameters, FLOPs per training token) of a proxy of this size."""
    from mixopt.models.gpt import expected_params

    d, layers, vocab, seq = size["n_embd"], size["n_layer"], size["vocab"], size["seq_len"]
    total, non_embedding = expected_params(vocab, seq, layers, d)
    return total, 6 * (non_embedding + vocab * d) + 12 * layers * seq * d


def matmul_flops(device: str, seconds: float = 1.5) -> float:
    """Dense matmul FLOP/s: fp32 2048^2 on CPU (best of repeats), bf16 8192^2 on CUDA."""
    import torch

    n, dtype = (8192, torch.bfloat16) if device == "cuda" else (2048, torch.float32)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    best, end = 0.0, time.perf_counter() + seconds
    for _ in range(2):
        a @ b
    while time.perf_counter() < end or best == 0.0:
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t))
    return best


def matmul_flops_per_cpu_second(seconds: float = 0.3) -> float:
    """fp32 matmul FLOPs per CPU-second of one thread (2048^2, best of repeats): the per-core peak,
    unaffected by how much of the machine other jobs take."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        n = 2048
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        best, end = 0.0, time.perf_counter() + seconds
        while time.perf_counter() < end or best == 0.0:
            t = time.process_time()
            a @ b
            best = max(best, 2 * n**3 / max(1e-9, time.process_time() - t))
        return best
    finally:
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------------------
# Worker: one mode of one size in this (fresh) process; prints one JSON line.


def _specs(size: dict[str, int], k: int, steps: int, device: str, threads: int, folder: Path,
           compile: str = "auto") -> list[Any]:
    """K proxy specs of `size` over two random-token domains, `steps` steps each."""
    import numpy as np

    from mixopt.config import ModelConfig, TrainConfig
    from mixopt.runspec import DomainShard, RunSpec

    rng = np.random.default_rng(0)
    shards = []
    for name in ("a", "b"):
        for split, n in (("train", 200_000), ("val", 20_000)):
            rng.integers(0, size["vocab"], n).astype(np.uint16).tofile(folder / f"{name}.{split}.bin")
        shards.append(DomainShard(name, str(folder / f"{name}.train.bin"), str(folder / f"{name}.val.bin"),
                                  200_000, 20_000))
    model = ModelConfig(n_layer=size["n_layer"], n_embd=size["n_embd"], n_head=size["n_head"])
    tokens = steps * size["batch_size"] * size["seq_len"]
    train = TrainConfig(model=model, tokens=tokens, seq_len=size["seq_len"], batch_size=size["batch_size"],
                        eval_batches=1)
    return [
        RunSpec(run_id=f"p{i}", role="proxy", label="bench", domains=shards,
                weights=[0.3 + 0.4 * i / max(1, k - 1), 0.7 - 0.4 * i / max(1, k - 1)],
                train=train.model_dump(), vocab_size=size["vocab"], seed=i, device=device, threads=threads,
                out_dir=str(folder / "out"), compile=compile)
        for i in range(k)
    ]  # fmt: skip


class _StepTimer:
    """A Lightning callback recording every training step's wall time and process CPU time (all
    threads): CPU time measures the work done, whatever share of the cores other jobs took."""

    def __init__(self) -> None:
        import lightning.pytorch as pl

        class Timer(pl.Callback):
            def __init__(inner) -> None:
                inner.times: list[tuple[float, float]] = []
                inner._last: tuple[float, float] | None = None

            def on_train_batch_start(inner, trainer: Any, *args: Any) -> None:
                if inner._last is None:
                    inner._last = (time.perf_counter(), time.process_time())

            def on_train_batch_end(inner, trainer: Any, *args: Any) -> None:
                if trainer.strategy.root_device.type == "cuda":
                    import torch

                    torch.cuda.synchronize()
                now = (time.perf_counter(), time.process_time())
                inner.times.append((now[0] - inner._last[0], now[1] - inner._last[1]))
                inner._last = now

        self.callback = Timer()


def _patched_trainer(module: Any, callback: Any) -> None:
    """Make `module.pl.Trainer` add `callback`: times the real `train_run` / `train_batch` loops."""
    import lightning.pytorch as pl

    class _PL:
        def __getattr__(self, name: str) -> Any:
            return getattr(pl, name)

        @staticmethod
        def Trainer(*args: Any, callbacks: list[Any] | None = None, **kwargs: Any) -> Any:  # noqa: N802
            return pl.Trainer(*args, callbacks=[*(callbacks or []), callback], **kwargs)

    module.pl = _PL()


def _train_mode(mode: str, size: dict[str, int], steps: int, args: argparse.Namespace, folder: Path) -> list[Any]:
    """Train one mode for `steps` steps (per run); the (wall, CPU) step times of every run."""
    from mixopt.models import swarm_trainer, train

    k = 1 if mode == "sequential" else int(mode.split("_")[1])
    times: list[float] = []
    for _ in range(args.seq_runs if mode == "sequential" else 1):
        timer = _StepTimer().callback
        specs = _specs(size, k, steps, args.device, args.threads, folder, args.compile)
        if mode == "sequential":  # the real train_run, one proxy after another
            _patched_trainer(train, timer)
            results = [train.train_run(specs[0])]
        else:
            _patched_trainer(swarm_trainer, timer)
            results = swarm_trainer.train_batch(specs)
        bad = [r.error for r in results if r.status != "ok"]
        if bad:
            raise RuntimeError(f"{mode} failed: {bad[0]}")
        times.append(timer.times)
    return times


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Throughput: rounds, each training every mode of `--plan` in turn (interleaved, so
    that load from other jobs affects all modes alike); or, with `--memory`, one mode's peak memory."""
    folder = Path(tempfile.mkdtemp(prefix="swarm_bench_"))
    try:
        return _work(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _work(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """`worker`'s body, with shards and outputs under `folder`."""
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    size = SIZES[args.size]
    plan = [(m, int(w), int(n), int(r)) for m, w, n, r in (item.split(":") for item in args.plan.split(","))]
    if args.memory:
        mode, warmup, steps, _ = plan[0]
        for warm in ("sequential", "batched_1"):  # load the code paths first: count training memory only
            _train_mode(warm, TINY, 2, args, folder)
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        rss0 = _rss_bytes()
        _train_mode(mode, size, warmup + steps, args, folder)
        if args.device == "cuda":
            return {"peak_mem_bytes": torch.cuda.max_memory_allocated()}
        return {"peak_mem_bytes": max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0)}
    if args.start_at:  # line up with the other processes of a multi-process layout
        time.sleep(max(0.0, args.start_at - time.time()))
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "matmul_cpu": [],
                           "modes": {p[0]: [] for p in plan}, "cpu": {p[0]: [] for p in plan}}  # fmt: skip
    for i in range(max(p[3] for p in plan)):
        for mode, warmup, steps, rounds in plan:
            if i >= rounds:
                continue
            timed = [t for run in _train_mode(mode, size, warmup + steps, args, folder) for t in run[warmup:]]
            out["modes"][mode].append(statistics.median(t[0] for t in timed))
            out["cpu"][mode].append(statistics.median(t[1] for t in timed))
        if args.device == "cpu":
            out["matmul_cpu"].append(matmul_flops_per_cpu_second())
    return out


def _rss_bytes() -> int:
    """Resident set size of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
