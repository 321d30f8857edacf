"""Mixture reuse against a full re-search when a domain is added (`benchmarks/reuse.md`).

Per seed: a search over the synthetic corpus's first four domains ("old"); then the corpus gains a fifth
domain and the question is answered twice: (a) `design.reuse` of the old experiment (its proposal's
proportions over the four unchanged domains frozen, searching only their total and the new domain) and
(b) a full new swarm over the five domains. Each arm records the proxies it trained and its wall time
(corpus to proposal). The final-scale verdict trains (a)'s and (b)'s proposals and the natural mixture as
final runs at the same seed (paired: same initialisation, data order and evaluation batches) and compares
them by seed (`mixtures/verdict.py`).

Proxies train in this process (batched, single-threaded), so the numbers are for a shared 2-core CPU.

    nice -n 10 python benchmarks/reuse.py --seeds 0,1,2 --out /tmp/reuse_bench --json benchmarks/reuse.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("WANDB_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mixopt.config import ExperimentConfig  # noqa: E402


def config(out: Path, name: str, n_domains: int, seed: int, reuse: str | None = None) -> ExperimentConfig:
    """configs/tiny.yaml's search, proxies = 3 per domain, no anchors, ladder or final runs in the search
    (the benchmark trains the final runs itself, paired across the arms)."""
    design: dict = {"anchor_proxies": False, "ladder": None, "noise_mixtures": 0}
    if reuse:
        design["reuse"] = reuse
    return ExperimentConfig.model_validate({
        "name": name,
        "corpus": {"source": "synthetic", "synthetic_domains": n_domains, "synthetic_docs": 200},
        "tokenizer": {"vocab_size": 512},
        "swarm": {"n_proxies": 3 * n_domains, "model": {"n_layer": 1, "n_embd": 32, "n_head": 2}, "tokens": 20_000,
                  "seq_len": 64, "batch_size": 8, "lr": 1.0e-2, "seed": seed},
        "design": design,
        "regressor": {"cv_folds": 4},
        "proposer": {"n_samples": 20_000, "top_k": 50, "bootstrap": 20},
        "final": {"enabled": False, "model": {"n_layer": 2, "n_embd": 64, "n_head": 2}, "tokens": 100_000,
                  "seq_len": 64, "batch_size": 8},
        "runtime": {"out_dir": str(out / f"c{n_domains}"), "warehouse": str(out / "wh.duckdb"),
                    "wandb_mode": "disabled", "progress": False, "threads": 1, "workers": 1, "device": "cpu"},
    })


def search(cfg: ExperimentConfig) -> dict:
    """Corpus, swarm and proposal (the flow's steps as plain functions); proxies trained and wall time."""
    from mixopt.tasks.corpus import prepare_experiment
    from mixopt.tasks.fit import fit_and_propose
    from mixopt.tasks.swarm import plan_swarm, proxies_per_task, record_result, train_group_and_spool
    from mixopt.warehouse import writer

    t0 = time.perf_counter()
    wh = writer(cfg.runtime.warehouse)
    exp = prepare_experiment(cfg, wh)
    t1 = time.perf_counter()
    todo, _ = plan_swarm(exp, wh)
    k = max(1, proxies_per_task(exp))
    failed = 0
    for i in range(0, len(todo), k):
        group = todo[i:i + k]
        for spec, result in zip(group, train_group_and_spool(exp, group)):
            record_result(exp, wh, spec, result)
            failed += result.status != "ok"
    t2 = time.perf_counter()
    out = fit_and_propose(exp, wh)
    t3 = time.perf_counter()
    return {"experiment": exp, "proxies": len(todo), "failed": failed, "wall_s": t3 - t0, "corpus_s": t1 - t0,
            "swarm_s": t2 - t1, "fit_s": t3 - t2, "weights": out.weights, "predicted": out.predicted,
            "reused_from": out.details.get("reused_from")}


def final_target(exp, weights: list[float], seed: int) -> float:
    """The target of one final run of `weights` at `seed` (the experiment's final settings and shards)."""
    from mixopt.models import runner

    cfg = exp.cfg
    spec = exp.run_spec("final", "bench", weights, seed, cfg.final)
    spec.save_checkpoint = False
    result = runner.train_one(spec, cfg.runtime, Path(exp.out_dir) / "final_work")
    if result.status != "ok":
        raise RuntimeError(f"final run {spec.run_id}: {result.status} {result.error}")
    return float(exp.target_loss(result.val_losses))


def run_seed(out: Path, seed: int) -> dict:
    old = search(config(out, "old", 4, seed))
    reuse = search(config(out, "reuse", 5, seed, reuse=old["experiment"].experiment_id))
    full = search(config(out, "full", 5, seed))
    exp = full["experiment"]
    t0 = time.perf_counter()
    finals = {"reuse": final_target(exp, reuse["weights"], seed), "full": final_target(exp, full["weights"], seed),
              "natural": final_target(exp, [float(p) for p in exp.prior], seed)}
    row = {"seed": seed, "final": finals, "final_wall_s": time.perf_counter() - t0, "natural": list(exp.prior)}
    for name, arm in (("old", old), ("reuse", reuse), ("full", full)):
        row[name] = {k: v for k, v in arm.items() if k != "experiment"}
        row[name]["experiment_id"] = arm["experiment"].experiment_id
    print(json.dumps({"seed": seed, "proxies": {a: row[a]["proxies"] for a in ("old", "reuse", "full")},
                      "wall_s": {a: round(row[a]["wall_s"], 1) for a in ("old", "reuse", "full")},
                      "swarm_s": {a: round(row[a]["swarm_s"], 1) for a in ("old", "reuse", "full")},
                      "weights": {a: [round(w, 3) for w in row[a]["weights"]] for a in ("old", "reuse", "full")},
                      "final": {a: round(v, 4) for a, v in finals.items()}}), flush=True)
    return row


def summarise(rows: list[dict]) -> dict:
    from mixopt.mixtures.verdict import paired

    by = {a: {r["seed"]: r["final"][a] for r in rows} for a in ("reuse", "full", "natural")}
    comps = {}
    for a, b in (("reuse", "full"), ("reuse", "natural"), ("full", "natural")):
        p = paired(b, by[a], by[b])
        comps[f"{a}-{b}"] = {"mean": p.mean, "low": p.low, "high": p.high, "outcome": p.outcome, "diffs": p.diffs}
    proxies = {a: sum(r[a]["proxies"] for r in rows) for a in ("reuse", "full")}
    wall = {a: sum(r[a]["wall_s"] for r in rows) for a in ("old", "reuse", "full")}
    swarm = {a: sum(r[a]["swarm_s"] for r in rows) for a in ("old", "reuse", "full")}
    return {"paired": comps, "proxies": proxies, "proxy_ratio": proxies["reuse"] / proxies["full"],
            "wall_s": wall, "wall_ratio": wall["reuse"] / wall["full"], "swarm_s": swarm,
            "swarm_ratio": swarm["reuse"] / swarm["full"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", type=Path, default=Path("/tmp/mixopt_reuse_bench"))
    ap.add_argument("--json", type=Path, default=None, help="write every number here")
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    t0 = time.perf_counter()
    rows = [run_seed(args.out, int(s)) for s in args.seeds.split(",")]
    result = {"rows": rows, "summary": summarise(rows), "total_wall_s": time.perf_counter() - t0}
    print(json.dumps(result["summary"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=float) + "\n")
    from mixopt.warehouse.store import close_writer

    close_writer(args.out / "wh.duckdb")


if __name__ == "__main__":
    main()
