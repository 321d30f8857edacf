"""The report's sections on how the proposal was chosen and whether it won: anchors at proxy scale
next to the law's predictions, the scale checks, the hedge, the bootstrap stability, the pilot, and
the paired-by-seed verdict of the final runs. Built from the warehouse alone (named reads)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from mixopt.mixtures.verdict import Paired, against_baselines, describe, lead_held
from mixopt.warehouse import Warehouse, reads


def _f(x: Any, d: int = 4) -> str:
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{d}f}"


def proposal_details(prop: dict | None) -> dict:
    if not prop or prop.get("details") is None:
        return {}
    d = prop["details"]
    return json.loads(d) if isinstance(d, str) else dict(d)


def paired_verdicts(wh: Warehouse, experiment_id: str, run_ids: list[str] | None,
                    labels: dict[str, list[tuple[str, int]]] | None = None) -> list[Paired]:
    """proposed - baseline, paired by seed, for every baseline among the final runs `run_ids`.
    `labels` (run_id -> [(label, seed)], from the specs) names runs that several labels share, e.g.
    a proposal equal to a baseline mixture, trained once; without it the stored label is used."""
    if not run_ids:
        return []
    by: dict[str, dict[int, float]] = {}
    for r in reads.final_targets(wh, experiment_id, run_ids).to_dicts():
        for label, seed in (labels or {}).get(r["run_id"], [(r["label"], r["seed"])]):
            by.setdefault(label, {})[int(seed)] = float(r["target_loss"])
    return against_baselines(by)


def verdict_sentence(comps: list[Paired]) -> str:
    """One honest line: a win or a loss only where the paired 95% interval excludes 0."""
    if not comps:
        return "No finished final runs of the proposal and a baseline: nothing to compare."
    return "On the target loss, the proposal " + "; ".join(describe(c) for c in comps) + "."


def verdict_markdown(comps: list[Paired]) -> str:
    if not comps:
        return ""
    rows = ["| baseline | seeds | proposed − baseline per seed | mean | 95% CI | outcome |",
            "|---|---|---|---|---|---|"]
    for c in comps:
        rows.append(f"| {c.baseline} | {len(c.diffs)} | {', '.join(f'{d:+.4f}' for d in c.diffs)} | {_f(c.mean)} | "
                    f"{_f(c.low)} … {_f(c.high)} | **{c.outcome}** |")
    return ("\nPaired by seed (runs of one seed share initialisation, data-stream random numbers and evaluation "
            "batches; a win or loss is called only when the 95% t-interval excludes 0):\n\n" + "\n".join(rows) + "\n")


def choice_markdown(wh: Warehouse, experiment_id: str, names: list[str], prop: dict | None) -> tuple[str, list[str]]:
    """Anchors, scale checks, hedge and stability; returns (markdown, warnings)."""
    d = proposal_details(prop)
    warnings: list[str] = []
    md: list[str] = []
    anchors = reads.anchor_proxies(wh, experiment_id).to_dicts()
    pred = d.get("anchors_predicted", {})
    if anchors or pred:
        md.append("\n## Anchors at proxy scale, and every mixture predicted at the final scale\n")
        gate = d.get("scale_gate") or {}
        if gate.get("use") == "single":
            scale = "the proxies' own scale (the gate kept the scale-aware law out: it lost leave-largest-scale-out)"
        else:
            scale = "the final run's compute" if d.get("scale_aware") else "the proxies' own scale (no ladder)"
        md.append(f"Measured: the anchors' proxy runs (mean ± sd over seeds). Predicted: the law at {scale}, "
                  "± its bootstrap sd.\n\n| mixture | proxy seeds | measured at proxy scale | predicted |\n"
                  "|---|---|---|---|\n")
        by: dict[str, list[float]] = {}
        for r in anchors:
            by.setdefault(r["anchor"], []).append(r["target_loss"])
        for name in list(dict.fromkeys(list(by) + list(pred))):
            v = np.array(by.get(name, []), float)
            meas = f"{v.mean():.4f} ± {v.std(ddof=1):.4f}" if len(v) > 1 else (_f(v[0]) if len(v) else "–")
            p = pred.get(name)
            md.append(f"| {name} | {len(v)} | {meas} | {_f(p['mean']) + ' ± ' + _f(p['sd']) if p else '–'} |\n")
        if prop:
            h = d.get("hedge") or {}
            gain = f" (gain over {d.get('hedge_start', '')} {_f(h.get('gain'))} ± {_f(h.get('gain_sd'))})" if h else ""
            md.append(f"| **proposal** | | | {_f(prop['predicted_target'])}{gain} |\n")
    checks = d.get("scale_checks")
    if checks:
        md.append("\n## Scale checks (leave-largest-scale-out: fit on the smaller proxy scales, "
                  "predict the largest)\n\n")
        md.append("| regressor | Spearman | RMSE | regret@1 | n |\n|---|---|---|---|---|\n")
        for c in checks:
            md.append(f"| {c['name']} | {_f(c['spearman'], 3)} | {_f(c['rmse'])} | {_f(c['regret'])} | {c['n']} |\n")
        md.append("\n`scale_law[...]` extrapolates with a mixture-dependent slope in log compute; the plain names "
                  "are single-scale regressors fitted at the next scale down.\n")
    if "raw_optimum" in d:
        h = d.get("hedge")
        md.append("\n## The hedge\n\n")
        if h:
            md.append(f"The proposal is the point λ = {h['lam']:.2f} of the way from **{d.get('hedge_start')}** (the "
                      f"anchor the law predicts best at the final scale) to the law's unconstrained optimum, "
                      f"chosen to maximise predicted gain − κ × its sd (gain {_f(h['gain'])} ± "
                      f"{_f(h['gain_sd'])}: bootstrap sd {_f(h.get('boot_sd'))}, the law's transfer sd "
                      f"{_f(h.get('transfer_sd'))}). The unconstrained optimum (predicted "
                      f"{_f(d.get('raw_predicted'))}):\n\n")
        else:
            md.append(f"No hedge: the proposal is the law's optimum (predicted {_f(d.get('raw_predicted'))}).\n\n")
        pred = [v["mean"] for v in (d.get("anchors_predicted") or {}).values() if v.get("mean") is not None]
        if h and pred and d.get("raw_predicted") is not None and h.get("lam", 1) < 1:
            md.append(f"The raw optimum was predicted {min(pred) - d['raw_predicted']:+.4f} nats better than the best "
                      "anchor, a gain its uncertainty (bootstrap and the law's measured transfer error) did not "
                      f"vouch for at κ = {_kappa(d)}; `benchmarks/transfer.md` trains it (the `raw` arm).\n\n")
        md.append("| domain | " + " | ".join(names) + " |\n|---|" + "---|" * len(names) + "\n")
        md.append("| raw optimum | " + " | ".join(f"{w:.3f}" for w in d["raw_optimum"]) + " |\n")
        if prop:
            md.append("| proposal | " + " | ".join(f"{w:.3f}" for w in prop["weights"]) + " |\n")
    b = d.get("bootstrap")
    if b:
        md.append(f"\n## Stability of the proposal (bootstrap over the proxies, B = {b['B']})\n\n")
        md.append("Mixtures resampled with replacement, the law refitted and the optimum re-proposed each time. "
                  f"Stability (mean total-variation distance of a bootstrap optimum to the optimum): "
                  f"**{b['stability_tv']:.3f}** ({b['seconds']:.0f} s).\n\n")
        md.append("| domain | optimum | 95% bootstrap interval | bagged |\n|---|---|---|---|\n")
        for n, w, lo, hi, bg in zip(names, d["raw_optimum"], b["lower"], b["upper"], b["bagged"]):
            md.append(f"| {n} | {w:.3f} | {lo:.3f} … {hi:.3f} | {bg:.3f} |\n")
        limit = _unstable_limit(wh, experiment_id)
        if b["stability_tv"] > limit:
            warnings.append(f"the proposal is unstable: bootstrap optima move by {b['stability_tv']:.3f} in total "
                            f"variation on average (warning above proposer.unstable_tv = {limit}); more proxies "
                            "or a stronger hedge would steady it")
    return "".join(md), warnings


def _kappa(d: dict) -> str:
    k = d.get("hedge_kappa")
    return "the configured κ" if k is None else f"{k:g}"


def _unstable_limit(wh: Warehouse, experiment_id: str) -> float:
    try:
        return float(reads.experiment_config(wh, experiment_id)["proposer"]["unstable_tv"])
    except (KeyError, TypeError, ValueError):
        return 0.15


def pilot_markdown(wh: Warehouse, experiment_id: str, labels: dict[str, list[tuple[str, int]]] | None = None) -> str:
    runs = reads.pilot_runs(wh, experiment_id).to_dicts()
    if not runs:
        return ""
    by: dict[str, dict[int, float]] = {}
    tokens = runs[0]["tokens"]
    for r in runs:
        for label, seed in (labels or {}).get(r["run_id"], [(r["label"], r["seed"])]):
            by.setdefault(label, {})[int(seed)] = float(r["target_loss"])
    comps = against_baselines(by)
    held = lead_held(comps)
    return (f"\n## Pilot ({tokens:,} tokens per run, {len(by.get('proposed', {}))} seeds)\n\n"
            + ("The proposal's lead **held** at the pilot: " if held
               else "The proposal did **not** lead at the pilot: ")
            + "; ".join(describe(c) for c in comps) + ".\n")
