"""End-to-end wall time of a whole (small) swarm: start-up, torch.compile and evaluation included.

`swarm_throughput.py` times steady-state steps; this times what a user waits for: N proxies of one
shape trained one after another (`train_run`), as one batch of K = N (`train_batch`) eagerly and
compiled, and split into one batch per single-threaded child process (`batched_procs`, the CPU
swarm's default layout). It shows whether compiling pays for a swarm of that size and length, and
what the CPU layout gains end to end.

    python benchmarks/swarm_wall.py --device cuda --proxies 16 --steps 200
    python benchmarks/swarm_wall.py --proxies 16 --steps 50 --n-embd 64 --seq-len 128 --batch-size 8 --vocab 2048 \\
        --modes sequential,batched_eager,batched_procs
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from swarm_bench_worker import _specs, model_counts  # noqa: E402


def _in_processes(specs: list, procs: int, work: Path) -> list:
    """Split `specs` into `procs` equal batches, each trained in its own child process at once."""
    from concurrent.futures import ThreadPoolExecutor

    from mixopt.models.launch import run_batch_in_subprocess

    size = -(-len(specs) // procs)
    groups = [specs[i : i + size] for i in range(0, len(specs), size)]
    with ThreadPoolExecutor(len(groups)) as pool:
        return [r for rs in pool.map(lambda g: run_batch_in_subprocess(g, work), groups) for r in rs]


def main(argv: list[str] | None = None) -> int:
    """Train the swarm in each mode and print the wall times (and `--json` them)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to train")
    p.add_argument("--proxies", type=int, default=16, help="proxies in the swarm (N)")
    p.add_argument("--steps", type=int, default=200, help="optimizer steps per proxy")
    p.add_argument("--n-layer", type=int, default=2, help="proxy layers (configs/example.yaml: 2)")
    p.add_argument("--n-embd", type=int, default=128, help="proxy width (configs/example.yaml: 128)")
    p.add_argument("--seq-len", type=int, default=256, help="sequence length (configs/example.yaml: 256)")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per step (configs/example.yaml: 32)")
    p.add_argument("--vocab", type=int, default=4096, help="vocabulary size")
    p.add_argument("--sequential-runs", type=int, default=4,
                   help="proxies actually trained in the sequential mode (its time is scaled to N)")
    p.add_argument("--modes", default="sequential,batched_eager,batched_compiled,batched_procs",
                   help="comma-separated: sequential, batched_eager, batched_compiled, batched_procs (the CPU "
                        "swarm's auto layout: --procs single-threaded child processes, one batch each)")
    p.add_argument("--procs", type=int, default=0, help="child processes of batched_procs (0: one per core)")
    p.add_argument("--json", metavar="PATH", help="write the results here")
    args = p.parse_args(argv)

    from mixopt.models.swarm_trainer import train_batch
    from mixopt.models.train import train_run

    size = dict(n_layer=args.n_layer, n_embd=args.n_embd, n_head=4, vocab=args.vocab, seq_len=args.seq_len,
                batch_size=args.batch_size)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        for mode in args.modes.split(","):
            compile_flag = "on" if mode == "batched_compiled" else "off"
            threads = 1 if mode == "batched_procs" else 0
            specs = _specs(size, args.proxies, args.steps, args.device, threads, Path(d), compile_flag)
            t = time.perf_counter()
            if mode == "batched_procs":
                results = _in_processes(specs, args.procs or os.cpu_count() or 1, Path(d) / "work")
                elapsed = time.perf_counter() - t
            elif mode == "sequential":
                n = min(args.sequential_runs, args.proxies)
                results = [train_run(s) for s in specs[:n]]
                elapsed = (time.perf_counter() - t) * args.proxies / n
            else:
                results = train_batch(specs)
                elapsed = time.perf_counter() - t
            bad = [r.error for r in results if r.status != "ok"]
            if bad:
                print(f"{mode} failed: {bad[0]}")
                return 1
            out[mode] = elapsed
            print(f"{mode}: {elapsed:.1f} s for {args.proxies} proxies x {args.steps} steps", flush=True)
    tokens = args.proxies * args.steps * args.batch_size * args.seq_len
    params, fpt = model_counts(size)
    print(f"{params:,} parameters per proxy; model FLOPs per token {fpt:,} (as in swarm_throughput.py)")
    for mode, s in out.items():
        rel = f"{out['sequential'] / s:.1f}x" if "sequential" in out else ""
        print(f"| {mode} | {s:.1f} s | {tokens / s:,.0f} tokens/s | {tokens * fpt / s / 1e12:.3f} TFLOP/s | {rel} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "wall_s": out}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
