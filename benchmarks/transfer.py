"""Does the proposal win at the final scale? Today's single-scale proposal against the scale-aware,
hedged one (and the bagged one), judged by the final-scale target over paired seeds; plus RegMix's
public table (fit on small models, rank the 1B ones).

    python benchmarks/transfer.py                          # built-in and synthetic corpora, RegMix
    python benchmarks/transfer.py --corpus my.yaml --seeds 0 1 2 3
    python benchmarks/transfer.py --only regmix

For each corpus the search runs as `mixopt run` would (the swarm, anchors and ladder of the config;
a run into the same `--out` reuses every finished proxy), then these mixtures are trained at the
final scale at every seed, each run in its own single-threaded process, two at a time:

* `single_scale` — RegMix's proposal on the chosen regressor fitted to the target-size proxies
  alone (the proposer before the scale ladder, the hedge and the pilot);
* `scale_aware` — the shipped proposal: the scale-aware law at the final compute, hedged;
* `bagged` — the mean of the bootstrap optima;
* `natural`, `stratified` (and the config's anchors).

Paired differences by seed with 95% t-intervals go to `benchmarks/transfer.md` and `.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _config(spec: str, out: Path):
    from mixopt.config import ExperimentConfig, load_config

    if spec == "builtin":  # the demo: its target and anchor
        from mixopt.config.io import demo_config

        cfg = demo_config()
    elif spec == "synthetic":
        cfg = ExperimentConfig.model_validate({"name": "synthetic", "corpus": {
            "source": "synthetic", "synthetic_domains": 5, "synthetic_docs": 400}, "tokenizer": {"vocab_size": 1024}})
    else:
        cfg = load_config(spec)
    data = cfg.model_dump(mode="json")
    data["runtime"].update(out_dir=str(out), warehouse=str(out / "mixopt.duckdb"), wandb_mode="disabled",
                           progress=False)
    data["final"]["enabled"] = False
    return ExperimentConfig.model_validate(data)


def _single_scale(exp, wh, outcome) -> list[float]:
    """RegMix on the chosen regressor, fitted to the target-size rows only (no ladder, no hedge)."""
    from mixopt.mixtures.auto import AutoRegressor
    from mixopt.mixtures.design import token_caps
    from mixopt.mixtures.proposers import propose_regmix
    from mixopt.mixtures.regressors import make_regressor
    from mixopt.tasks.fit import training_data

    cfg = exp.cfg
    _, X, y = training_data(exp, wh)
    if outcome.regressor == "auto":
        model = AutoRegressor(candidates=cfg.regressor.candidates, folds=min(cfg.regressor.cv_folds, len(y)),
                              seed=cfg.swarm.seed, repeats=1).fit(X, y)
    else:
        model = make_regressor(outcome.regressor, cfg.swarm.seed).fit(X, y)
    caps = token_caps(exp.train_tokens, cfg.final.tokens, cfg.proposer.final_max_epochs)
    return [float(w) for w in propose_regmix(model, exp.prior, caps, n_samples=cfg.proposer.n_samples,
                                             top_k=cfg.proposer.top_k, seed=cfg.swarm.seed).weights]


def run_corpus(spec: str, seeds: list[int], out: Path) -> dict:
    from mixopt.flows.search import mixture_search
    from mixopt.mixtures.design import token_caps
    from mixopt.mixtures.verdict import paired
    from mixopt.models.launch import run_in_subprocess
    from mixopt.tasks.corpus import prepare_experiment
    from mixopt.warehouse import Warehouse

    cfg = _config(spec, out)
    t0 = time.perf_counter()
    result = mixture_search(cfg)
    search_s = time.perf_counter() - t0
    with Warehouse(cfg.runtime.warehouse) as wh:
        exp = prepare_experiment(cfg, wh)
        details = result.fit.details
        mixes = {"single_scale": _single_scale(exp, wh, result.fit), "scale_aware": result.fit.weights}
        if "bootstrap" in details:
            mixes["bagged"] = details["bootstrap"]["bagged"]
        caps = token_caps(exp.train_tokens, cfg.final.tokens, cfg.proposer.final_max_epochs)
        mixes.update(exp.anchor_mixtures(caps))
    specs = [exp.run_spec("final", label, w, seed, cfg.final) for seed in seeds for label, w in mixes.items()]
    for s in specs:
        s.threads = 1

    def train(run):
        """Train one final run (or read its result back from an earlier invocation's work folder)."""
        from mixopt.runspec import RunResult

        done_file = out / "transfer" / run.run_id / f"{run.run_id}.result.json"
        if done_file.exists():
            res = RunResult.from_json(done_file.read_text())
            if res.run_id == run.run_id and res.status == "ok":
                return run, res
        return run, run_in_subprocess(run, out / "transfer" / run.run_id)

    t1 = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(train, specs))
    final_s = time.perf_counter() - t1
    target = {}
    for run, res in done:
        if res.status == "ok":
            target.setdefault(run.label, {})[run.seed] = exp.target_loss(res.val_losses)
    comps = {}
    for a in ("scale_aware", "bagged", "single_scale"):
        for b in [x for x in mixes if x not in ("scale_aware", "bagged", "single_scale")] + (
                ["single_scale"] if a != "single_scale" else []):
            if a in target and b in target:
                p = paired(b, target[a], target[b])
                comps[f"{a} - {b}"] = {"diffs": p.diffs, "mean": p.mean, "low": p.low, "high": p.high,
                                       "outcome": p.outcome}
    return {"corpus": spec, "experiment": exp.experiment_id, "domains": exp.domain_names, "seeds": seeds,
            "mixtures": mixes, "target": {k: {str(s): v for s, v in d.items()} for k, d in target.items()},
            "paired": comps, "search_s": search_s, "final_s": final_s,
            "cv": result.fit.cv, "scale_checks": details.get("scale_checks", []),
            "stability_tv": details.get("bootstrap", {}).get("stability_tv")}


def run_regmix(data: Path) -> dict:
    """Fit on the 1M runs (+ the 60M runs as a second scale), rank RegMix's 64 1B mixtures."""
    from regmix_table import DEFAULT_TARGET, load_split
    from scipy.stats import spearmanr

    from mixopt.mixtures.regressors import make_regressor
    from mixopt.mixtures.scaling import ScaleAwareLaw, log_compute, mixture_key

    X1, y1 = load_split(data, "train", "1m", DEFAULT_TARGET)
    Xt, yt = load_split(data, "test", "1m", DEFAULT_TARGET)
    X60, y60 = load_split(data, "test", "60m", DEFAULT_TARGET)
    XB, yB = load_split(data, "test", "1B", DEFAULT_TARGET)
    # RegMix's budgets: 1M and 60M models on 1B tokens, 1B models on 25B tokens
    s1, s60, sB = (float(log_compute(n, d)) for n, d in ((1e6, 1e9), (60e6, 1e9), (1e9, 25e9)))
    rows = []

    def score(name, pred):
        pick = int(np.argmin(pred))
        rows.append({"fit": name, "spearman_1B": float(spearmanr(pred, yB)[0]),
                     "regret_at_1": float(yB[pick] - yB.min()), "rank_of_pick": int((yB < yB[pick]).sum()) + 1})

    lgb = lambda: make_regressor("lightgbm", 0)  # noqa: E731
    score("lightgbm on 512 x 1M", lgb().fit(X1, y1).predict(XB))
    score("lightgbm on 256 x 60M", lgb().fit(X60, y60).predict(XB))
    W = np.vstack([X1, Xt, X60])
    s = np.r_[np.full(len(X1) + len(Xt), s1), np.full(len(X60), s60)]
    y = np.r_[y1, yt, y60]
    groups = [mixture_key(w) for w in W]
    for name, base in (("ridge", None), ("lightgbm", lgb)):
        law = ScaleAwareLaw(base).fit(W, s, y, groups)
        score(f"scale law [{name} level at 60M + slope 1M->60M], predicted at 1B", law.predict_at(XB, sB))
    return {"rows": rows, "n_1B": int(len(yB))}


def _md(results: list[dict], regmix: dict | None) -> str:
    out = ["# Transfer to the final scale (`benchmarks/transfer.py`)\n"]
    for r in results:
        out.append(f"\n## {r['corpus']} (`{r['experiment']}`; seeds {r['seeds']}; search {r['search_s']:.0f} s, "
                   f"final runs {r['final_s']:.0f} s)\n")
        out.append("| mixture | " + " | ".join(r["domains"]) + " | target per seed | mean |\n|---|"
                   + "---|" * (len(r["domains"]) + 2) + "\n")
        for label, w in r["mixtures"].items():
            t = r["target"].get(label, {})
            vals = [t[str(s)] for s in r["seeds"] if str(s) in t]
            cells = (", ".join(f"{v:.4f}" for v in vals) + f" | {np.mean(vals):.4f}") if vals else "– | –"
            out.append(f"| {label} | " + " | ".join(f"{x:.3f}" for x in w) + f" | {cells} |\n")
        out.append("\n| paired difference (negative: the first is better) | per seed | mean | 95% CI | outcome |\n"
                   "|---|---|---|---|---|\n")
        for k, p in r["paired"].items():
            out.append(f"| {k} | {', '.join(f'{d:+.4f}' for d in p['diffs'])} | {p['mean']:+.4f} | "
                       f"{p['low']:+.4f} … {p['high']:+.4f} | {p['outcome']} |\n")
        if r.get("stability_tv") is not None:
            out.append(f"\nBootstrap stability of the optimum (mean TV): {r['stability_tv']:.3f}.\n")
    if regmix:
        out.append(f"\n## RegMix's public table: rank the {regmix['n_1B']} 1B-parameter mixtures\n\n"
                   "| fit | Spearman ρ at 1B | regret@1 | rank of the pick |\n|---|---|---|---|\n")
        for row in regmix["rows"]:
            out.append(f"| {row['fit']} | {row['spearman_1B']:.3f} | {row['regret_at_1']:.4f} | "
                       f"{row['rank_of_pick']} |\n")
    return "".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", nargs="*", default=["builtin", "synthetic"],
                    help="`builtin`, `synthetic` or a config path (each runs its own search)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="final-run seeds (paired)")
    ap.add_argument("--out", default="out/transfer", help="output folder (reused: finished proxies are kept)")
    ap.add_argument("--only", choices=["corpora", "regmix"], help="run only one part")
    ap.add_argument("--regmix-data", default=str(HERE.parent.parent / "shared" / "benchmarks" / "regmix"),
                    help="folder of RegMix's CSV files")
    ap.add_argument("--json", default=str(HERE / "transfer.json"), help="results file")
    ap.add_argument("--md", default=str(HERE / "transfer.md"), help="markdown table")
    args = ap.parse_args()
    results = []
    if args.only != "regmix":
        for spec in args.corpus:
            name = Path(spec).stem if spec not in ("builtin", "synthetic") else spec
            results.append(run_corpus(spec, args.seeds, Path(args.out) / name))
            print(json.dumps(results[-1]["paired"], indent=1), flush=True)
    regmix = None
    if args.only != "corpora" and Path(args.regmix_data).exists():
        regmix = run_regmix(Path(args.regmix_data))
    Path(args.json).write_text(json.dumps({"corpora": results, "regmix": regmix}, indent=1, default=float))
    Path(args.md).write_text(_md(results, regmix))
    print(_md(results, regmix))


if __name__ == "__main__":
    main()
