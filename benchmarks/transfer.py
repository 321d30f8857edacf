"""Does the search's own answer beat every baseline at the final scale?

    python benchmarks/transfer.py                                  # demo, caps and synthetic, CPU-sized
    python benchmarks/transfer.py --scale gpu --device cuda --workers 12 --time-budget-s 1500
    python benchmarks/transfer.py --quick --corpus synthetic --seeds 0 1   # a smoke test (minutes)
    python benchmarks/transfer.py --corpus my.yaml --seeds 0 1 2 3 4

For each case (`--corpus`) the whole search runs as `mixopt run` would (its swarm, anchors, ladder,
gate and hedge; a run into the same `--out` reuses every finished proxy and final run), then these
arms and every baseline of the config are trained at the final scale at every seed, paired by seed:

* `hedged` — the shipped proposal (the law at the final compute when the scale gate allows it, hedged);
* `raw` — the law's own optimum, no hedge (kappa = 0: the proposal's `raw_optimum`);
* `best_anchor` — the anchor the law predicts best at the final scale (`hedge_start`);
* `single_scale` — RegMix on the chosen regressor fitted to the target-size proxies alone;
* baselines: the config's (`final.baselines`, static ones: natural, stratified, unimax, similarity
  and its anchors), within the final budget's caps, exactly as the final comparison builds them.

Equal mixtures share runs (the same run id, trained once). Cases: `demo` (the demo config: an eval set
never trained on), `caps` (the demo's corpus and target with `corpus.max_bytes_per_domain` lowered
to half the final tokens, so no domain can fill the final budget within `proposer.final_max_epochs`),
`synthetic` (5 synthetic domains, the mean target) or a config path. `--scale gpu` multiplies the
models and tokens (see `SCALES`). Only the markdown below `transfer_md.MARKER` is rewritten;
cases of the same scale not run this time are kept from the JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shlex
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from transfer_md import ALPHA, CASES, render, write_md  # noqa: E402  (beside this script)

ARMS = ("hedged", "raw", "best_anchor", "single_scale")
REGMIX_DATA = [HERE.parent.parent / "shared" / "benchmarks" / "regmix",  # next to the checkout, or above a worktree
               HERE.parent.parent.parent / "shared" / "benchmarks" / "regmix"]

# The model and token sizes of each scale, merged over every case's config. `small` keeps the configs'
# own sizes (the demo's: 2x64 proxies on 150k tokens, a 3x96 final on 200k). `gpu`: 4x144 proxies
# (1.00M non-embedding parameters) on 1M tokens, an 8x384 final (14.2M non-embedding, 14x) on 2M.
SCALES: dict[str, dict] = {
    "small": {},
    "gpu": {
        "swarm": {"model": {"n_layer": 4, "n_embd": 144, "n_head": 3}, "tokens": 1_000_000, "seq_len": 256,
                  "batch_size": 16, "n_proxies": 32},
        "final": {"model": {"n_layer": 8, "n_embd": 384, "n_head": 6}, "tokens": 2_000_000, "seq_len": 256,
                  "batch_size": 32},
    },
}
# --quick: a smoke test of the whole path (a few minutes a case on a CPU), not evidence.
QUICK = {
    "swarm": {"n_proxies": 8, "tokens": 24_000, "eval_batches": 4},
    "design": {"noise_seeds": 1, "ladder": {"mixtures": 3}},
    "regressor": {"cv_repeats": 1},
    "proposer": {"n_samples": 5_000, "top_k": 50, "bootstrap": 10, "bootstrap_samples": 500},
    "final": {"tokens": 40_000, "eval_batches": 8},
}
SYNTHETIC = {"name": "synthetic", "corpus": {"source": "synthetic", "synthetic_domains": 5, "synthetic_docs": 400},
             "tokenizer": {"vocab_size": 1024},
             "final": {"baselines": ["natural", "stratified", "unimax", "similarity"]}}


def _merge(base: dict, over: dict) -> dict:
    """`over` merged into `base` (nested mappings merged, anything else replaced)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def case_config(case: str, scale: str, quick: bool, out: Path, device: str, final_tokens: int | None = None):
    """The config of one case at one scale (the search's final step off: this script trains the finals)."""
    from mixopt.config import ExperimentConfig, load_config
    from mixopt.config.io import demo_config

    if case in ("demo", "caps"):
        data = demo_config().model_dump(mode="json")
    elif case == "synthetic":
        data = ExperimentConfig.model_validate(SYNTHETIC).model_dump(mode="json")
    else:
        data = load_config(case).model_dump(mode="json")
    data = _merge(data, SCALES[scale])
    if quick:
        data = _merge(data, QUICK)
    if final_tokens:
        data["final"]["tokens"] = int(final_tokens)
    if case == "caps":  # ~3.2 bytes a token: half the final tokens in bytes caps every domain near 0.6
        data["corpus"]["max_bytes_per_domain"] = max(20_000, data["final"]["tokens"] // 2)
    data["runtime"].update(out_dir=str(out), warehouse=str(out / "mixopt.duckdb"), wandb_mode="disabled",
                           progress=False, device=device)
    data["final"].update(enabled=False, curve_points=0, interaction_points=0)  # curves: not identity, not used
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


def mixtures(exp, wh, fit) -> tuple[dict, dict, list[str]]:
    """(arms, baselines, notes): label -> mixture for the four arms and the config's static baselines."""
    from mixopt.mixtures.design import token_caps
    from mixopt.tasks.final import final_mixtures

    cfg = exp.cfg
    d = fit.details
    notes = []
    baselines = final_mixtures(exp, fit.weights, static_only=True)
    baselines.pop("proposed")
    skipped = [b for b in cfg.baselines() if b not in baselines]
    if skipped:
        notes.append(f"baselines not trained here (adaptive or unknown): {', '.join(skipped)}")
    arms = {"hedged": [float(w) for w in fit.weights]}
    if "raw_optimum" in d:
        arms["raw"] = [float(w) for w in d["raw_optimum"]]
    else:
        notes.append(f"no `raw` arm: the proposer `{fit.method}` made no raw optimum")
    caps = token_caps(exp.train_tokens, cfg.final.tokens, cfg.proposer.final_max_epochs)
    anchors = exp.anchor_mixtures(caps, cfg.final.tokens)
    start = d.get("hedge_start")
    if start in anchors:
        arms["best_anchor"] = [float(w) for w in anchors[start]]
    else:
        notes.append(f"no `best_anchor` arm: hedge_start {start!r} is not an anchor")
    arms["single_scale"] = _single_scale(exp, wh, fit)
    return arms, baselines, notes


def _train_one(spec, work: Path, deadline: float) -> dict:
    """Train one final run in its own process (or read back an earlier invocation's result); never raises."""
    from mixopt.models.launch import run_in_subprocess
    from mixopt.runspec import RunResult

    done = work / spec.run_id / f"{spec.run_id}.result.json"
    try:
        if done.exists():
            res = RunResult.from_json(done.read_text())
            if res.run_id == spec.run_id and res.status == "ok":
                return {"status": "ok", "result": res, "reused": True}
        if time.time() > deadline:
            return {"status": "skipped", "error": "time budget spent before it started"}
        res = run_in_subprocess(spec, work / spec.run_id)
        return {"status": res.status, "result": res, "error": res.error}
    except Exception as e:  # noqa: BLE001 - one run's crash must not lose the others
        return {"status": "failed", "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]}


def train_finals(exp, labels: dict, seeds: list[int], work: Path, workers: int, deadline: float,
                 fault: tuple[str, ...] = ()) -> dict:
    """Every label at every seed at the final scale, equal mixtures once (their shared run id), seed by
    seed (a time budget then leaves whole seeds). Returns target[label][seed], runs (one row per run id).
    `fault`: labels whose runs crash at their first step (`RunSpec.fault`), to check the others survive."""
    cfg = exp.cfg
    threads = max(1, (os.cpu_count() or 2) // max(1, workers))
    unique, members = {}, {}
    for seed in seeds:
        for label, w in labels.items():
            spec = exp.run_spec("final", label, w, seed, cfg.final)
            spec.threads = threads
            unique.setdefault(spec.run_id, spec)
            members.setdefault(spec.run_id, []).append(label)
            if label in fault:
                unique[spec.run_id].fault = "exit@1"
    with ThreadPoolExecutor(max(1, workers)) as pool:
        futures = {rid: pool.submit(_train_one, s, work, deadline) for rid, s in unique.items()}
        outcomes = {rid: f.result() for rid, f in futures.items()}
    target: dict[str, dict[int, float]] = {}
    run_ids: dict[str, dict[int, str]] = {}
    runs = []
    for rid, o in outcomes.items():
        spec, res = unique[rid], o.get("result")
        t = exp.target_loss(res.val_losses) if res is not None and o["status"] == "ok" else None
        for label in members[rid]:
            run_ids.setdefault(label, {})[spec.seed] = rid
            if t is not None:
                target.setdefault(label, {})[spec.seed] = float(t)
        runs.append({"run_id": rid, "seed": spec.seed, "labels": members[rid], "status": o["status"],
                     "target": t, "error": (o.get("error") or "")[:300] or None, "reused": o.get("reused", False),
                     "wall_s": res.wall_s if res is not None else None,
                     "n_params": res.n_params if res is not None else None,
                     "n_params_non_embedding": res.n_params_non_embedding if res is not None else None})
    return {"target": target, "runs": runs, "run_ids": run_ids}


def compare(target: dict, arms: dict, baselines: dict, run_ids: dict) -> tuple[list[dict], dict]:
    """Paired rows (every arm against every baseline; hedged against the other arms) and each arm's claims."""
    from mixopt.mixtures.verdict import beats_at_least_one, beats_every, paired

    def row(a: str, p) -> dict:
        same = bool(p.seeds) and all(run_ids.get(a, {}).get(s) == run_ids.get(p.baseline, {}).get(s) for s in p.seeds)
        return {"name": f"{a} - {p.baseline}", "baseline": p.baseline, "diffs": p.diffs, "seeds": p.seeds,
                "mean": p.mean, "low": p.low, "high": p.high, "outcome": p.outcome, "same_runs": same}

    rows, claims = [], {}
    for arm in arms:
        comps = [paired(b, target.get(arm, {}), target.get(b, {})) for b in baselines]
        rows += [row(arm, p) for p in comps]
        every, one = beats_every(comps, alpha=ALPHA), beats_at_least_one(comps, alpha=ALPHA)
        claims[arm] = {"beats_every": {"holds": every.holds, "sentence": every.sentence, "p": every.p_values},
                       "beats_at_least_one": {"holds": one.holds, "baselines": one.baselines,
                                              "sentence": one.sentence, "holm_p": one.adjusted}}
    for other in [a for a in arms if a != "hedged"]:
        rows.append(row("hedged", paired(other, target.get("hedged", {}), target.get(other, {}))))
    return rows, claims


def _fit_scores(wh, exp_id: str, chosen: str) -> dict:
    """The similarity prior's Spearman (its `prior:similarity` fits row) and the chosen regressor's."""
    from mixopt.tasks.fit import PRIOR_FIT
    from mixopt.warehouse import reads

    out = {}
    for row in reads.latest_fits(wh, exp_id).to_dicts():
        if row["regressor"] == PRIOR_FIT:
            out["prior_spearman"] = row["cv_spearman"]
        if row["regressor"] == chosen:
            out["chosen_spearman"] = row["cv_spearman"]
    return out


def _sizes(exp) -> dict:
    """Parameter counts (closed form) and tokens of the proxies and the final model."""
    from mixopt.mixtures.sizing import expected_params

    cfg = exp.cfg
    out = {}
    for name, t in (("proxy", cfg.swarm), ("final", cfg.final)):
        total, non_emb = expected_params(exp.vocab_size, t.seq_len, t.model.n_layer, t.model.n_embd)
        out[name] = {"n_layer": t.model.n_layer, "n_embd": t.model.n_embd, "params": total,
                     "params_non_embedding": non_emb, "tokens": t.tokens, "seq_len": t.seq_len,
                     "batch_size": t.batch_size}
    out["ratio_params"] = out["final"]["params"] / out["proxy"]["params"]
    out["ratio_non_embedding"] = out["final"]["params_non_embedding"] / out["proxy"]["params_non_embedding"]
    return out


def _caps(exp) -> list[dict]:
    """Per domain: training tokens, the final budget's cap and the epochs a final run on it alone would read."""
    from mixopt.mixtures.design import token_caps

    cfg = exp.cfg
    caps = token_caps(exp.train_tokens, cfg.final.tokens, cfg.proposer.final_max_epochs)
    return [{"domain": n, "train_tokens": int(t), "cap": float(c), "epochs_alone": cfg.final.tokens / t}
            for n, t, c in zip(exp.domain_names, exp.train_tokens, caps)]


def run_case(case: str, args, out: Path, deadline: float) -> dict:
    """One case: the search, the arms and baselines at the final scale, the paired comparisons."""
    from mixopt.flows.search import mixture_search
    from mixopt.tasks.corpus import prepare_experiment
    from mixopt.warehouse import Warehouse

    cfg = case_config(case, args.scale, args.quick, out, args.device, args.final_tokens)
    t0 = time.perf_counter()
    result = mixture_search(cfg)
    search_s = time.perf_counter() - t0
    with Warehouse(cfg.runtime.warehouse) as wh:
        exp = prepare_experiment(cfg, wh)
        arms, baselines, notes = mixtures(exp, wh, result.fit)
        scores = _fit_scores(wh, exp.experiment_id, result.fit.regressor)
    t1 = time.perf_counter()
    done = train_finals(exp, {**arms, **baselines}, args.seeds, out / "transfer", args.workers, deadline,
                       tuple(args.inject_fault))
    final_s = time.perf_counter() - t1
    rows, claims = compare(done["target"], arms, baselines, done["run_ids"])
    d = result.fit.details
    return {"case": case, "experiment": exp.experiment_id, "domains": exp.domain_names, "seeds": args.seeds,
            "scale": args.scale, "quick": args.quick, "date": _now(), "command": _command(),
            "machine": _machine(args.device),
            "arms": arms, "baselines": baselines, "notes": notes,
            "target": {k: {str(s): v for s, v in t.items()} for k, t in done["target"].items()},
            "runs": done["runs"], "paired": rows, "claims": claims, "search_s": search_s, "final_s": final_s,
            "regressor": result.fit.regressor, **scores, "cv": result.fit.cv,
            "scale_gate": d.get("scale_gate"), "scale_aware": d.get("scale_aware"), "n_scales": d.get("n_scales"),
            "hedge_start": d.get("hedge_start"), "hedge": d.get("hedge"),
            "anchors_predicted": d.get("anchors_predicted"),
            "stability_tv": d.get("bootstrap", {}).get("stability_tv"), "sizes": _sizes(exp), "caps": _caps(exp)}


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


# ---------------------------------------------------------------- the markdown

def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in [f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])


def _machine(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = ""
    if device != "cpu":
        try:
            import torch

            if torch.cuda.is_available():
                gpu = f", {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
        except ImportError:
            pass
    return f"{platform.node()} ({os.cpu_count()} CPUs, {cpu}{gpu or ', no GPU'})"


def _load_cases(path: Path, scale: str, quick: bool) -> dict:
    """The cases an earlier run of the same scale (and quickness) wrote, to keep those not re-run."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    cases = old.get("cases", {}) if isinstance(old, dict) else {}
    return {k: v for k, v in cases.items() if isinstance(v, dict)
            and v.get("scale", scale) == scale and bool(v.get("quick")) == quick}


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", nargs="+", default=list(CASES), help="cases: demo, caps, synthetic or a config path")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="final-run seeds (paired)")
    ap.add_argument("--scale", choices=sorted(SCALES), default="small", help="model and token sizes (SCALES)")
    ap.add_argument("--quick", action="store_true", help="shrink swarm and final to a smoke test (not evidence)")
    ap.add_argument("--final-tokens", type=int, help="override the scale's final-run tokens (caps follows it)")
    ap.add_argument("--workers", type=int, default=2, help="final runs trained at once, each its own process")
    ap.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto", help="runtime.device")
    ap.add_argument("--time-budget-s", type=float, default=None,
                    help="start no new case or final run past this many seconds (what is done is still written)")
    ap.add_argument("--inject-fault", nargs="*", default=[], metavar="LABEL",
                    help="(checking the script) the runs of these mixtures die at step 1; the others must survive")
    ap.add_argument("--out", default="out/transfer", help="work folder (reused: finished proxies and runs kept)")
    ap.add_argument("--only", choices=["corpora", "regmix"], help="run only one part")
    ap.add_argument("--regmix-data", default=str(next((p for p in REGMIX_DATA if p.exists()), REGMIX_DATA[0])),
                    help="folder of RegMix's CSV files (used at --scale small)")
    ap.add_argument("--json", help="results file (default benchmarks/transfer.json, transfer_gpu.json at gpu)")
    ap.add_argument("--md", help="markdown (default benchmarks/transfer.md, transfer_gpu.md at gpu)")
    args = ap.parse_args()
    suffix = "" if args.scale == "small" else f"_{args.scale}"
    args.json = Path(args.json or HERE / f"transfer{suffix}.json")
    args.md = Path(args.md or HERE / f"transfer{suffix}.md")
    return args


def main() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    args = _args()
    start = time.time()
    deadline = start + args.time_budget_s if args.time_budget_s else float("inf")
    doc = {"generated": {"date": _now(), "machine": _machine(args.device), "command": _command()},
           "cases": _load_cases(args.json, args.scale, args.quick), "regmix": None}
    if args.only != "corpora" and args.scale == "small" and Path(args.regmix_data).exists():
        doc["regmix"] = run_regmix(Path(args.regmix_data))

    def save() -> None:
        args.json.write_text(json.dumps(doc, indent=1, default=float))
        write_md(args.md, render(doc))

    for case in ([] if args.only == "regmix" else args.corpus):
        name = case if case in CASES else Path(case).stem
        work = Path(args.out) / f"{args.scale}{'-quick' if args.quick else ''}" / name
        if time.time() > deadline:
            doc["cases"][name] = {"case": name, "scale": args.scale, "quick": args.quick,
                                  "error": "time budget spent before the case started"}
        else:
            try:
                doc["cases"][name] = run_case(case, args, work, deadline)
            except Exception as e:  # noqa: BLE001 - a failed case must not lose the others
                traceback.print_exc()
                doc["cases"][name] = {"case": name, "scale": args.scale, "quick": args.quick,
                                      "error": f"{type(e).__name__}: {e}"}
        save()  # after every case: a later crash keeps what is done
        r = doc["cases"][name]
        print(f"{name}: " + json.dumps(r.get("claims", r.get("error")), indent=1, default=float), flush=True)
    save()
    print(f"wrote {args.md} and {args.json} ({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
