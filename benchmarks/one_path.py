"""Could single proxies go through the batched trainer (K = 1) instead of `train_run`?

Trains the same proxies one at a time both ways, in this process, alternating the two paths (so
load on a shared machine hits both alike), and prints each path's CPU seconds and wall seconds per
proxy and the ratio batched / sequential (the median over repeats). The swarm may only switch its
single proxies to the batched trainer if the ratio is within 1.05 at every size.

    python benchmarks/one_path.py --sizes small,default --proxies 2 --repeats 3 --steps 40
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from swarm_bench_worker import _specs  # noqa: E402

SIZES = {
    "small": dict(n_layer=1, n_embd=32, n_head=2, vocab=2048, seq_len=64, batch_size=16),
    "default": dict(n_layer=2, n_embd=64, n_head=4, vocab=2048, seq_len=128, batch_size=16),
}
"""Proxy shapes: `default` is the TrainConfig default proxy, `small` a quarter of its work per step."""


def _time(train, specs: list) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per proxy of training `specs` one at a time with `train`."""
    cpu, wall = time.process_time(), time.perf_counter()
    for spec in specs:
        result = train(spec)
        if result.status != "ok":
            raise RuntimeError(f"{spec.run_id}: {result.status} {result.error}")
    return (time.process_time() - cpu) / len(specs), (time.perf_counter() - wall) / len(specs)


def measure(size: dict, proxies: int, steps: int, repeats: int, device: str) -> dict:
    """Both paths on `proxies` proxies of `size`, `repeats` times alternating; medians and ratios."""
    import torch

    from mixopt.models.swarm_trainer import train_batch
    from mixopt.models.train import train_run

    torch.set_num_threads(1)
    paths = {"sequential": train_run, "batched_k1": lambda s: train_batch([s])[0]}
    times: dict[str, list[tuple[float, float]]] = {p: [] for p in paths}
    with tempfile.TemporaryDirectory() as tmp:
        specs = _specs(size, proxies, steps, device, 1, Path(tmp), compile="off")
        for train in paths.values():  # warm-up: imports, allocator, first-call costs
            _time(train, specs[:1])
        for r in range(repeats):
            order = list(paths) if r % 2 == 0 else list(reversed(paths))
            for p in order:
                times[p].append(_time(paths[p], specs))
    out = {p: {"cpu_s": statistics.median(t[0] for t in ts), "wall_s": statistics.median(t[1] for t in ts)}
           for p, ts in times.items()}
    out["ratio_cpu"] = out["batched_k1"]["cpu_s"] / out["sequential"]["cpu_s"]
    out["ratio_wall"] = out["batched_k1"]["wall_s"] / out["sequential"]["wall_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="small,default", help=f"comma-separated, of {sorted(SIZES)}")
    p.add_argument("--proxies", type=int, default=2, help="proxies per repeat and path")
    p.add_argument("--steps", type=int, default=40, help="optimizer steps per proxy")
    p.add_argument("--repeats", type=int, default=3, help="alternating repeats per path")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--json", metavar="PATH", help="write the results here")
    args = p.parse_args(argv)
    results = {}
    for name in args.sizes.split(","):
        if name not in SIZES:
            p.error(f"--sizes: unknown size {name!r}; expected one of {sorted(SIZES)}")
        r = results[name] = measure(SIZES[name], args.proxies, args.steps, args.repeats, args.device)
        print(f"{name:8s} sequential {r['sequential']['cpu_s']:.2f} cpu-s {r['sequential']['wall_s']:.2f} wall-s | "
              f"batched K=1 {r['batched_k1']['cpu_s']:.2f} cpu-s {r['batched_k1']['wall_s']:.2f} wall-s | "
              f"ratio cpu {r['ratio_cpu']:.3f} wall {r['ratio_wall']:.3f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
