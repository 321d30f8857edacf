"""Where does the seed-to-seed noise of a paired final comparison come from? (`benchmarks/noise.md`)

    nice -n 10 python benchmarks/noise.py                  # built-in corpus, 100k tokens, 5 values a source
    python benchmarks/noise.py --tokens 200000 --values 8 --workers 8

The demo's final comparison pairs two mixtures by seed: D(seed) = target(natural) - target(stratified), where
the target is the demo's (the held-out loss on the `scientific_python` eval set). One seed fixes three
sources of noise, each overridable alone through `RunSpec`: the initialisation (`init_seed`), the data
stream's random numbers (`data_seed`) and the held-out windows (`eval_seed`: the evenly spaced grid shifted by
a random phase). Both mixtures are trained at a reduced final scale (the final model, `--tokens` tokens):

* `init`: init_seed = 0..V-1, data_seed = 0 (the evaluation: the fixed grid);
* `data`: data_seed = 0..V-1, init_seed = 0;
* `eval`: the seed-0 pair, evaluated on V random-phase grids (no training);
* `all`: the real seeds 0..V-1 (every source varies; the fixed grid, as the final runs are scored today).

Each row gives the sample variance (and sd) of D over its V values. The seed-0 pair is shared by every row.
Every run of the `all` row is also scored on the whole held-out set (`eval_batches` 0: every token predicted
once), which removes the window noise: the table compares D and its sd with the fixed grid, with a fresh
random-phase grid per seed, and with the whole set, and gives the exact window-sampling variance of D (over
every phase of a systematic sample of 256 of the whole set's windows) for each seed's pair.

Runs train in their own single-threaded processes (`run_in_subprocess`), `--workers` at a time; a run whose
result is in `--out` is not trained again. Results: `benchmarks/noise.md` and `benchmarks/noise.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TARGET = "scientific_python"
NOTES = "<!-- notes: kept when the tables are regenerated -->"


def _config(out: Path, tokens: int):
    from mixopt.config import ExperimentConfig
    from mixopt.config.io import demo_config

    data = demo_config().model_dump(mode="json")
    data["runtime"].update(out_dir=str(out), warehouse=str(out / "mixopt.duckdb"), wandb_mode="disabled",
                           progress=False)
    data["final"]["tokens"] = tokens
    return ExperimentConfig.model_validate(data)


def _plan(exp, values: int) -> list:
    """Every training run: (mixture, source, value, spec); the seed-0 pair once."""
    n = len(exp.domain_names)
    mixtures = {"natural": [float(w) for w in exp.prior], "stratified": [1.0 / n] * n}
    plan = []
    for label, w in mixtures.items():
        for source in ("init", "data", "all"):
            for v in range(values):
                init, data, seed = {"init": (v, 0, 0), "data": (0, v, 0), "all": (v, v, v)}[source]
                spec = exp.run_spec("final", label, w, seed, exp.cfg.final)
                if source != "all":
                    spec.init_seed, spec.data_seed = init, data
                spec.run_id = f"{spec.run_id}-i{init}-d{data}"
                spec.threads, spec.curve_points, spec.interaction_points = 1, 0, 0
                spec.save_checkpoint, spec.progress = True, False
                spec.out_dir = str(Path(exp.out_dir) / "noise")
                plan.append((label, source, v, spec))
    return plan


def _train(spec, work: Path):
    """Train one run (or read back an earlier invocation's result)."""
    from mixopt.models.launch import run_in_subprocess
    from mixopt.runspec import RunResult

    done = work / f"{spec.run_id}.result.json"
    if done.exists():
        res = RunResult.from_json(done.read_text())
        if res.status == "ok" and res.checkpoint and Path(res.checkpoint).exists():
            return res
    return run_in_subprocess(spec, work)


def window_losses(module, batches) -> np.ndarray:
    """The mean loss of every window of `batches` (one value per sequence)."""
    import torch

    from mixopt.models.module import loss_fn

    out = []
    module.eval()
    with torch.no_grad():
        for x, y in batches:
            per = loss_fn(module.model(x), y, reduction="none").reshape(y.shape)
            out.append(per.double().mean(dim=1).numpy())
    return np.concatenate(out)


def evaluate(ckpt: str, spec_json: str, phases: list[int], full: bool) -> dict:
    """Score a checkpoint's target: the fixed grid, each random-phase grid, and (`full`) every window."""
    import torch

    from mixopt.models.data import MixtureDataModule
    from mixopt.models.module import GPTModule
    from mixopt.models.train import train_config
    from mixopt.runspec import RunSpec

    torch.set_num_threads(1)
    spec = RunSpec.from_json(spec_json)
    cfg = train_config(spec)
    module = GPTModule.load_from_checkpoint(ckpt, map_location="cpu")

    def data(eval_batches: int, eval_seed: int | None) -> MixtureDataModule:
        return MixtureDataModule(spec.domains, spec.weights, cfg.seq_len, cfg.batch_size, 0, 1, eval_batches,
                                 eval_sets=spec.eval_sets, eval_seed=eval_seed)

    res = {"grid": module.mean_loss(data(cfg.eval_batches, None).val_batches(TARGET)),
           "phases": [module.mean_loss(data(cfg.eval_batches, p).val_batches(TARGET)) for p in phases]}
    if full:
        t0 = time.perf_counter()
        batches = data(0, None).val_batches(TARGET)
        w = window_losses(module, batches)
        head = module.mean_loss(batches[:16])  # the run's own scoring, on the first 16 batches
        res.update(full=float(w.mean()), windows=w.tolist(), full_s=time.perf_counter() - t0,
                   head_check=abs(head - float(w[:16 * cfg.batch_size].mean())))
    return res


def systematic_variance(d: np.ndarray, n: int) -> float:
    """Variance of the mean of `d` over a systematic sample of `n` of its entries (every k-th from a uniformly
    random start, k = len(d) // n): the window-sampling variance of a grid of n windows."""
    k = max(1, len(d) // n)
    means = [d[r::k][:n].mean() for r in range(k)]
    return float(np.var(means))


def _var(x) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    v = float(np.var(x, ddof=1)) if len(x) > 1 else float("nan")
    return v, float(np.sqrt(v))


def summarise(runs: dict, evals: dict, values: int, n_windows: int) -> dict:
    """The variance table and the before/after comparison from the target losses."""
    def target(label, source, v):
        return runs[(label, source, v)]["target"]

    rows = {}
    for source in ("init", "data", "all"):
        d = [target("natural", source, v) - target("stratified", source, v) for v in range(values)]
        rows[source] = {"diffs": d, "mean": float(np.mean(d)), "var": _var(d)[0], "sd": _var(d)[1]}
    ev_nat, ev_str = evals[("natural", "all", 0)], evals[("stratified", "all", 0)]
    d = [a - b for a, b in zip(ev_nat["phases"], ev_str["phases"])]
    rows["eval"] = {"diffs": d, "mean": float(np.mean(d)), "var": _var(d)[0], "sd": _var(d)[1]}
    def pair(v: int, score) -> float:
        return score(evals[("natural", "all", v)], v) - score(evals[("stratified", "all", v)], v)

    after = {}
    for name, score in (("fixed grid (today)", lambda e, v: e["grid"]),
                        ("random-phase grid per seed (eval_seed = seed + 1)", lambda e, v: e["phases"][v]),
                        ("whole held-out set", lambda e, v: e["full"])):
        d = [pair(v, score) for v in range(values)]
        after[name] = {"diffs": d, "mean": float(np.mean(d)), "var": _var(d)[0], "sd": _var(d)[1]}
    sys_var = []
    for v in range(values):
        nat, strat = evals[("natural", "all", v)]["windows"], evals[("stratified", "all", v)]["windows"]
        wd = np.asarray(nat) - np.asarray(strat)
        sys_var.append({"systematic": systematic_variance(wd, n_windows), "random": float(np.var(wd) / n_windows),
                        "n_windows": int(len(wd)), "window_sd": float(np.std(wd))})
    return {"rows": rows, "after": after, "window_sampling": sys_var}


def _md(r: dict) -> str:
    rows, after, ws = r["summary"]["rows"], r["summary"]["after"], r["summary"]["window_sampling"]
    out = [f"# Noise per seed of the paired final comparison (`benchmarks/noise.py`)\n\n"
           f"Built-in corpus (the demo), experiment `{r['experiment']}`; the final model at {r['tokens']:,} tokens "
           f"(seq {r['seq_len']}, batch {r['batch_size']}, lr {r['lr']}); D = target(natural) - "
           f"target(stratified), target = held-out loss on `{TARGET}` ({r['target_tokens']:,} tokens; the grid "
           f"reads {r['grid_windows']} windows = {r['grid_windows'] * (r['seq_len'])} predicted tokens). "
           f"{r['values']} values a source; {r['n_runs']} runs, {r['wall_s']:.0f} s wall "
           f"({r['workers']} processes).\n\n"
           "## Variance of the paired difference, one source at a time\n\n"
           "| source varied | D per value | mean D | var(D) | sd(D) |\n|---|---|---|---|---|\n"]
    for name, key in (("initialisation (init_seed)", "init"), ("data order (data_seed)", "data"),
                      ("evaluation windows (eval_seed)", "eval"), ("all (the real seeds, fixed grid)", "all")):
        x = rows[key]
        out.append(f"| {name} | {', '.join(f'{d:+.4f}' for d in x['diffs'])} | {x['mean']:+.4f} | "
                   f"{x['var']:.2e} | {x['sd']:.4f} |\n")
    out.append("\n## Scoring the real seeds: fixed grid, random-phase grid, whole held-out set\n\n"
               "| evaluation | D per seed | mean D | var(D) | sd(D) |\n|---|---|---|---|---|\n")
    for name, x in after.items():
        out.append(f"| {name} | {', '.join(f'{d:+.4f}' for d in x['diffs'])} | {x['mean']:+.4f} | "
                   f"{x['var']:.2e} | {x['sd']:.4f} |\n")
    out.append("\nWindow-sampling variance of D with the grid's window count, from each seed's whole-set "
               "per-window differences (exact over every phase of the systematic sample; `random`: "
               "independent windows, var/n):\n\n| seed | whole-set windows | sd of D per window | systematic var | "
               "random var |\n|---|---|---|---|---|\n")
    for v, x in enumerate(ws):
        out.append(f"| {v} | {x['n_windows']} | {x['window_sd']:.4f} | {x['systematic']:.2e} | {x['random']:.2e} |\n")
    out.append(f"\nWhole-set scoring: {r['full_s']:.1f} s per run for the target alone (one CPU thread).\n")
    return "".join(out)


def _run_all(plan: list, work: Path, workers: int) -> dict:
    """Train every distinct run of `plan` (the seed-0 pair is in three rows) and key the results by row."""
    unique = {spec.run_id: spec for _, _, _, spec in plan}
    with ThreadPoolExecutor(workers) as pool:
        results = dict(zip(unique, pool.map(lambda s: _train(s, work / s.run_id), unique.values())))
    bad = [(i, r.error) for i, r in results.items() if r.status != "ok"]
    if bad:
        raise SystemExit(f"runs failed: {bad[:3]}")
    return {(label, source, v): (spec, results[spec.run_id]) for label, source, v, spec in plan}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/mixopt-noise", help="work folder (corpus, runs, checkpoints)")
    ap.add_argument("--tokens", type=int, default=100_000, help="training tokens per final run")
    ap.add_argument("--values", type=int, default=5, help="values per source (seeds 0..V-1)")
    ap.add_argument("--workers", type=int, default=2, help="training processes at a time")
    ap.add_argument("--md", default=str(HERE / "noise.md"))
    args = ap.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from mixopt.tasks.corpus import prepare_experiment
    from mixopt.warehouse import Warehouse

    t0 = time.perf_counter()
    out = Path(args.out)
    cfg = _config(out, args.tokens)
    with Warehouse(cfg.runtime.warehouse) as wh:
        exp = prepare_experiment(cfg, wh)
    plan = _plan(exp, args.values)
    done = _run_all(plan, out / "noise", args.workers)
    runs = {k: {"target": exp.target_loss(res.val_losses), "run_id": spec.run_id} for k, (spec, res) in done.items()}
    phases = list(range(1, args.values + 1))  # the eval-seed values (the grid itself is not one of them)
    jobs = {k: (res.checkpoint, spec.to_json(), phases, k[1] == "all") for k, (spec, res) in done.items()
            if k[1] == "all"}
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        futures = {k: pool.submit(evaluate, *job) for k, job in jobs.items()}
        evals = {k: f.result() for k, f in futures.items()}
    for k, e in evals.items():  # the benchmark's own scoring must reproduce the run's
        if abs(e["grid"] - runs[k]["target"]) > 1e-5 or e["head_check"] > 1e-5:
            raise SystemExit(f"{k}: re-scored target {e['grid']} disagrees with the run's {runs[k]['target']}, "
                             f"or per-window losses with mean_loss by {e['head_check']}")
    f = cfg.final
    target_tokens = next(e.val_tokens for e in exp.eval_sets if e.name == TARGET)
    n_windows = min(f.eval_batches * f.batch_size, target_tokens - f.seq_len)
    result = {"experiment": exp.experiment_id, "tokens": args.tokens, "seq_len": f.seq_len,
              "batch_size": f.batch_size, "lr": f.lr, "values": args.values, "workers": args.workers,
              "n_runs": len({spec.run_id for *_, spec in plan}), "target_tokens": target_tokens,
              "grid_windows": n_windows,
              "runs": {f"{a}/{b}/{c}": v for (a, b, c), v in runs.items()},
              "evals": {f"{a}/{b}/{c}": {k: x for k, x in v.items() if k != "windows"}
                        for (a, b, c), v in evals.items()},
              "summary": summarise(runs, evals, args.values, n_windows),
              "full_s": float(np.mean([e["full_s"] for e in evals.values()])),
              "wall_s": time.perf_counter() - t0}
    md = Path(args.md)
    notes = md.read_text(encoding="utf-8").partition(NOTES)[2] if md.exists() else ""
    md.write_text(_md(result) + (f"\n{NOTES}{notes}" if notes else ""), encoding="utf-8")  # keep the notes
    Path(args.md).with_suffix(".json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(_md(result))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    main()
