"""Sequential (Thompson-sampling) vs random Dirichlet design on a surrogate of RegMix's swarm.

A "true" loss is a GP (:class:`~mixopt.mixtures.gp.GPRegressor`) fitted on every 1M-parameter run of
RegMix's public table (512 training + 256 held-out mixtures, target Pile-CC by default).  Each method
then spends an equal proxy budget on it, observing the surrogate's loss plus Gaussian noise of the
surrogate's own fitted noise level:

* random — RegMix's design, :func:`~mixopt.mixtures.design.sample_design` (nested prefixes of one
  design of the largest budget);
* sequential — a space-filling initial batch (``--init``), then rounds of
  :func:`~mixopt.mixtures.sequential.next_batch` (batch Thompson sampling) of ``--batch-small``
  rows below 64 proxies and ``--batch`` rows above; the GP's hyperparameters are re-estimated every
  ``--refit-every`` rounds and kept fixed (posterior still refitted on all rows) in between.

At each budget both methods fit the same GP to their own proxies and propose a mixture, scored by
its regret: surrogate loss of the proposal minus the surrogate's minimum (over 200k feasible
Dirichlet candidates, refined by SLSQP).  Three proposal rules are scored: ``argmin`` (the GP-mean
minimiser over 5000 candidates = global Dirichlet draws + local moves around the best proxies; the
headline), ``regmix`` (RegMix's top-100 average of 20 000 candidates) and ``best_seen`` (the
proxy with the lowest observed loss).

Example::

    python benchmarks/sequential_design.py --quick --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from regmix_table import DEFAULT_TARGET, load_split  # noqa: E402

from mixopt.mixtures.design import sample_design  # noqa: E402
from mixopt.mixtures.gp import GPRegressor  # noqa: E402
from mixopt.mixtures.proposers import _predict, feasible_candidates, propose_exact, propose_regmix  # noqa: E402
from mixopt.mixtures.sequential import candidate_set, fit_gp, next_batch  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent.parent / ".." / "shared" / "benchmarks" / "regmix"
RULES = ("argmin", "regmix", "best_seen")


def build_surrogate(data: Path, target: str) -> tuple[GPRegressor, np.ndarray, float, float]:
    """Surrogate GP on all 1M runs, the prior (mean training mixture), its minimum and noise sd."""
    Xa, ya = load_split(data, "train", "1m", target)
    Xb, yb = load_split(data, "test", "1m", target)
    X, y = np.vstack([Xa, Xb]), np.concatenate([ya, yb])
    X = X / X.sum(axis=1, keepdims=True)
    surrogate = GPRegressor(seed=0).fit(X, y)
    prior = Xa.mean(axis=0)
    prior = prior / prior.sum()
    caps = np.ones(len(prior))
    F, _ = feasible_candidates(prior, caps, 200_000, seed=12345)
    best = float(_predict(surrogate, F).min())
    exact = propose_exact(surrogate, prior, None, n_candidates=20_000, seed=12345)
    best = min(best, float(exact.predicted))
    # white-noise sd in loss units (delta method at the median reducible loss)
    sd_latent = float(np.sqrt(np.exp(surrogate.theta_[-1]))) * surrogate.z_scale_
    noise = float(np.median(y - surrogate.floor_)) * sd_latent if surrogate.floor_ is not None \
        else sd_latent
    return surrogate, prior, best, noise


def _init_worker() -> None:
    try:  # one BLAS thread per process: BLAS threads on 2 busy cores slow GP fits ~20x
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover
        pass


def _score(model: GPRegressor, X: np.ndarray, y: np.ndarray, prior: np.ndarray, seed: int,
           surrogate: GPRegressor, best: float) -> dict[str, float]:
    """Regret of each proposal rule for a GP fitted on ``(X, y)``."""
    caps = np.ones(len(prior))
    F = candidate_set(prior, caps, 5000, seed + 77, X, y)
    w_argmin = F[int(np.argmin(_predict(model, F)))]
    w_regmix = propose_regmix(model, prior, None, n_samples=20_000, top_k=100, seed=seed + 78).weights
    w_best = X[int(np.argmin(y))]
    true = _predict(surrogate, np.array([w_argmin, w_regmix, w_best]))
    return {rule: float(t - best) for rule, t in zip(RULES, true)}


def run_one(task: tuple) -> tuple[str, int, dict[int, dict[str, float]], float]:
    """One repetition of one method: regret per budget and proposal rule."""
    (method, rep, seed, budgets, surrogate, prior, best, noise, init, batch_small, batch,
     refit_every, n_candidates) = task
    t0 = time.perf_counter()
    rng = np.random.default_rng([seed, rep, 99])
    k = len(prior)

    def observe(W: np.ndarray) -> np.ndarray:
        return _predict(surrogate, W) + noise * rng.standard_normal(len(W))

    out: dict[int, dict[str, float]] = {}
    rseed = 1000 * seed + rep
    if method == "random":
        D = sample_design(prior, max(budgets), None, rseed)
        yD = observe(D)
        for b in budgets:
            model = fit_gp(D[:b], yD[:b], seed=rseed)
            out[b] = _score(model, D[:b], yD[:b], prior, rseed + b, surrogate, best)
        return method, rep, out, time.perf_counter() - t0
    X = sample_design(prior, init, None, rseed)
    y = observe(X)
    theta, r = None, 0
    while True:
        model = fit_gp(X, y, seed=rseed, theta=None if r % refit_every == 0 else theta)
        theta = model.theta_
        if len(X) in budgets:
            out[len(X)] = _score(model, X, y, prior, rseed + len(X), surrogate, best)
        if len(X) >= max(budgets):
            break
        size = batch_small if len(X) < 64 else batch
        size = min(size, max(budgets) - len(X))
        B = next_batch(X, y, prior, None, size, rseed + 7919 * (r + 1), model=model,
                       n_candidates=n_candidates)
        X, y = np.vstack([X, B]), np.concatenate([y, observe(B)])
        r += 1
    assert X.shape[1] == k
    return method, rep, out, time.perf_counter() - t0


def proxies_to_reach(budgets: list[int], curve: dict[int, float], level: float) -> float | None:
    """Proxies a method needs to reach ``level``: first budget at or below it, interpolated
    linearly in log-budget with the previous budget (``None`` if never reached)."""
    prev = None
    for b in budgets:
        r = curve[b]
        if r <= level:
            if prev is None or prev[1] == r:
                return float(b)
            (b0, r0) = prev
            t = (r0 - level) / (r0 - r)
            return float(np.exp(np.log(b0) + t * (np.log(b) - np.log(b0))))
        prev = (b, r)
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help="folder with RegMix's CSV files (see its README.md)")
    p.add_argument("--target", default=DEFAULT_TARGET, help="loss column the surrogate models")
    p.add_argument("--budgets", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512],
                   help="proxy budgets to compare (reachable by the sequential schedule)")
    p.add_argument("--reps", type=int, default=10, help="repetitions (fixed seeds) per method")
    p.add_argument("--seed", type=int, default=0, help="base seed")
    p.add_argument("--init", type=int, default=16, help="size of the sequential initial design")
    p.add_argument("--batch-small", type=int, default=8, help="sequential batch below 64 proxies")
    p.add_argument("--batch", type=int, default=16, help="sequential batch from 64 proxies on")
    p.add_argument("--refit-every", type=int, default=3,
                   help="re-estimate GP hyperparameters every this many rounds")
    p.add_argument("--candidates", type=int, default=1000, help="Thompson candidate-set size")
    p.add_argument("--proposal", choices=RULES, default="argmin",
                   help="proposal rule used for the headline speedup")
    p.add_argument("--quick", action="store_true",
                   help="3 repetitions and budgets up to 128 (a smoke run)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="worker processes (each single-threaded)")
    p.add_argument("--json", type=Path, default=None,
                   help="write {random: {budget: regret}, sequential: {...}, speedup: x}")
    p.add_argument("--markdown", type=Path,
                   default=Path(__file__).resolve().parent / "sequential_design.md",
                   help="markdown table output")
    p.add_argument("--plot", type=Path,
                   default=Path(__file__).resolve().parent / "sequential_design.png",
                   help="regret-vs-budget plot output")
    return p.parse_args(argv)


def _plot(path: Path, budgets: list[int], curves: dict, sems: dict, rule: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for method in curves:
        m = np.array([curves[method][b] for b in budgets])
        s = np.array([sems[method][b] for b in budgets])
        ax.errorbar(budgets, m, yerr=s, marker="o", capsize=3, label=method)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("proxies trained")
    ax.set_ylabel(f"regret of the {rule} proposal (surrogate loss)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.reps = min(args.reps, 3)
        args.budgets = [b for b in args.budgets if b <= 128] or [min(args.budgets)]
    budgets = sorted(set(args.budgets))
    if budgets[0] < args.init:
        raise SystemExit(f"--budgets must be at least --init ({args.init})")
    data = args.data.resolve()
    if not data.is_dir():
        raise SystemExit(f"--data {data} is not a folder")
    t0 = time.perf_counter()
    _init_worker()
    surrogate, prior, best, noise = build_surrogate(data, args.target)
    t_sur = time.perf_counter() - t0
    tasks = [(m, rep, args.seed, budgets, surrogate, prior, best, noise, args.init, args.batch_small,
              args.batch, args.refit_every, args.candidates)
             for rep in range(args.reps) for m in ("sequential", "random")]
    res: dict = {"random": {}, "sequential": {}}
    secs: dict = {"random": 0.0, "sequential": 0.0}
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), initializer=_init_worker) as pool:
        for method, rep, out, s in pool.map(run_one, tasks):
            missing = [b for b in budgets if b not in out]
            if missing:
                raise SystemExit(f"budgets {missing} are not reached by the sequential schedule")
            res[method][rep] = out
            secs[method] += s
            print(f"# {method} rep {rep}: {s:.0f} s, " + ", ".join(
                f"{b}: {out[b][args.proposal]:.4f}" for b in budgets), file=sys.stderr, flush=True)
    wall = time.perf_counter() - t0
    mean = {r: {m: {b: float(np.mean([res[m][i][b][r] for i in res[m]])) for b in budgets}
                for m in res} for r in RULES}
    sem = {r: {m: {b: float(np.std([res[m][i][b][r] for i in res[m]]) / np.sqrt(args.reps))
                   for b in budgets} for m in res} for r in RULES}
    top = budgets[-1]
    speed = {}
    for r in RULES:
        need = proxies_to_reach(budgets, mean[r]["sequential"], mean[r]["random"][top])
        speed[r] = (top / need) if need else None
    lines = ["| budget | " + " | ".join(f"random {r} | sequential {r}" for r in RULES) + " |",
             "|---:|" + "---:|" * (2 * len(RULES))]
    for b in budgets:
        cells = [f"{mean[r][m][b]:.4f} ± {sem[r][m][b]:.4f}" for r in RULES
                 for m in ("random", "sequential")]
        lines.append(f"| {b} | " + " | ".join(cells) + " |")
    fmt = {r: (f"{speed[r]:.1f}×" if speed[r] else f"< 1× (never reaches it by {top})")
           for r in RULES}
    notes = [
        f"Regret = surrogate loss of the proposal − surrogate minimum ({best:.4f}); mean ± s.e. "
        f"over {args.reps} repetitions; observation noise sd {noise:.4f} (the surrogate's own).",
        f"Sequential: {args.init} initial Dirichlet proxies, then batch Thompson sampling in rounds "
        f"of {args.batch_small} (< 64 proxies) / {args.batch}; {args.candidates} candidates; GP "
        f"hyperparameters re-estimated every {args.refit_every} rounds.",
        "Speedup = largest budget / proxies the sequential design needs to reach the random "
        f"design's regret at {top} (log-interpolated): "
        + "; ".join(f"{r} {fmt[r]}" for r in RULES) + f". Headline rule: `{args.proposal}`.",
        f"Wall time {wall:.0f} s ({t_sur:.0f} s surrogate) with {args.jobs} worker(s); "
        f"CPU seconds per repetition: random {secs['random'] / args.reps:.0f}, "
        f"sequential {secs['sequential'] / args.reps:.0f}.",
    ]
    text = "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    print(text)
    args.markdown.write_text(text)
    _plot(args.plot, budgets, mean[args.proposal], sem[args.proposal], args.proposal)
    if args.json:
        args.json.write_text(json.dumps({
            "random": {str(b): mean[args.proposal]["random"][b] for b in budgets},
            "sequential": {str(b): mean[args.proposal]["sequential"][b] for b in budgets},
            "speedup": speed[args.proposal], "proposal": args.proposal,
            "by_rule": {r: {"random": {str(b): v for b, v in mean[r]["random"].items()},
                            "sequential": {str(b): v for b, v in mean[r]["sequential"].items()},
                            "speedup": speed[r]} for r in RULES},
            "wall_s": wall}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
