"""Swarm training throughput: sequential `train_run` versus K proxies batched by `train_batch`.

Modes: `sequential` (the real `train_run`, one proxy after another) and `batched_K` (one
`train_batch` of K proxies). By default every mode runs in P processes at once (P = cores on a CPU,
one torch thread each: the layout `recommended_threads` recommends), and the tokens/s add up; rows
`*_1proc` run one process with all threads instead, for comparison. Within a process the modes take
turns in interleaved rounds, so load from other jobs on a shared machine hits them alike; each
mode's speed is its median step time after warm-up (median over rounds). Peak memory comes from a
separate fresh process per mode (RSS growth on a CPU, peak allocated on CUDA), times P.

FLOPs per token = 6 x (parameters excluding the input embeddings; the tied LM head counts) +
12 x layers x context x width (attention scores and values, forward and backward). The reference
is the machine's dense matmul speed (fp32 2048^2 on CPU with all threads, bf16 8192^2 on CUDA),
best of measurements taken between sizes. On a CPU, process CPU time is recorded too: tokens per
CPU-second and FLOPs per CPU-second against one thread's matmul FLOPs per CPU-second measure the
code's efficiency independently of how much of the machine other jobs take.

    python benchmarks/swarm_throughput.py --json out.json        # full run (writes swarm_throughput.md)
    python benchmarks/swarm_throughput.py --quick --sizes small  # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from swarm_bench_worker import ROOT, SIZES, matmul_flops, matmul_flops_per_cpu_second, model_counts, worker  # noqa: E402

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


def _start(args: argparse.Namespace, size_name: str, plan: str, threads: int,
           extra: list[str]) -> subprocess.Popen[str]:
    """Start one worker process."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--size", size_name, "--plan", plan,
           "--threads", str(threads), "--device", args.device, "--seq-runs", str(args.seq_runs),
           "--compile", args.compile, *extra]  # fmt: skip
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
    budget = args.max_mem_frac * available_memory_bytes(args.device)
    est: dict[str, int] = {}
    for mode in modes:
        k = 1 if mode == "sequential" else int(mode.split("_")[1])
        est[mode] = estimate_memory_bytes(params, k, tokens_per_step, size["n_layer"], size["n_embd"], size["vocab"])
        if est[mode] > budget:
            rows[mode] = {"error": f"skipped: needs about {est[mode] / 2**30:.1f} GiB"}
            continue
        warmup, timed, rounds = _steps_for(args, size, k, reference / args.procs)
        steps[mode], ks[mode] = f"{mode}:{warmup}:{timed}:{rounds}", k
    # Peak memory: a fresh process per mode, several at once while their estimates fit the budget.
    main_threads = 1 if args.procs > 1 else args.threads
    pending = list(steps)
    while pending:
        group = [pending.pop(0)]
        while pending and sum(est[m] for m in group) + est[pending[0]] <= budget:
            group.append(pending.pop(0))
        children = {m: _start(args, size_name, f"{m}:1:1:1", main_threads, ["--memory"]) for m in group}
        for mode, child in children.items():
            try:
                mems[mode] = _answer(child)["peak_mem_bytes"]
            except RuntimeError as exc:
                rows[mode] = {"error": str(exc)}
                steps.pop(mode)
    for mode in list(steps):  # P processes at once must fit too
        if args.procs * mems[mode] > budget:
            rows[mode] = {"error": f"skipped: {args.procs} processes need {args.procs * mems[mode] / 2**30:.1f} GiB"}
            steps.pop(mode)
    layouts = [("", main_threads, args.procs, list(steps))]
    if args.procs > 1 and args.single_k_list:  # threads instead of processes, for comparison
        single = [m for m in steps if m == "sequential" or int(m.split("_")[1]) in args.single_k_list]
        layouts.append(("_1proc", args.threads, 1, single))
    for suffix, threads, procs, names in layouts:
        if names:
            rows.update(_throughput(args, size_name, {m: steps[m] for m in names}, ks, mems, threads, procs, suffix))
    order = modes + [m + "_1proc" for m in modes]
    return {m: rows[m] for m in order if m in rows}


def _throughput(args: argparse.Namespace, size_name: str, steps: dict[str, str], ks: dict[str, int],
                mems: dict[str, int], threads: int, procs: int, suffix: str) -> dict[str, Any]:  # fmt: skip
    """Run the modes `steps` in `procs` processes at once (interleaved rounds); one row per mode."""
    size = SIZES[size_name]
    _, fpt = model_counts(size)
    tokens_per_step = size["batch_size"] * size["seq_len"]
    extra: list[str] = []
    if procs > 1:  # the processes start training together, after their imports
        extra += ["--start-at", f"{time.time() + 10.0 + 5.0 * procs:.3f}"]
    try:
        started = [_start(args, size_name, ",".join(steps.values()), threads, extra) for _ in range(procs)]
        answers = [_answer(c) for c in started]
    except RuntimeError as exc:
        return {m + suffix: {"error": str(exc)} for m in steps}
    per_core = [x for a in answers for x in a["matmul_cpu"]]
    rows: dict[str, Any] = {}
    for m in steps:
        k = ks[m]
        rates = [[k * tokens_per_step / t for t in a["modes"][m]] for a in answers]
        total = sum(statistics.median(r) for r in rates)  # median over rounds, summed over processes
        cpu_rate = statistics.median(k * tokens_per_step / t for a in answers for t in a["cpu"][m])
        rows[m + suffix] = {"tokens_per_s": total, "flops": total * fpt, "peak_mem_bytes": procs * mems[m],
                            "threads": answers[0]["threads"], "processes": procs,
                            "rounds": [sum(x) for x in zip(*rates)],
                            "tokens_per_cpu_s": cpu_rate, "flops_per_cpu_s": cpu_rate * fpt}  # fmt: skip
        if per_core:
            rows[m + suffix]["matmul_flops_per_cpu_s"] = statistics.median(per_core)
    done = ", ".join(f"{m + suffix} {rows[m + suffix]['tokens_per_s']:,.0f}" for m in steps)
    print(f"  {size_name}: {done} tokens/s", flush=True)
    return rows


def markdown(report: dict[str, Any]) -> str:
    """The results as a markdown table (one row per size and mode)."""
    ref, per_core = report["matmul_flops"], report.get("matmul_flops_per_cpu_s")
    head = (f"Device: {report['device_name']}; dense matmul ({report['matmul_dtype']}, all threads): "
            f"**{ref / 1e9:.1f} GFLOP/s**")  # fmt: skip
    if per_core:
        head += f" ({per_core / 1e9:.1f} GFLOP per CPU-second on one thread)"
    lines = [
        head + f". Batched modes compiled: {report.get('compile', 'off')}. "
        f"Wall time of this benchmark: {report['wall_s']:.0f} s.",
        "",
        "Model FLOPs per token = 6 x (parameters excluding the input embeddings; the tied LM head counts) "
        "+ 12 x layers x context x width. Rows without a suffix: P processes with one thread each train that "
        "mode at once and their tokens/s add up; `_1proc`: one process with all threads. tokens/s: median step "
        "time after warm-up, median over interleaved rounds. % of matmul: against the dense matmul speed above "
        "(best of the measurements taken during the run). tokens/CPU-s and % per core: per second of process "
        "CPU time, FLOPs against one thread's matmul FLOPs per CPU-second; these do not depend on how busy "
        "the machine is. Memory: peak RSS growth of a fresh process per mode (CPU), or peak allocated (CUDA), "
        "times the processes.",
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
            core = (f"{100 * r['flops_per_cpu_s'] / r['matmul_flops_per_cpu_s']:.0f}%"
                    if "matmul_flops_per_cpu_s" in r else "")
            lines.append(
                f"| {size_name} | {params:,} | {mode} | {r['threads']} x {r['processes']} | {r['tokens_per_s']:,.0f} | "
                f"{r['flops'] / 1e9:.1f} | {100 * r['flops'] / ref:.0f}% | {rel} | {r['tokens_per_cpu_s']:,.0f} | "
                f"{core} | {r['peak_mem_bytes'] / 2**20:.0f} |"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (the worker flags are internal and hidden from --help)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to train")
    p.add_argument("--compile", choices=["on", "off"], default=None,
                   help="torch.compile the batched modes "
                        "(default: on for CUDA, off on a CPU; compile time is not counted)")
    p.add_argument("--sizes", default="small,default,large", help="comma-separated proxy sizes: " + ", ".join(SIZES))
    p.add_argument("--ks", default="1,4,16,64", help="comma-separated K for the batched modes")
    p.add_argument("--procs", type=int, default=0,
                   help="processes training at once, one thread each, in every mode "
                        "(0: one per core on CPU, 1 on CUDA)")
    p.add_argument("--threads", type=int, default=0, help="torch threads of single-process runs (0: all cores)")
    p.add_argument("--single-ks", default="16",
                   help="with several processes, also run sequential and these batched_K in one process "
                        "with --threads ('' for none)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds over the modes (median taken)")
    p.add_argument("--seconds", type=float, default=2.0,
                   help="target timed seconds per mode and round (sets the step count)")
    p.add_argument("--min-steps", type=int, default=2, help="fewest timed steps per mode and round")
    p.add_argument("--max-steps", type=int, default=30, help="most timed steps per mode and round")
    p.add_argument("--seq-runs", type=int, default=2,
                   help="proxies trained one after another per round in the sequential mode")
    p.add_argument("--max-mem-frac", type=float, default=0.7,
                   help="skip a mode whose (estimated, then measured x processes) memory exceeds this "
                        "fraction of free memory")
    p.add_argument("--no-passive", dest="passive", action="store_false",
                   help="do not set OMP_WAIT_POLICY=PASSIVE in the workers "
                        "(spinning OpenMP threads collapse on a busy machine)")
    p.add_argument("--quick", action="store_true", help="short run: one round, 1 s per mode, K up to 16")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    p.add_argument("--md", metavar="PATH", default=str(ROOT / "benchmarks" / "swarm_throughput.md"),
                   help="write the markdown table here ('' for none)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--size", help=argparse.SUPPRESS)
    p.add_argument("--plan", help=argparse.SUPPRESS)
    p.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.min_steps = 1, 1.0, 1
    args.k_list = [int(k) for k in args.ks.split(",") if k and (not args.quick or int(k) <= 16)]
    args.single_k_list = [int(k) for k in args.single_ks.split(",") if k]
    if args.compile is None:
        args.compile = "on" if args.device == "cuda" else "off"
    if args.procs <= 0:
        args.procs = 1 if args.device == "cuda" else (os.cpu_count() or 1)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with the hidden --worker flag, one worker) and write the reports."""
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    import torch

    t0 = time.perf_counter()
    checks = [matmul_flops(args.device)]  # repeated between sizes: the best is the least disturbed
    per_core = matmul_flops_per_cpu_second(1.0) if args.device == "cpu" else None
    print(f"dense matmul: {checks[0] / 1e9:.1f} GFLOP/s", flush=True)
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {os.cpu_count()} cores"
    report: dict[str, Any] = {"matmul_flops": 0.0, "matmul_dtype": "bf16" if args.device == "cuda" else "fp32",
                              "matmul_flops_per_cpu_s": per_core, "device": args.device, "device_name": name,
                              "sizes": {}, "params": {}, "compile": args.compile}  # fmt: skip
    for size_name in args.sizes.split(","):
        report["params"][size_name] = model_counts(SIZES[size_name])[0]
        report["sizes"][size_name] = measure_size(args, size_name, max(checks))
        checks.append(matmul_flops(args.device))
    report["matmul_flops"], report["matmul_checks"] = max(checks), checks
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
