"""The report's first screen: the mixture to train, the verdict against each baseline with its
interval and compute-equivalent speedup, the claim it makes, and how sure it is (noise, power, the
smallest gain these seeds detect, stability, whether the scale-aware law was used).

Everything is read from the warehouse; the statistics live in `mixtures/verdict.py`,
`mixtures/power.py` and `mixtures/speedup.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mixopt.mixtures import adaptive
from mixopt.mixtures.adaptive import Sequential
from mixopt.mixtures.power import (
    Noise,
    SeedPlan,
    achieved_power,
    min_detectable_effect,
    plan_from,
    predicted_gain,
    sd_from_pilot,
)
from mixopt.mixtures.speedup import Speedup, speedup
from mixopt.mixtures.verdict import Claim, Paired, beats_at_least_one, beats_every
from mixopt.warehouse import Warehouse, reads

ALPHA = 0.025
"""One-sided level of every claim: the same test as the paired 95% two-sided t-interval, so a claim
and the verdict table never disagree."""
POWER = 0.8


@dataclass
class Answer:
    """What the first screen says (also kept on the `Report` for the flow and the export)."""

    comparisons: list[Paired]
    every: Claim | None = None
    one: Claim | None = None
    speedups: dict[str, Speedup] = field(default_factory=dict)
    noise: Noise | None = None
    plan: SeedPlan | None = None
    sequential: dict[str, Sequential] = field(default_factory=dict)
    """Baseline -> the group-sequential verdict, when the seeds were planned in several looks."""
    mde: float | None = None
    predicted_gain: float | None = None
    power: float | None = None
    markdown: str = ""


def held_out_curves(wh: Warehouse, experiment_id: str, run_ids: list[str] | None,
            labels: dict[str, list[tuple[str, int]]] | None) -> dict[str, dict[int, dict[float, float]]]:
    """label -> seed -> {tokens: held-out target} of the final runs (shared runs under every label)."""
    out: dict[str, dict[int, dict[float, float]]] = {}
    for r in reads.heldout_target_curves(wh, experiment_id, run_ids).to_dicts():
        if r["target_loss"] is None or not np.isfinite(r["target_loss"]):
            continue
        for label, seed in (labels or {}).get(r["run_id"], [(r["label"], r["seed"])]):
            out.setdefault(label, {}).setdefault(int(seed), {})[float(r["tokens"])] = float(r["target_loss"])
    return out


def speedups(curves: dict[str, dict[int, dict[float, float]]]) -> dict[str, Speedup]:
    """Per baseline: the tokens the proposal needs to reach the baseline's loss at the budget, on the
    curves' own evaluation windows (the last curve point of each run is the budget)."""
    mine = curves.get("proposed", {})
    if not mine:
        return {}
    budget = max(max(c) for c in mine.values())
    out = {}
    for label, runs in sorted(curves.items()):
        if label == "proposed":
            continue
        final = {s: c[max(c)] for s, c in runs.items() if c and max(c) == budget}
        if set(final) & set(mine):
            out[label] = speedup(label, mine, final, budget)
    return out


def _noise(comps: list[Paired]) -> Noise | None:
    """The paired sd measured in the final comparison itself: differences pooled around each
    comparison's own mean (the proposal's own runs, with differences of exactly 0, left out)."""
    groups = [c.diffs for c in comps if len(c.diffs) >= 2 and not all(d == 0 for d in c.diffs)]
    if not groups:
        return None
    n = sd_from_pilot(groups)
    return Noise(n.sd, n.df, "the final runs' paired differences")


def _plan(wh: Warehouse, experiment_id: str, details: dict) -> SeedPlan | None:
    """The seed plan the flow made (`power.plan_from` on the same warehouse rows), from the stored config."""
    cfg = reads.experiment_config(wh, experiment_id) or {}
    f = cfg.get("final") or {}
    if not f.get("seeds"):
        return None
    pilot, anchors = reads.noise_inputs(wh, experiment_id)
    return plan_from(pilot, anchors, details, len(f["seeds"]), int(f.get("max_seeds") or 0),
                     float(f.get("power") or 0.8), ALPHA)


def _mixture_line(names: list[str], weights: list[float], anchors: dict[str, list[float]]) -> str:
    cells = ", ".join(f"{n} **{w:.3f}**" for n, w in zip(names, weights) if w >= 0.0005)
    if not anchors:
        return cells
    w = np.asarray(weights, float)
    tv = {a: 0.5 * float(np.abs(w - np.asarray(v, float)).sum()) for a, v in anchors.items() if len(v) == len(w)}
    if not tv:
        return cells
    near = min(tv, key=tv.get)
    if tv[near] < 1e-6:
        return f"{cells} — this is the anchor **{near}** (the search found nothing better to propose)"
    return f"{cells} — not an anchor: the nearest, {near}, is {tv[near]:.2f} away in total variation"


def _verdict_rows(comps: list[Paired], sp: dict[str, Speedup]) -> list[str]:
    rows = ["| baseline | seeds | proposed − baseline (nats) | 95% CI | outcome | compute-equivalent |",
            "|---|---|---|---|---|---|"]
    for c in comps:
        own = c.diffs and all(d == 0 for d in c.diffs)
        s = sp.get(c.baseline)
        if own:
            eq = "(the same runs)"
        elif s is None or not s.seeds:
            eq = "–"
        elif not np.isfinite(s.speedup):
            eq = s.bound or "–"
        else:
            ci = f" ({s.low:.2f}–{s.high:.2f})" if np.isfinite(s.low) else ""
            eq = f"{s.bound + ' ' if s.bound else ''}{s.speedup:.2f}×{ci}"
        ci = "–" if not np.isfinite(c.low) else f"{c.low:+.4f} … {c.high:+.4f}"
        out = "the proposal itself" if own else c.outcome
        rows.append(f"| {c.baseline} | {len(c.diffs)} | {c.mean:+.4f} | {ci} | **{out}** | {eq} |")
    return rows


def _sureness(a: Answer, details: dict, n: int) -> list[str]:
    lines = []
    if a.noise is not None:
        lines.append(f"- Noise: {a.noise.describe()}; with {n} seeds the smallest gain detected with power "
                     f"{POWER:.0%} (one-sided α = {ALPHA}) is **{a.mde:.3f} nats**.")
    if a.predicted_gain is not None and a.power is not None:
        lines.append(f"- The law predicted a gain of {a.predicted_gain:.3f} nats over the best anchor; "
                     f"these seeds had power **{a.power:.2f}** to confirm a gain that size.")
    if a.plan is not None:
        lines.append(f"- Seed plan (made before the final runs): {a.plan.text}.")
    b = details.get("bootstrap") or {}
    if b.get("stability_tv") is not None:
        lines.append(f"- Stability: bootstrap optima move by {b['stability_tv']:.3f} in total variation "
                     f"(B = {b.get('B')}).")
    gate = details.get("scale_gate")
    if isinstance(gate, dict) and gate.get("use"):
        used = "used" if gate["use"] == "law" else "not used (the single-scale regressor proposed)"
        lines.append(f"- Scale-aware law: **{used}** — {gate.get('reason', '')}.")
    elif "scale_aware" in details:
        lines.append("- Scale-aware law: " + ("used (no gate recorded)." if details["scale_aware"]
                                              else "not used (one proxy scale)."))
    return lines


def answer_section(wh: Warehouse, experiment_id: str, names: list[str], prop: dict | None, details: dict,
                   comps: list[Paired], final_run_ids: list[str] | None,
                   labels: dict[str, list[tuple[str, int]]] | None, anchors: dict[str, list[float]]) -> Answer:
    """The first screen of the report (see the module docstring)."""
    a = Answer(comps)
    md = ["## The answer\n"]
    if prop is None:
        md.append("No proposal yet: the fit has not run.\n")
        a.markdown = "\n".join(md)
        return a
    md.append(f"**Train this mixture:** {_mixture_line(names, list(prop['weights']), anchors)}.\n")
    if details.get("fallback"):
        md.append(f"(A fallback: {details['fallback']}.)\n")
    if not comps:
        md.append("No final runs yet: `final-run` trains it beside the baselines.\n")
        a.markdown = "\n".join(md)
        return a
    a.speedups = speedups(held_out_curves(wh, experiment_id, final_run_ids, labels))
    a.every, a.one = beats_every(comps, ALPHA), beats_at_least_one(comps, ALPHA)
    a.plan = _plan(wh, experiment_id, details)
    if a.plan is not None and len(a.plan.looks) > 1:
        des = adaptive.design(a.plan.looks, alpha=ALPHA)
        a.sequential = {c.baseline: adaptive.sequential(c, des) for c in comps
                        if not (c.diffs and all(d == 0 for d in c.diffs))}
    n = max(len(c.diffs) for c in comps)
    a.noise = _noise(comps)
    if a.noise is not None and n >= 2:
        a.mde = min_detectable_effect(a.noise.sd, n, ALPHA, POWER)
        a.predicted_gain = predicted_gain(details)
        if a.predicted_gain is not None and a.predicted_gain > 0:
            a.power = achieved_power(a.predicted_gain, a.noise.sd, n, ALPHA)
    md.append("\n".join(_verdict_rows(comps, a.speedups)) + "\n")
    md.append("Paired by seed; a win or loss only where the 95% t-interval excludes 0. Compute-equivalent: the "
              "baseline's tokens over the tokens the proposal needs to reach the baseline's final held-out loss "
              "(geometric mean over seeds, 95% CI).\n")
    if a.sequential:  # seeds added after looking: only the group-sequential verdicts hold
        wins = [b for b, s in a.sequential.items() if s.outcome == "win"]
        every = bool(a.sequential) and len(wins) == len(a.sequential)
        md.append("**Claim** (seeds were added in planned looks, so the plain intervals above are descriptive; the "
                  "verdict is the group-sequential test's): the proposal "
                  + ("**beats every baseline**" if every else "does **not** beat every baseline")
                  + f" ({len(wins)} of {len(a.sequential)} won). "
                  + "; ".join(s.describe() for s in a.sequential.values()) + ".\n")
    else:
        md.append(f"**Claim.** The proposal {a.every.sentence}. At least one: it {a.one.sentence}.\n")
    md.append("**How sure.**\n\n" + "\n".join(_sureness(a, details, n)) + "\n")
    a.markdown = "\n".join(md)
    return a
