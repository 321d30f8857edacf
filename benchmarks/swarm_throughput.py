"""Swarm training throughput: sequential `train_run` versus K proxies batched by `train_batch`.

For each proxy size and mode this starts a fresh Python process (so peak memory is that mode's
own), trains warm-up steps, then times a fixed number of steps and reports aggregate training
tokens/s, achieved model FLOP/s and peak memory. Modes: `sequential` (the real `train_run`, one
proxy after another), `batched_K` (one `train_batch` of K proxies) and `batched_K_xP` (P processes
with one thread each, each training a batch of K, all at once: aggregate over the processes).

FLOPs per token = 6 x (parameters excluding the input embeddings; the tied LM head counts) +
12 x layers x context x width (attention scores and values, forward and backward). The reference is
the machine's dense matmul speed (fp32 on CPU with all threads, bf16 on CUDA), measured in this run.
Each mode's speed is the median step time after warm-up, so a brief stall from other jobs on a
shared machine moves it less than a mean would.

    python benchmarks/swarm_throughput.py --json out.json            # full run (a few minutes, 2 cores)
    python benchmarks/swarm_throughput.py --quick --sizes small      # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
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


def _specs(size: dict[str, int], k: int, steps: int, device: str, threads: int, folder: Path) -> list[Any]:
    """K proxy specs of `size` over two random-token domains, `steps` steps each."""
    import numpy as np

    from mixopt.config import ModelConfig, TrainConfig
    from mixopt.runspec import DomainShard, RunSpec

    rng = np.random.default_rng(0)
    shards = []
    for name in ("a", "b"):
        for split, n in (("train", 200_000), ("val", 20_000)):
            rng.integers(0, size["vocab"], n).astype(np.uint16).tofile(folder / f"{name}.{split}.bin")
        shards.append(DomainShard(name, str(folder / f"{name}.train.bin"), str(folder / f"{name}.val.bin"), 200_000, 20_000))
    model = ModelConfig(n_layer=size["n_layer"], n_embd=size["n_embd"], n_head=size["n_head"])
    tokens = steps * size["batch_size"] * size["seq_len"]
    train = TrainConfig(model=model, tokens=tokens, seq_len=size["seq_len"], batch_size=size["batch_size"], eval_batches=1)
    return [
        RunSpec(run_id=f"p{i}", role="proxy", label="bench", domains=shards, weights=[0.3 + 0.4 * i / max(1, k - 1), 0.7 - 0.4 * i / max(1, k - 1)],
                train=train.model_dump(), vocab_size=size["vocab"], seed=i, device=device, threads=threads, out_dir=str(folder / "out"))
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
        specs = _specs(size, k, steps, args.device, args.threads, folder)
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
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    size = SIZES[args.size]
    folder = Path(tempfile.mkdtemp(prefix="swarm_bench_"))
    plan = [(m, int(w), int(n), int(r)) for m, w, n, r in (item.split(":") for item in args.plan.split(","))]
    if args.memory:
        mode, warmup, steps, _ = plan[0]
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        rss0 = _rss_bytes()
        _train_mode(mode, size, warmup + steps, args, folder)
        if args.device == "cuda":
            return {"peak_mem_bytes": torch.cuda.max_memory_allocated()}
        return {"peak_mem_bytes": max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0)}
    if args.start_at:  # line up with the other processes of a multi-process layout
        time.sleep(max(0.0, args.start_at - time.time()))
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "matmul_local": [], "matmul_cpu": [],
                           "modes": {p[0]: [] for p in plan}, "cpu": {p[0]: [] for p in plan}}  # fmt: skip
    for i in range(max(p[3] for p in plan)):
        for mode, warmup, steps, rounds in plan:
            if i >= rounds:
                continue
            timed = [t for run in _train_mode(mode, size, warmup + steps, args, folder) for t in run[warmup:]]
            out["modes"][mode].append(statistics.median(t[0] for t in timed))
            out["cpu"][mode].append(statistics.median(t[1] for t in timed))
        out["matmul_local"].append(matmul_flops(args.device, seconds=0.3))
        if args.device == "cpu":
            out["matmul_cpu"].append(matmul_flops_per_cpu_second())
    return out


def _rss_bytes() -> int:
    """Resident set size of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ----------------------------------------------------------------------------------------------
# Parent: one subprocess (or P at once) per mode, then the table.


def _steps_for(args: argparse.Namespace, size: dict[str, int], k: int, reference: float) -> tuple[int, int, int]:
    """(warm-up steps, timed steps, rounds) of a mode: about `--seconds` of timed work per round,
    assuming 40% of matmul speed; a mode with steps over 5 s runs 1 + 1 steps in one round only."""
    _, fpt = model_counts(size)
    est = k * size["batch_size"] * size["seq_len"] * fpt / (0.4 * reference)
    if est > 5.0:
        return 1, 1, 1
    timed = max(args.min_steps, min(args.max_steps, round(args.seconds / est)))
    return (1 if est > 1.0 else 3), timed, args.rounds


def _start(args: argparse.Namespace, size_name: str, plan: str, threads: int, extra: list[str]) -> subprocess.Popen[str]:
    """Start one worker process."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--size", size_name, "--plan", plan,
           "--threads", str(threads), "--device", args.device, "--seq-runs", str(args.seq_runs), *extra]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if args.passive:
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _answer(child: subprocess.Popen[str]) -> dict[str, Any]:
    """A worker's JSON answer; RuntimeError with its last stderr line if it failed."""
    out, err = child.communicate()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if child.returncode or not lines:
        raise RuntimeError((err.strip().splitlines() or ["worker died without output"])[-1])
    return json.loads(lines[-1])


def measure_size(args: argparse.Namespace, size_name: str, reference: float) -> dict[str, Any]:
    """Every mode of one size: peak memory (a fresh process each), then throughput (interleaved)."""
    from mixopt.models.swarm_sizing import available_memory_bytes, estimate_memory_bytes

    size = SIZES[size_name]
    params, fpt = model_counts(size)
    tokens_per_step = size["batch_size"] * size["seq_len"]
    modes = ["sequential"] + [f"batched_{k}" for k in args.k_list]
    rows: dict[str, Any] = {}
    steps: dict[str, str] = {}
    ks: dict[str, int] = {}
    mems: dict[str, int] = {}
    for mode in modes:
        k = 1 if mode == "sequential" else int(mode.split("_")[1])
        need = estimate_memory_bytes(params, k, tokens_per_step, size["n_layer"], size["n_embd"], size["vocab"])
        if need > args.max_mem_frac * available_memory_bytes(args.device):
            rows[mode] = {"error": f"skipped: needs about {need / 2**30:.1f} GiB"}
            continue
        warmup, timed, rounds = _steps_for(args, size, k, reference)
        steps[mode], ks[mode] = f"{mode}:{warmup}:{timed}:{rounds}", k
    # Peak memory: one fresh process per mode (all at once: memory does not care about speed).
    children = {m: _start(args, size_name, f"{m}:1:1:1", args.threads, ["--memory"]) for m in steps}
    for mode, child in children.items():
        try:
            mems[mode] = _answer(child)["peak_mem_bytes"]
        except RuntimeError as exc:
            rows[mode] = {"error": str(exc)}
            steps.pop(mode)
    layouts = [("", args.threads, 1, list(steps))]
    if args.device == "cpu" and args.procs > 1:
        layouts.append((f"_x{args.procs}", 1, args.procs, [m for m in steps if m == "sequential" or int(m.split("_")[1]) in args.parallel_k_list]))
    for suffix, threads, procs, names in layouts:
        if not names:
            continue
        plan = ",".join(steps[m] for m in names)
        extra: list[str] = []
        if procs > 1:  # the processes start training together, after their imports
            extra += ["--start-at", f"{time.time() + 10.0 + 5.0 * procs:.3f}"]
        try:
            answers = [_answer(c) for c in [_start(args, size_name, plan, threads, extra) for _ in range(procs)]]
        except RuntimeError as exc:
            for m in names:
                rows[m + suffix] = {"error": str(exc)}
            continue
        local = statistics.median(x for a in answers for x in a["matmul_local"])
        per_core = [x for a in answers for x in a["matmul_cpu"]]
        for m in names:
            k = ks[m]
            rates = [[k * tokens_per_step / t for t in a["modes"][m]] for a in answers]
            total = sum(statistics.median(r) for r in rates)  # median over rounds, summed over processes
            cpu_rate = statistics.median(k * tokens_per_step / t for a in answers for t in a["cpu"][m])
            row = {"tokens_per_s": total, "flops": total * fpt, "peak_mem_bytes": procs * mems[m],
                   "threads": answers[0]["threads"], "processes": procs, "rounds": [sum(x) for x in zip(*rates)],
                   "tokens_per_cpu_s": cpu_rate, "flops_per_cpu_s": cpu_rate * fpt, "matmul_flops_local": local}  # fmt: skip
            if per_core:
                row["matmul_flops_per_cpu_s"] = statistics.median(per_core)
            rows[m + suffix] = row
        done = ", ".join(f"{m + suffix} {rows[m + suffix]['tokens_per_s']:,.0f}" for m in names)
        print(f"  {size_name}: {done} tokens/s", flush=True)
    order = modes + [m + f"_x{args.procs}" for m in modes]
    return {m: rows[m] for m in order if m in rows}


def markdown(report: dict[str, Any]) -> str:
    """The results as a markdown table (one row per size and mode)."""
    ref, per_core = report["matmul_flops"], report.get("matmul_flops_per_cpu_s")
    head = (f"Device: {report['device_name']}; dense matmul ({report['matmul_dtype']}, all threads): "
            f"**{ref / 1e9:.1f} GFLOP/s**")  # fmt: skip
    if per_core:
        head += f" ({per_core / 1e9:.1f} GFLOP per core-second on one thread)"
    lines = [
        head + f". Wall time of this benchmark: {report['wall_s']:.0f} s.",
        "",
        "Model FLOPs per token = 6 x (parameters excluding the input embeddings; the tied LM head counts) "
        "+ 12 x layers x context x width. tokens/s: aggregate over all proxies (and processes); per mode the "
        "median step time after warm-up, median over interleaved rounds. `_xP`: P processes with one thread "
        "each, running at once. tokens/CPU-s: tokens per second of process CPU time (all threads), and "
        "% per core: FLOPs per CPU-second against one thread's matmul FLOPs per CPU-second; these two do "
        "not depend on how busy the machine is. Memory: peak RSS growth of a fresh process (CPU; x P for "
        "`_xP`) or peak allocated (CUDA).",
        "",
        "| size | params | mode | threads x procs | tokens/s | GFLOP/s | % of matmul | vs sequential "
        "| tokens/CPU-s | % per core | peak mem (MiB) |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size_name, modes in report["sizes"].items():
        params = report["params"][size_name]
        base = modes.get("sequential", {}).get("tokens_per_s")
        for mode, r in modes.items():
            if "error" in r:
                lines.append(f"| {size_name} | {params:,} | {mode} | | {r['error']} | | | | | | |")
                continue
            rel = f"{r['tokens_per_s'] / base:.2f}x" if base else ""
            core = f"{100 * r['flops_per_cpu_s'] / r['matmul_flops_per_cpu_s']:.0f}%" if "matmul_flops_per_cpu_s" in r else ""
            lines.append(
                f"| {size_name} | {params:,} | {mode} | {r['threads']} x {r['processes']} | {r['tokens_per_s']:,.0f} | "
                f"{r['flops'] / 1e9:.1f} | {100 * r['flops'] / ref:.0f}% | {rel} | {r['tokens_per_cpu_s']:,.0f} | "
                f"{core} | {r['peak_mem_bytes'] / 2**20:.0f} |"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (the worker flags are internal and hidden from --help)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to train")
    p.add_argument("--sizes", default="small,default,large", help="comma-separated proxy sizes: " + ", ".join(SIZES))
    p.add_argument("--ks", default="1,4,16,64", help="comma-separated K for the batched modes")
    p.add_argument("--parallel-ks", default="16", help="K of the batched modes also run as P one-thread processes ('' for none)")
    p.add_argument("--procs", type=int, default=os.cpu_count() or 1, help="P: processes of the multi-process layout (CPU only; 1 disables it)")
    p.add_argument("--threads", type=int, default=0, help="torch threads of the single-process layout (0: all cores)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds over the modes (median taken)")
    p.add_argument("--seconds", type=float, default=2.0, help="target timed seconds per mode and round (sets the step count)")
    p.add_argument("--min-steps", type=int, default=2, help="fewest timed steps per mode and round")
    p.add_argument("--max-steps", type=int, default=30, help="most timed steps per mode and round")
    p.add_argument("--seq-runs", type=int, default=2, help="proxies trained one after another per round in the sequential mode")
    p.add_argument("--max-mem-frac", type=float, default=0.5, help="skip a mode whose estimated memory exceeds this fraction of free memory")
    p.add_argument("--no-passive", dest="passive", action="store_false",
                   help="do not set OMP_WAIT_POLICY=PASSIVE in the workers (spinning OpenMP threads collapse on a busy machine)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="short run: one round, 1 s per mode, K up to 16")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    p.add_argument("--md", metavar="PATH", default=str(ROOT / "benchmarks" / "swarm_throughput.md"), help="write the markdown table here ('' for none)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--size", help=argparse.SUPPRESS)
    p.add_argument("--plan", help=argparse.SUPPRESS)
    p.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.min_steps = 1, 1.0, 1
    args.k_list = [int(k) for k in args.ks.split(",") if k and (not args.quick or int(k) <= 16)]
    args.parallel_k_list = [int(k) for k in args.parallel_ks.split(",") if k]
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with the hidden --worker flag, one worker) and write the reports."""
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    import torch

    t0 = time.perf_counter()
    reference = matmul_flops(args.device)
    per_core = matmul_flops_per_cpu_second(1.0) if args.device == "cpu" else None
    print(f"dense matmul: {reference / 1e9:.1f} GFLOP/s", flush=True)
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {os.cpu_count()} cores"
    report: dict[str, Any] = {"matmul_flops": reference, "matmul_dtype": "bf16" if args.device == "cuda" else "fp32",
                              "matmul_flops_per_cpu_s": per_core, "device": args.device, "device_name": name,
                              "sizes": {}, "params": {}}  # fmt: skip
    for size_name in args.sizes.split(","):
        report["params"][size_name] = model_counts(SIZES[size_name])[0]
        report["sizes"][size_name] = measure_size(args, size_name, reference)
    report["wall_s"] = time.perf_counter() - t0
    table = markdown(report)
    print(table)
    if args.md:
        Path(args.md).write_text(table, encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
