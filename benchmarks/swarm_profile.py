"""Where a batched swarm step spends its time: torch.profiler over a few `train_batch` steps.

Prints the step time, the share of the step the device was busy (CUDA kernel time over wall time),
kernel launches per step and the top operators by device (or CPU) time. Use it to decide what to
optimise next; `swarm_throughput.py` is the benchmark of record.

    python benchmarks/swarm_profile.py --device cuda --size default --k 64
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from swarm_bench_worker import SIZES, _specs, model_counts  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Profile `--steps` steps of K batched proxies after `--warmup` steps."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to train")
    p.add_argument("--size", choices=list(SIZES), default="default", help="proxy size (as in swarm_throughput.py)")
    p.add_argument("--k", type=int, default=16, help="proxies in the batch")
    p.add_argument("--warmup", type=int, default=5, help="steps before profiling starts")
    p.add_argument("--steps", type=int, default=5, help="profiled steps")
    p.add_argument("--compile", choices=["on", "off"], default=None,
                   help="torch.compile the batch (default: on for CUDA, off on a CPU)")
    p.add_argument("--top", type=int, default=25, help="operators to list")
    args = p.parse_args(argv)
    args.compile = args.compile or ("on" if args.device == "cuda" else "off")

    import lightning.pytorch as pl
    import torch
    from torch.profiler import ProfilerActivity, profile, schedule

    from mixopt.models import swarm_trainer

    size = SIZES[args.size]
    cuda = args.device == "cuda"
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    prof = profile(activities=acts, schedule=schedule(wait=0, warmup=args.warmup, active=args.steps, repeat=1))
    times: list[float] = []

    class Step(pl.Callback):
        def on_train_batch_start(self, *a: object) -> None:
            if cuda:
                torch.cuda.synchronize()
            self.t = time.perf_counter()

        def on_train_batch_end(self, *a: object) -> None:
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)
            prof.step()

    orig = swarm_trainer.pl.Trainer
    swarm_trainer.pl.Trainer = lambda *a, callbacks=None, **kw: orig(*a, callbacks=[*(callbacks or []), Step()], **kw)  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as d:
        specs = _specs(size, args.k, args.warmup + args.steps + 1, args.device, 0, Path(d), args.compile)
        with prof:
            results = swarm_trainer.train_batch(specs)
    swarm_trainer.pl.Trainer = orig  # type: ignore[assignment]
    if any(r.status != "ok" for r in results):
        print("failed:", results[0].error)
        return 1
    active = times[args.warmup : args.warmup + args.steps]
    step = sum(active) / len(active)
    _, fpt = model_counts(size)
    tokens = args.k * size["batch_size"] * size["seq_len"]
    print(f"{args.size} K={args.k} on {args.device}: {1e3 * step:.2f} ms/step, {tokens / step:,.0f} tokens/s, "
          f"{tokens * fpt / step / 1e12:.2f} TFLOP/s (model FLOPs)")  # fmt: skip
    events = prof.key_averages()
    if cuda:
        kernels = [e for e in prof.events() if e.device_type.name == "CUDA" and not e.name.startswith("ProfilerStep")]
        busy = sum(e.device_time for e in kernels) / 1e6 / args.steps  # us -> s per step
        print(f"device busy {100 * busy / step:.0f}% of the step; {len(kernels) / args.steps:.0f} kernels per step")
        key = "self_device_time_total"
    else:
        key = "self_cpu_time_total"
    print(events.table(sort_by=key, row_limit=args.top, max_name_column_width=60))
    return 0


if __name__ == "__main__":
    sys.exit(main())
