"""Benchmark mixture regressors on RegMix's public swarm (Liu et al., 2024).

Fits each regressor on random subsets of the 512 training runs (1M-parameter proxies) and scores
the Spearman correlation between its predictions and the observed losses of held-out mixtures
trained at 1M, 60M and 1B parameters.  Held-out rows are used for scoring only: every fit, model
choice (``auto``) and hyperparameter sees the training subset alone.

Example::

    python benchmarks/regmix_table.py --n 64 128 --regressors gp auto --json out.json

Prints a markdown table of mean Spearman rho per scale (mean over ``--subsets`` subsets).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from mixopt.mixtures.regressors import REGRESSOR_NAMES, make_regressor

DEFAULT_DATA = Path(__file__).resolve().parent.parent / ".." / "shared" / "benchmarks" / "regmix"
DEFAULT_TARGET = "metric/the_pile_pile_cc_val_loss"
SCALES = {"1M": "1m", "60M": "60m", "1B": "1B"}


def _read_csv(path: Path) -> tuple[list[str], dict[int, np.ndarray]]:
    """Header (without ``index``) and ``{index: row values}`` of one RegMix CSV file."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if header[0] != "index":
            raise ValueError(f"{path}: first column must be 'index', got {header[0]!r}")
        rows = {int(float(r[0])): np.array([float(v) for v in r[1:]]) for r in reader if r}
    return header[1:], rows


def load_split(data: Path, prefix: str, scale: str, target: str) -> tuple[np.ndarray, np.ndarray]:
    """Mixtures ``X`` and target losses ``y`` of one split, joined on ``index``."""
    _, mix = _read_csv(data / f"{prefix}_mixture_{scale}.csv")
    loss_cols, loss = _read_csv(data / f"{prefix}_pile_loss_{scale}.csv")
    if target not in loss_cols:
        raise SystemExit(f"unknown --target {target!r}; choose one of: {', '.join(loss_cols)}")
    j = loss_cols.index(target)
    keys = sorted(set(mix) & set(loss))
    if not keys:
        raise SystemExit(f"no common index between the {prefix} {scale} mixture and loss files")
    return np.array([mix[i] for i in keys]), np.array([loss[i][j] for i in keys])


def load_all(data: Path, target: str) -> tuple[tuple[np.ndarray, np.ndarray], dict[str, tuple]]:
    """Training split and the held-out splits per scale."""
    train = load_split(data, "train", "1m", target)
    test = {label: load_split(data, "test", s, target) for label, s in SCALES.items()}
    return train, test


def _init_worker() -> None:
    try:  # one BLAS thread per worker process: the workers already use the cores
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover
        pass


def run_one(task: tuple) -> tuple:
    """Fit one regressor on one training subset and score it on every held-out scale."""
    name, n, rep, seed, train, test = task
    X, y = train
    rng = np.random.default_rng([seed, n, rep])
    idx = rng.choice(len(y), size=n, replace=False)
    t0 = time.perf_counter()
    model = make_regressor(name, seed=seed).fit(X[idx], y[idx])
    fit_s = time.perf_counter() - t0
    rho = {label: float(spearmanr(model.predict(Xt), yt)[0]) for label, (Xt, yt) in test.items()}
    choice = getattr(model, "choice_", None)
    return name, n, rep, rho, fit_s, choice


def markdown_table(results: dict, fit_time: dict, ns: list[int], names: list[str]) -> str:
    """Markdown table: one row per (regressor, n), mean Spearman per scale."""
    lines = ["| regressor | n runs | ρ 1M | ρ 60M | ρ 1B | fit s |", "|---|---:|---:|---:|---:|---:|"]
    for name in names:
        for n in ns:
            r = results[name][n]
            lines.append(f"| {name} | {n} | " + " | ".join(f"{r[s]:.3f}" for s in SCALES)
                         + f" | {fit_time[name][n]:.1f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help="folder with RegMix's CSV files (see its README.md)")
    p.add_argument("--target", default=DEFAULT_TARGET,
                   help="loss column to predict (any of the 13 metric/..._val_loss columns)")
    p.add_argument("--n", type=int, nargs="+", default=[64, 128, 256, 512],
                   help="training-subset sizes (at most 512)")
    p.add_argument("--regressors", nargs="+", choices=list(REGRESSOR_NAMES),
                   default=["linear", "lightgbm", "mixing_law", "mixing_law_sqrt", "gp", "auto"],
                   help="regressors to benchmark")
    p.add_argument("--subsets", type=int, default=5, help="random training subsets per size")
    p.add_argument("--seed", type=int, default=0,
                   help="base seed for the subsets and the regressors")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="worker processes (each single-threaded)")
    p.add_argument("--json", type=Path, default=None,
                   help="write {regressor: {n: {scale: mean_rho}}} to this file")
    p.add_argument("--markdown", type=Path, default=None, help="also write the table to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = args.data.resolve()
    if not data.is_dir():
        raise SystemExit(f"--data {data} is not a folder")
    train, test = load_all(data, args.target)
    if max(args.n) > len(train[1]) or min(args.n) < 2:
        raise SystemExit(f"--n must be between 2 and {len(train[1])}")
    tasks = [(name, n, rep, args.seed, train, test)
             for n in sorted(args.n, reverse=True) for name in args.regressors
             for rep in range(args.subsets)]
    t0 = time.perf_counter()
    rhos: dict = defaultdict(lambda: defaultdict(list))
    fit_time: dict = defaultdict(lambda: defaultdict(float))
    choices: dict = defaultdict(Counter)
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), initializer=_init_worker) as pool:
        for name, n, _rep, rho, fit_s, choice in pool.map(run_one, tasks):
            rhos[name][n].append(rho)
            fit_time[name][n] += fit_s / args.subsets
            if choice is not None:
                choices[n][choice] += 1
    wall = time.perf_counter() - t0
    ns = sorted(args.n)
    results = {name: {n: {s: float(np.mean([r[s] for r in rhos[name][n]])) for s in SCALES}
                      for n in ns} for name in args.regressors}
    table = markdown_table(results, fit_time, ns, args.regressors)
    notes = [f"Target `{args.target}`; mean Spearman ρ over {args.subsets} random training subsets; "
             f"held-out: {', '.join(f'{len(test[s][1])} mixtures at {s}' for s in SCALES)}. "
             f"Wall time {wall:.0f} s with {args.jobs} worker(s); fit s = mean seconds per fit."]
    for n in ns:
        if choices[n]:
            notes.append(f"auto choices at n={n}: "
                         + "; ".join(f"{c} ×{k}" for c, k in choices[n].most_common()))
    text = table + "\n\n" + "\n".join(f"- {line}" for line in notes) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(
            {name: {str(n): results[name][n] for n in ns} for name in args.regressors}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
