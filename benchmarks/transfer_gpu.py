"""Transfer at a larger scale: proxies and final runs trained on a borrowed GPU, fitting and choosing here.

Five idempotent phases; all state lives in `--state DIR` (the shards, the plans, the results):

    python benchmarks/transfer_gpu.py prep   --state .gpu                  # CPU: corpus, swarm plan, wheels
    PYTHONPATH=. python3 benchmarks/transfer_gpu.py swarm --state .gpu --out $OUT   # GPU: every proxy
    python benchmarks/transfer_gpu.py fit    --state .gpu                  # CPU: CV, gate, hedge, final plan
    PYTHONPATH=. python3 benchmarks/transfer_gpu.py final --state .gpu --out $OUT   # GPU: arms x seeds
    python benchmarks/transfer_gpu.py report --state .gpu                  # CPU: paired verdicts, speedups

Corpus: the demo's (five built-in domains; target: the `scientific_python` eval set). Proxies 4 x 128
(1.08M parameters, 1.5M tokens); a ladder of two cheaper rungs (0.25 and 0.5 of the tokens) for six
design mixtures and the anchors; final runs 8 x 352 (12.7M parameters, 11.8x) on 5M tokens. The
domains hold 1.98M training tokens, so at 4 epochs per domain a final run can read at most 7.9M
tokens: at 5M the caps are 4 x tokens_i / 5M = 1.01, 0.23, 0.11, 0.14, 0.10 (sum 1.59) and bind
for every mixture that gives a small domain more than its share (10M tokens would be infeasible).

The device phases import only `mixopt.runspec` and `mixopt.models.*` (training: the batched trainer,
`swarm_trainer.train_batch`); `mixopt.models` needs pydantic through `mixopt.config`, so when it is
missing the wheels `prep` saved under `STATE/wheels` are unpacked into a temporary folder first.
`--tiny` shrinks everything for a CPU test of the whole chain (`--device cpu`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FULL = {"proxy": dict(n_layer=4, n_embd=128, n_head=4, seq_len=256, batch_size=32, tokens=1_500_000, lr=2e-3,
                      eval_batches=16),
        "final": dict(n_layer=8, n_embd=352, n_head=4, seq_len=256, batch_size=32, tokens=5_000_000, lr=1e-3,
                      eval_batches=16),
        "n_design": 80, "ladder": [0.25, 0.5], "ladder_mixtures": 6, "seeds": 8, "curve_points": 8,
        "seeds_per_group": 2, "n_samples": 50_000, "bootstrap": 100, "boot_samples": 2_000}
TINY = {"proxy": dict(n_layer=2, n_embd=32, n_head=2, seq_len=32, batch_size=8, tokens=8_192, lr=3e-3,
                      eval_batches=2),
        "final": dict(n_layer=2, n_embd=64, n_head=2, seq_len=32, batch_size=8, tokens=16_384, lr=3e-3,
                      eval_batches=2),
        "n_design": 12, "ladder": [0.25, 0.5], "ladder_mixtures": 3, "seeds": 2, "curve_points": 4,
        "seeds_per_group": 1, "n_samples": 2_000, "bootstrap": 8, "boot_samples": 500}
ARMS = ("hedged", "raw", "best_anchor", "single_scale")
BASELINES = ("natural", "stratified", "unimax", "similarity", "hand_picked")


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _write(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=float))
    os.replace(tmp, path)


# ------------------------------------------------------------------ CPU side: the experiment and the plans
def _config(st: dict, work: Path):
    """The demo's config with this benchmark's proxy, ladder and final settings."""
    from mixopt.config import ExperimentConfig
    from mixopt.config.io import DEMO

    data = json.loads(json.dumps(DEMO))
    shape = lambda s: {"model": {k: s[k] for k in ("n_layer", "n_embd", "n_head")},  # noqa: E731
                       **{k: s[k] for k in ("tokens", "seq_len", "batch_size", "lr", "eval_batches")}}
    data["name"] = "transfer_gpu"
    data["swarm"] = {**shape(st["proxy"]), "n_proxies": st["n_design"]}
    data["final"].update(shape(st["final"]), seeds=list(range(st["seeds"])), curve_points=st["curve_points"])
    data["design"]["ladder"] = {"scales": [{"tokens_fraction": f} for f in st["ladder"]],
                                "mixtures": st["ladder_mixtures"]}
    data["proposer"] = {"n_samples": st["n_samples"], "bootstrap": st["bootstrap"],
                        "bootstrap_samples": st["boot_samples"]}
    data["runtime"] = {"out_dir": str(work), "warehouse": str(work / "unused.duckdb"), "progress": False}
    return ExperimentConfig.model_validate(data)


def _experiment(state: Path):
    """The experiment saved by `prep`, its shard paths made absolute under `state`."""
    from mixopt.experiment import Experiment

    exp = Experiment.from_dict(_read(state / "experiment.json"))
    for d in [*exp.domains, *exp.eval_sets]:
        d.train_path = str(state / d.train_path) if d.train_path else ""
        d.val_path = str(state / d.val_path)
    return exp


def _spec_dict(spec, state: Path, **extra) -> dict:
    """A RunSpec as plan JSON: shard paths relative to the state folder, no checkpoint, plus `extra`."""
    from dataclasses import asdict

    d = asdict(spec)
    for s in [*d["domains"], *d["eval_sets"]]:
        s["train_path"] = os.path.relpath(s["train_path"], state) if s["train_path"] else ""
        s["val_path"] = os.path.relpath(s["val_path"], state)
    d.update(save_checkpoint=False, wandb_mode="disabled", **extra)
    return d


def _wheels(state: Path) -> None:
    """pydantic and its dependencies for Python 3.12 on x86-64 Linux (the GPU machine lacks them)."""
    import subprocess
    from importlib.metadata import version

    cmd = [sys.executable, "-m", "pip", "download", f"pydantic=={version('pydantic')}", "--python-version", "3.12",
           "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64", "--only-binary=:all:",
           "-d", str(state / "wheels"), "-q"]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def prep(args: argparse.Namespace, st: dict) -> None:
    import shutil

    import numpy as np

    from mixopt.corpus.ingest import prepare_corpus
    from mixopt.experiment import Experiment, mixture_id
    from mixopt.mixtures.design import token_caps
    from mixopt.mixtures.policy import sample_around_prior_and_target
    from mixopt.tasks import fidelity

    state, t0 = args.state, time.perf_counter()
    if (state / "plan_swarm.json").exists() and not args.force:
        print(f"{state / 'plan_swarm.json'} exists (--force to redo)")
        return
    cfg = _config(st, args.work)
    info = prepare_corpus(cfg, args.work)
    for d in [*info.domains, *info.eval_sets]:  # copy the shards into the state folder
        for split in ("train", "val"):
            src = getattr(d, f"{split}_path")
            if src:
                dst = state / "shards" / d.name / f"{split}.bin"
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                setattr(d, f"{split}_path", str(dst))
    exp = Experiment.create(cfg, info.domains, info.vocab_size, info.fingerprint, info.eval_sets)
    saved = exp.to_dict()
    for d in [*saved["domains"], *saved["eval_sets"]]:
        d["train_path"] = os.path.relpath(d["train_path"], state) if d["train_path"] else ""
        d["val_path"] = os.path.relpath(d["val_path"], state)
    _write(state / "experiment.json", saved)
    caps = token_caps(exp.train_tokens, cfg.swarm.tokens, cfg.design.proxy_max_epochs)
    d = cfg.design
    W = sample_around_prior_and_target(exp.prior, exp.design_centre(), st["n_design"], caps, cfg.swarm.seed, [],
                                       target_fraction=d.target_fraction, concentration_min=d.concentration_min,
                                       concentration_max=d.concentration_max, min_weight=d.min_weight)
    design = [(mixture_id(w), [float(x) for x in w]) for w in W]
    runs = [("design", w, cfg.swarm.seed, fidelity.TARGET) for _, w in design]
    runs += fidelity.extra_runs(exp, design, {})  # anchors at seeds 0, 1, 2; the ladder's rungs
    plan = {}
    for label, w, seed, size in runs:  # equal anchors (e.g. unimax = stratified) share a run, as in mixopt
        spec = exp.run_spec("proxy", label, w, seed, fidelity.size_train(exp, size))
        plan.setdefault(spec.run_id, _spec_dict(spec, state, size=size, group=size))
    plan = list(plan.values())
    final_caps = token_caps(exp.train_tokens, cfg.final.tokens, cfg.proposer.final_max_epochs)
    _write(state / "plan_swarm.json", {
        "settings": st, "experiment": exp.experiment_id, "domains": exp.domain_names,
        "train_tokens": exp.train_tokens.tolist(), "proxy_caps": caps.tolist(), "final_caps": final_caps.tolist(),
        "similarity_prior": exp.similarity_weights().tolist(), "runs": plan})
    if args.wheels:
        _wheels(state)
    _write(state / "prep.json", {"seconds": time.perf_counter() - t0, "runs": len(plan),
                                 "shard_bytes": sum(p.stat().st_size for p in (state / "shards").rglob("*.bin"))})
    print(f"{len(plan)} proxy runs planned; final caps {np.round(final_caps, 3).tolist()}")


# ------------------------------------------------------------------ device side: train a plan
def _ensure_pydantic(state: Path) -> None:
    """Make `import pydantic` work: as installed, or from the wheels `prep` saved (unpacked to a temp folder)."""
    try:
        import pydantic  # noqa: F401
        return
    except ImportError:
        pass
    wheels = sorted((state / "wheels").glob("*.whl"))
    if not wheels:
        raise SystemExit(f"pydantic is not installed and {state / 'wheels'} holds no wheels (run `prep --wheels`)")
    lib = Path(tempfile.mkdtemp(prefix="pylib-"))
    for w in wheels:
        with zipfile.ZipFile(w) as z:
            z.extractall(lib)
    sys.path.insert(0, str(lib))
    import pydantic  # noqa: F401,F811


def _target_curve(st_mod, specs) -> None:
    """Make the batched trainer's held-out curve measure the eval sets (the target) on all their evaluation
    windows, the same windows as the final evaluation, instead of every domain on a subset."""
    from mixopt.models.data import MixtureDataModule

    base = getattr(st_mod, "_ORIGINAL_CURVE", st_mod.SwarmHeldoutCurve)
    st_mod._ORIGINAL_CURVE = base
    s, t = specs[0], specs[0].train
    data = MixtureDataModule(s.domains, s.weights, t["seq_len"], t["batch_size"], s.seed, 1, t["eval_batches"],
                             eval_sets=s.eval_sets)
    batches = {e.name: data.val_batches(e.name) for e in s.eval_sets}

    class TargetCurve(base):
        def __init__(self, _domains, k, total_steps, tokens_per_step, points, eval_batches=2):
            super().__init__(batches, k, total_steps, tokens_per_step, points, 1 << 30)

    st_mod.SwarmHeldoutCurve = TargetCurve


def _flops(spec) -> float:
    from mixopt.mixtures.sizing import expected_params

    t, m = spec.train, spec.train["model"]
    return 6.0 * expected_params(spec.vocab_size, t["seq_len"], m["n_layer"], m["n_embd"])[0] * t["tokens"]


def _chunks(specs, device: str) -> list[list]:
    """Split one group so that its batched model fits in half the free memory (`swarm_sizing`)."""
    from mixopt.mixtures.sizing import expected_params
    from mixopt.models.swarm_sizing import MEMORY_FRACTION, available_memory_bytes, estimate_memory_bytes

    t, m = specs[0].train, specs[0].train["model"]
    n = expected_params(specs[0].vocab_size, t["seq_len"], m["n_layer"], m["n_embd"])[0]
    per = estimate_memory_bytes(n, 1, t["seq_len"] * t["batch_size"], m["n_layer"], m["n_embd"])
    k = max(1, int(MEMORY_FRACTION * available_memory_bytes(device) // per))
    parts = -(-len(specs) // k)
    size = -(-len(specs) // parts)
    return [specs[i:i + size] for i in range(0, len(specs), size)]


def train(args: argparse.Namespace, plan_name: str, out_name: str) -> None:
    """Train every run of the plan not yet in the results (STATE's or OUT's), group by group, batched;
    stop starting groups that would end past `--time-budget-s`; write the results after every group."""
    t0 = time.perf_counter()
    _ensure_pydantic(args.state)
    import torch

    import mixopt.models.swarm_trainer as st_mod
    from mixopt.runspec import RunSpec

    plan = _read(args.state / plan_name)
    old = [_read(args.state / out_name), _read(args.out / out_name)]
    done = {k: v for o in old for k, v in o.get("results", {}).items() if v.get("status") == "ok"}
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    work = Path(tempfile.mkdtemp(prefix="mixopt-gpu-"))
    groups: dict[str, list] = {}
    for d in plan["runs"]:
        if d["run_id"] in done:
            continue
        spec = RunSpec.from_json(json.dumps({k: v for k, v in d.items() if k != "group"}))
        spec.device, spec.out_dir, spec.threads, spec.compile = device, str(work), args.threads, args.compile
        for s in [*spec.domains, *spec.eval_sets]:
            s.train_path = str(args.state / s.train_path) if s.train_path else ""
            s.val_path = str(args.state / s.val_path)
        groups.setdefault(d["group"], []).append(spec)
    name = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU x {os.cpu_count()}"
    meta = {"device": name, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "groups": [g for o in old for g in o.get("groups", [])], "skipped": []}
    flops_done, secs_done = 0.0, 0.0
    for gname, specs in groups.items():
        for chunk in _chunks(specs, device):
            flops = sum(_flops(s) for s in chunk)
            elapsed = time.perf_counter() - t0  # the first group always starts; the rest at the rate measured
            if secs_done and elapsed + flops * secs_done / flops_done > args.time_budget_s:
                meta["skipped"] += [s.run_id for s in chunk]
                continue
            if any(s.curve_points for s in chunk):
                _target_curve(st_mod, chunk)
            t1 = time.perf_counter()
            results = st_mod.train_batch(chunk)
            wall = time.perf_counter() - t1
            flops_done, secs_done = flops_done + flops, secs_done + wall
            for r in results:
                r.curve = r.curve[:: max(1, len(r.curve) // 50)]  # the training curve, thinned
                done[r.run_id] = r.__dict__
            meta["groups"].append({"group": gname, "k": len(chunk), "wall_s": wall, "tflops": flops / 1e12,
                                   "tflop_per_s": flops / wall / 1e12,
                                   "ok": sum(r.status == "ok" for r in results)})
            print(f"{gname}: {len(chunk)} runs in {wall:.1f} s ({flops / wall / 1e12:.1f} TFLOP/s)", flush=True)
            _write(args.out / out_name, {**meta, "wall_s": time.perf_counter() - t0, "results": done})
    _write(args.out / out_name, {**meta, "wall_s": time.perf_counter() - t0, "results": done})
    print(f"{len(done)} of {len(plan['runs'])} runs done, {len(meta['skipped'])} skipped, "
          f"{time.perf_counter() - t0:.0f} s")


# ------------------------------------------------------------------ CPU side: fit and choose
def _observations(exp, plan: dict, results: dict):
    """Rows as the warehouse's `proxy_observations`: finished runs, seed repeats left out, by mixture."""
    import numpy as np

    from mixopt.experiment import mixture_id

    rows = []
    for d in plan["runs"]:
        r = results.get(d["run_id"])
        y = exp.target_loss(r["val_losses"]) if r and r["status"] == "ok" else None
        if y is not None and np.isfinite(y) and d["label"] != "seed_repeat":
            rows.append((mixture_id(d["weights"]), d["size"], d["weights"], y, d["label"]))
    rows.sort(key=lambda r: (r[0], r[1]))
    return rows


def fit(args: argparse.Namespace, st: dict) -> None:
    from functools import partial

    import numpy as np
    from scipy.stats import spearmanr

    from mixopt.corpus.similarity import similarity_prior
    from mixopt.mixtures.auto import AutoRegressor
    from mixopt.mixtures.choose import FixedEnsemble, choose_at_scale
    from mixopt.mixtures.design import project_to_caps, token_caps
    from mixopt.mixtures.proposers import propose_regmix
    from mixopt.mixtures.regressors import make_regressor
    from mixopt.mixtures.scaling import mixture_key
    from mixopt.tasks.fidelity import TARGET, ladder_sizes, size_flops, train_compute
    from mixopt.tasks.propose import choice_details

    state, t0 = args.state, time.perf_counter()
    if (state / "plan_final.json").exists() and not args.force:
        print(f"{state / 'plan_final.json'} exists (--force to redo)")
        return
    exp = _experiment(state)
    cfg, seed, p = exp.cfg, exp.cfg.swarm.seed, exp.cfg.proposer
    plan, res = _read(state / "plan_swarm.json"), _read(state / "swarm_results.json")["results"]
    rows = _observations(exp, plan, res)
    tgt = [r for r in rows if r[1] == TARGET]
    X, y = np.array([r[2] for r in tgt]), np.array([r[3] for r in tgt])
    folds, cands = min(cfg.regressor.cv_folds, len(y)), cfg.regressor.candidates
    model = AutoRegressor(candidates=cands, folds=folds, seed=seed, repeats=1).fit(X, y)  # as `mixopt fit`
    cv = [{"regressor": r.name, "spearman": r.spearman, "spearman_sd": r.spearman_sd, "r2": r.r2, "rmse": r.rmse}
          for r in model.reports_]  # each candidate's out-of-fold scores, the folds auto chose by
    cv.append({"regressor": f"auto = {model.choice_}", "spearman": model.cv_score_, "spearman_sd": None,
               "r2": float("nan"), "rmse": float("nan")})
    caps = token_caps(exp.train_tokens, cfg.final.tokens, p.final_max_epochs)
    log_flops = {s: math.log10(size_flops(exp, s)) for s in [TARGET] + ladder_sizes(exp)}
    W = np.array([r[2] for r in rows])
    s = np.array([log_flops[r[1]] for r in rows])
    Y = np.array([r[3] for r in rows])
    anchors = exp.anchor_mixtures(caps, cfg.final.tokens)
    c = choose_at_scale(W, s, Y, [mixture_key(w) for w in W], lambda: FixedEnsemble(model.weights_, seed),
                        exp.prior, caps, anchors, math.log10(train_compute(exp, cfg.final)),
                        n_samples=p.n_samples, top_k=p.top_k, seed=seed, kappa=p.hedge_kappa, B=p.bootstrap,
                        boot_samples=p.bootstrap_samples, single_scale={n: partial(make_regressor, n, seed)
                                                                        for n in cands},
                        base_name="auto", gate=p.scale_gate, transfer=p.hedge_transfer, boot_search=p.bootstrap_search)
    single = propose_regmix(model, exp.prior, caps, n_samples=p.n_samples, top_k=p.top_k, seed=seed).weights
    mixes = {"hedged": c.weights, "raw": c.raw.weights, "best_anchor": anchors[c.start], "single_scale": single,
             **{b: anchors[b] for b in BASELINES}}
    mixes = {k: [float(x) for x in project_to_caps(w, caps)] for k, w in mixes.items()}
    alias, canon = {}, {}
    for k, w in mixes.items():  # equal mixtures train once, under the first arm's name
        alias[k] = canon.setdefault(tuple(np.round(w, 6)), k)
    runs = []
    for sd in range(st["seeds"]):
        for k in dict.fromkeys(alias.values()):
            spec = exp.run_spec("final", k, mixes[k], sd, cfg.final)
            spec.curve_points, spec.interaction_points, spec.devices = st["curve_points"], 0, 1
            runs.append(_spec_dict(spec, state, size="final", group=f"seeds{sd // st['seeds_per_group']}"))
    score = np.asarray(similarity_prior(exp).score_fn(X), float)
    anchor_sd = {}
    for d in plan["runs"]:  # the proxies' seed noise: anchors at seeds 0, 1, 2
        r = res.get(d["run_id"])
        anchor = d["label"] == "seed_repeat" or d["label"].startswith("anchor:")
        if d["size"] == TARGET and anchor and r and r["status"] == "ok":
            anchor_sd.setdefault(mixture_key(d["weights"]), []).append(exp.target_loss(r["val_losses"]))
    noise = float(np.sqrt(np.mean([np.var(v, ddof=1) for v in anchor_sd.values() if len(v) > 1])))
    _write(state / "plan_final.json", {"mixtures": mixes, "alias": alias, "caps": caps.tolist(), "runs": runs})
    _write(state / "fit.json", {
        "seconds": time.perf_counter() - t0, "n_rows": len(rows), "n_target_rows": len(y), "cv": cv,
        "auto_weights": {k: float(v) for k, v in model.weights_.items()}, "choice": choice_details(c),
        "gate": choice_details(c).get("scale_gate"), "start": c.start, "predicted": {
            k: c.law_predict(w) for k, w in mixes.items()},
        "prior_spearman": float(spearmanr(score, y)[0]), "proxy_seed_sd": noise,
        "proxy_target_range": [float(y.min()), float(y.max())]})
    print(f"fit: {len(y)} target-size rows, {len(rows)} in all; gate: {(c.gate and c.gate.reason) or 'off'}; "
          f"{len(runs)} final runs ({len(set(alias.values()))} mixtures x {st['seeds']} seeds)")


# ------------------------------------------------------------------ CPU side: the report
def _by_arm(exp, plan: dict, results: dict) -> tuple[dict, dict]:
    """label -> seed -> final target, and label -> seed -> {tokens: target} (the held-out curve)."""
    final, curves = {}, {}
    for d in plan["runs"]:
        r = results.get(d["run_id"])
        if not r or r["status"] != "ok":
            continue
        final.setdefault(d["label"], {})[d["seed"]] = exp.target_loss(r["val_losses"])
        curves.setdefault(d["label"], {})[d["seed"]] = {float(tok): exp.target_loss(v)
                                                       for _, tok, v in r.get("heldout_curve", [])}
    for k, a in plan["alias"].items():
        final[k], curves[k] = final.get(a, {}), curves.get(a, {})
    return final, curves


def _shape_row(name: str, s: dict, vocab: int) -> str:
    from mixopt.mixtures.sizing import expected_params

    n, ne = expected_params(vocab, s["seq_len"], s["n_layer"], s["n_embd"])
    return (f"| {name} | {s['n_layer']} x {s['n_embd']} ({s['n_head']} heads) | {n:,} ({ne:,} non-emb.) | "
            f"{s['seq_len']} x {s['batch_size']} | {s['tokens']:,} | {s['lr']:g} | {6 * n * s['tokens']:.3g} |\n")


def _sections(exp, st: dict, fitj: dict, pf: dict, final: dict, curves: dict) -> tuple[list[str], dict]:
    """The report's verdict tables: per arm the targets, the paired differences, claims and speedups."""
    import numpy as np

    from mixopt.mixtures.speedup import speedup
    from mixopt.mixtures.verdict import beats_at_least_one, beats_every, paired

    out = ["\n## Final runs: target per arm (mean ± sd over seeds)\n\n| arm | trains as | "
           + " | ".join(exp.domain_names) + " | predicted | mean | sd | seeds |\n|---|---|"
           + "---|" * (len(exp.domain_names) + 4) + "\n"]
    for k, w in pf["mixtures"].items():
        v = list(final.get(k, {}).values())
        stats = f"{np.mean(v):.4f} | {np.std(v, ddof=1) if len(v) > 1 else 0:.4f}" if v else "– | –"
        out.append(f"| {k} | {pf['alias'][k]} | " + " | ".join(f"{x:.3f}" for x in w)
                   + f" | {fitj['predicted'][k]:.4f} | {stats} | {len(v)} |\n")
    out.append("\n## Paired by seed (arm − baseline; negative: the arm is better)\n\n"
               "| arm | baseline | mean | 95% CI | outcome | speedup (compute-equivalent) |\n"
               "|---|---|---|---|---|---|\n")
    claims = {}
    for a in ARMS:
        comps = [paired(b, final.get(a, {}), final.get(b, {})) for b in BASELINES]
        for p in comps:
            sp = speedup(p.baseline, curves.get(a, {}), final.get(p.baseline, {}), st["final"]["tokens"]) \
                if p.diffs and all(curves.get(a, {}).get(x) for x in p.seeds) else None
            same = bool(p.diffs) and all(x == 0 for x in p.diffs)
            out.append(f"| {a} | {p.baseline} | {p.mean:+.4f} | {p.low:+.4f} … {p.high:+.4f} | "
                       + ("the same runs | – |\n" if same else f"{p.outcome} | {sp.describe() if sp else '–'} |\n"))
        claims[a] = {"beats_every": beats_every(comps, alpha=0.025).sentence,
                     "beats_at_least_one": beats_at_least_one(comps, alpha=0.025).sentence,
                     "paired": [p.__dict__ for p in comps]}
    out.append("\n| arm | beats every baseline (one-sided 0.025) | beats at least one (Holm, 0.025) |\n|---|---|---|\n")
    out += [f"| {a} | {c['beats_every']} | {c['beats_at_least_one']} |\n" for a, c in claims.items()]
    return out, claims


def report(args: argparse.Namespace, st: dict) -> None:
    exp = _experiment(args.state)
    ps, pf = _read(args.state / "plan_swarm.json"), _read(args.state / "plan_final.json")
    sw, fr = _read(args.state / "swarm_results.json"), _read(args.state / "final_results.json")
    fitj, prepj = _read(args.state / "fit.json"), _read(args.state / "prep.json")
    final, curves = _by_arm(exp, pf, fr.get("results", {}))
    ok = lambda r: sum(v["status"] == "ok" for v in r.get("results", {}).values())  # noqa: E731
    out = [f"# Transfer at a larger scale (`benchmarks/transfer_gpu.py`{' --tiny' if args.tiny else ''})\n\n",
           f"Date {fr.get('date', '?')}; training on **{fr.get('device', '?')}** (torch {fr.get('torch', '?')}); "
           f"fit and report on this machine's CPU. Experiment `{exp.experiment_id}`, corpus: the demo's five "
           f"built-in domains ({', '.join(f'{n} {t:,.0f}' for n, t in zip(exp.domain_names, exp.train_tokens))} "
           "training tokens), target: the `scientific_python` eval set.\n\n"
           "| model | shape | parameters | seq x batch | tokens | lr | FLOPs per run |\n"
           "|---|---|---|---|---|---|---|\n",
           _shape_row("proxy", st["proxy"], exp.vocab_size), _shape_row("final", st["final"], exp.vocab_size),
           f"\nLadder rungs at {st['ladder']} of the proxy tokens. Final caps (4 epochs per domain at "
           f"{st['final']['tokens']:,} tokens): {[round(x, 3) for x in pf['caps']]} (sum {sum(pf['caps']):.2f}).\n\n"
           f"Timings: prep {prepj.get('seconds', 0):.0f} s, swarm {sw.get('wall_s', 0):.0f} s "
           f"({ok(sw)} of {len(ps['runs'])} proxies), fit {fitj['seconds']:.0f} s, final {fr.get('wall_s', 0):.0f} s "
           f"({ok(fr)} of {len(pf['runs'])} runs). Groups: "
           + "; ".join(f"{g['group']} K={g['k']} {g['wall_s']:.0f} s {g['tflop_per_s']:.3g} TFLOP/s"
                       for g in sw.get("groups", []) + fr.get("groups", [])) + ".\n\n",
           f"## Swarm and fit\n\n{fitj['n_target_rows']} target-size proxies ({fitj['n_rows']} rows with the ladder); "
           f"target range {fitj['proxy_target_range'][0]:.4f}–{fitj['proxy_target_range'][1]:.4f}; seed sd of the "
           f"anchors {fitj['proxy_seed_sd']:.4f}. The similarity prior (no proxy) ranks the proxies with Spearman "
           f"ρ = {fitj['prior_spearman']:.3f}.\n\n| regressor | CV Spearman | R² | RMSE |\n|---|---|---|---|\n"]
    out += [f"| {r['regressor']} | {r['spearman']:.3f} | {r['r2']:.3f} | "
            f"{r['rmse']:.4f} |\n" for r in fitj["cv"]]
    g, ch = fitj.get("gate") or {}, fitj["choice"]
    out.append(f"\nauto: {fitj['auto_weights']}. Gate: **{g.get('use', 'off')}** ({g.get('reason', '')}). "
               f"Hedge from `{fitj['start']}`: λ = {ch.get('hedge', {}).get('lam', float('nan')):.2f}, predicted gain "
               f"{ch.get('hedge', {}).get('gain', float('nan')):+.4f}; bootstrap stability (TV) "
               f"{ch.get('bootstrap', {}).get('stability_tv', float('nan')):.3f}.\n")
    body, claims = _sections(exp, st, fitj, pf, final, curves)
    out += body
    md, js = Path(args.md), Path(args.md).with_suffix(".json")
    md.write_text("".join(out))
    _write(js, {"settings": st, "final": {k: {str(s): v for s, v in d.items()} for k, d in final.items()},
                "claims": claims, "fit": fitj, "swarm_groups": sw.get("groups"), "final_groups": fr.get("groups")})
    print("".join(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=["prep", "swarm", "fit", "final", "report"])
    ap.add_argument("--state", type=Path, default=Path(".gpu"), help="the benchmark's state folder")
    ap.add_argument("--out", type=Path, default=None, help="device phases: results folder (default $OUT, else --state)")
    ap.add_argument("--work", type=Path, default=Path("out/transfer_gpu"), help="prep: where the corpus is built")
    ap.add_argument("--tiny", action="store_true", help="tiny shapes and tokens, 2 seeds (a CPU test of the chain)")
    ap.add_argument("--device", default="auto", help="device phases: cuda, cpu or auto")
    ap.add_argument("--threads", type=int, default=0, help="device phases: torch threads (0: torch's default)")
    ap.add_argument("--compile", default="auto", choices=["auto", "on", "off"], help="torch.compile the batches")
    ap.add_argument("--time-budget-s", type=float, default=float("inf"), help="device phases: start no group that "
                    "would end later than this (estimated from the groups trained so far)")
    ap.add_argument("--wheels", action=argparse.BooleanOptionalAction, default=None,
                    help="prep: download pydantic wheels for the GPU machine (default: on unless --tiny)")
    ap.add_argument("--force", action="store_true", help="prep / fit: redo even if the output exists")
    ap.add_argument("--md", default=str(HERE / "transfer_gpu.md"), help="report: markdown path (+ .json)")
    args = ap.parse_args()
    st = TINY if args.tiny else FULL
    args.out = args.out or Path(os.environ.get("OUT") or args.state)
    args.wheels = (not args.tiny) if args.wheels is None else args.wheels
    args.state = args.state.resolve()
    args.state.mkdir(parents=True, exist_ok=True)
    if args.phase in ("swarm", "final"):
        train(args, f"plan_{args.phase}.json", f"{args.phase}_results.json")
    else:
        {"prep": prep, "fit": fit, "report": report}[args.phase](args, st)


if __name__ == "__main__":
    main()
