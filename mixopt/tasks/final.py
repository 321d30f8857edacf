"""The final comparison: the proposal and the baselines, trained at the same budget and seeds.

Each final run is its own process (`mixopt.models.launch`), so it can later be started with
Lightning's DDP on several devices; the flow only waits for its result file. The plain functions
come first, then the Prefect tasks around them.

The built-in baselines come from the registry (`mixopt/mixtures/baselines/`). The adaptive ones (Aioli:
"aioli" starts from the uniform mixture within caps, "aioli_restricted" from the proposal) adapt their
mixture online; their specs carry `cfg.final.aioli`, which also gives them ids distinct from the static
runs on the same mixture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from prefect import task
from prefect.cache_policies import NONE

from mixopt.config import FinalConfig
from mixopt.experiment import Experiment
from mixopt.mixtures import adaptive
from mixopt.mixtures.baselines import BASELINES, adaptive_baselines, build_baseline
from mixopt.mixtures.design import token_caps
from mixopt.mixtures.power import SeedPlan, plan_from
from mixopt.mixtures.verdict import Paired, against_baselines, describe, lead_held
from mixopt.report.choice import proposal_details
from mixopt.runspec import RunResult, RunSpec
from mixopt.tasks.swarm import DONE, ingest_spool, spool_result
from mixopt.warehouse import Warehouse, reads, writer

ANSWER_ALPHA = 0.025  # one-sided: the 95% two-sided interval's test
AIOLI_LABELS = adaptive_baselines()  # runs that adapt their mixture online (the spec carries final.aioli)


def final_mixtures(exp: Experiment, proposal: list[float], static_only: bool = False) -> dict[str, list[float]]:
    """Label -> mixture of every final run (for the adaptive runs: the mixture they start from).
    Baselines are `ExperimentConfig.baselines()`: built-in ones (registered in `mixtures/baselines/`)
    and the user's anchors by name, all within the final budget's caps. `static_only` leaves the
    adaptive ones out (the pilot)."""
    cfg = exp.cfg
    caps = token_caps(exp.train_tokens, cfg.final.tokens, cfg.proposer.final_max_epochs)
    anchors = exp.anchor_mixtures(caps, cfg.final.tokens)
    ctx = exp.baseline_context(caps, proposal, cfg.final.tokens)
    mixes = {"proposed": [float(w) for w in proposal]}
    for name in cfg.baselines():
        if name in anchors:
            mixes[name] = anchors[name]
        elif name in BASELINES and not (static_only and BASELINES.get(name).adaptive):
            mixes[name] = build_baseline(name, ctx)
    return mixes


def final_specs(exp: Experiment, proposal: list[float], seeds: list[int] | None = None) -> list[RunSpec]:
    """Every final run: each mixture (proposal and baselines) at each seed (`seeds`, default `final.seeds`)."""
    cfg = exp.cfg
    return [
        exp.run_spec("final", label, w, seed, cfg.final,
                     aioli=cfg.final.aioli.model_dump(mode="json") if label in AIOLI_LABELS else None)
        for seed in (cfg.final.seeds if seeds is None else seeds)
        for label, w in final_mixtures(exp, proposal).items()
    ]


def planned_seeds(exp: Experiment, plan: SeedPlan) -> list[int]:
    """`final.seeds`, then further seeds (after the largest) up to the plan's last look."""
    seeds = list(exp.cfg.final.seeds)
    nxt = max(seeds) + 1
    while len(seeds) < plan.looks[-1]:
        seeds.append(nxt)
        nxt += 1
    return seeds


def seed_plan(exp: Experiment, wh: Warehouse) -> SeedPlan:
    """The final comparison's looks (`power.plan_from`): the pilot's (or the anchors') measured noise and
    the latest proposal's predicted gain, within `final.max_seeds`."""
    f = exp.cfg.final
    pilot, anchors = reads.noise_inputs(wh, exp.experiment_id)
    prop = reads.latest_proposal(wh, exp.experiment_id).to_dicts()
    return plan_from(pilot, anchors, proposal_details(prop[0] if prop else None), len(f.seeds), f.max_seeds, f.power)


def look_outcomes(exp: Experiment, wh: Warehouse, proposal: list[float], plan: SeedPlan,
                  seeds: list[int]) -> dict[str, str]:
    """Baseline -> the group-sequential outcome (`win`, `loss`, `tie`, `continue`) over the final runs
    at `seeds`; baselines that are the proposal's own mixture are left out."""
    specs = final_specs(exp, proposal, seeds)
    targets = reads.run_targets(wh, [s.run_id for s in specs])
    by_label: dict[str, dict[int, float]] = {}
    for s in specs:
        if s.run_id in targets:
            by_label.setdefault(s.label, {})[s.seed] = targets[s.run_id]
    des = adaptive.design(plan.looks, alpha=ANSWER_ALPHA)
    return {c.baseline: adaptive.sequential(c, des).outcome for c in against_baselines(by_label)
            if not (c.diffs and all(d == 0 for d in c.diffs))}


def pilot_train(exp: Experiment) -> FinalConfig:
    """The final run's settings at the pilot's token budget."""
    f = exp.cfg.final
    return f.model_copy(update={"tokens": max(1, round(f.pilot.tokens_fraction * f.tokens))})


def pilot_specs(exp: Experiment, proposal: list[float]) -> list[RunSpec]:
    """The pilot: the proposal and the static baselines at a fraction of the final tokens, `pilot.seeds`."""
    cfg = exp.cfg
    if not cfg.final.pilot.enabled:
        return []
    train = pilot_train(exp)
    return [exp.run_spec("pilot", label, w, seed, train)
            for seed in cfg.final.pilot.seeds for label, w in final_mixtures(exp, proposal, static_only=True).items()]


@dataclass
class PilotOutcome:
    """What the pilot said, and the mixture the final runs train as `proposed`."""

    comparisons: list[Paired]
    held: bool
    """Whether the proposal's mean paired target was below every baseline's at the pilot."""
    weights: list[float]
    fallback: str | None = None
    """The baseline trained as `proposed` instead (`final.pilot.require_win` and the proposal lost)."""
    message: str = ""


def pilot_outcome(exp: Experiment, wh: Warehouse, proposal: list[float]) -> PilotOutcome | None:
    """Pair the pilot's runs by seed; with `require_win`, fall back to the pilot's best baseline when
    the proposal did worse than some baseline (mean paired difference > 0). None without a pilot."""
    specs = pilot_specs(exp, proposal)
    if not specs:
        return None
    targets = reads.run_targets(wh, [s.run_id for s in specs])  # by run id: a proposal equal to a
    # baseline shares that baseline's runs, and then ties it exactly
    by_label: dict[str, dict[int, float]] = {}
    for spec in specs:
        t = targets.get(spec.run_id)
        if t is not None:
            by_label.setdefault(spec.label, {})[spec.seed] = t
    comps = against_baselines(by_label)
    held = lead_held(comps)
    out = PilotOutcome(comps, held, list(proposal))
    lines = [f"pilot ({pilot_train(exp).tokens:,} tokens, seeds {exp.cfg.final.pilot.seeds}): proposal "
             + "; ".join(describe(c) for c in comps)]
    if not held and exp.cfg.final.pilot.require_win and comps:
        means = {label: float(np.mean(list(v.values()))) for label, v in by_label.items() if label != "proposed" and v}
        best = min(means, key=means.get)
        out.fallback = best
        out.weights = final_mixtures(exp, proposal, static_only=True)[best]
        lines.append(f"the proposal did not lead at the pilot: final.pilot.require_win is set, so the final runs "
                     f"train the pilot's best baseline, {best}, as `proposed`")
    out.message = "\n".join(lines)
    return out


def spec_labels(specs: list[RunSpec]) -> dict[str, list[tuple[str, int]]]:
    """run_id -> [(label, seed)]: a proposal equal to a baseline mixture shares its runs (trained once)."""
    out: dict[str, list[tuple[str, int]]] = {}
    for s in specs:
        out.setdefault(s.run_id, []).append((s.label, s.seed))
    return out


def plan_final(exp: Experiment, wh: Warehouse, proposal: list[float], pilot: bool = False,
               seeds: list[int] | None = None) -> list[RunSpec]:
    """Specs of the final (or the pilot's) runs not yet finished (final runs at `seeds`, default `final.seeds`)."""
    ingest_spool(exp, wh)
    specs = pilot_specs(exp, proposal) if pilot else final_specs(exp, proposal, seeds)
    seen: set[str] = set()  # a proposal equal to a baseline shares its runs: train each run once
    specs = [s for s in specs if not (s.run_id in seen or seen.add(s.run_id))]
    status = wh.run_status([s.run_id for s in specs])
    return [s for s in specs if status.get(s.run_id) not in DONE]


def latest_proposal(exp: Experiment, wh: Warehouse) -> list[float]:
    """The weights of the experiment's latest proposal."""
    latest = reads.latest_proposal(wh, exp.experiment_id)
    if not latest.height:
        raise RuntimeError(f"experiment {exp.experiment_id} has no proposal yet: run fit-and-propose first")
    return latest["weights"][0].to_list()


def train_final(exp: Experiment, spec: RunSpec) -> RunResult:
    """Train one final run in its own process and spool the result."""
    from mixopt.models.launch import run_in_subprocess

    work = exp.spool_dir().parent / "launch" / spec.run_id
    result = run_in_subprocess(spec, work)
    spool_result(exp, spec, result)
    return result


@task(name="plan-final", cache_policy=NONE)
def plan_final_task(exp: Experiment, proposal: list[float], pilot: bool = False,
                    seeds: list[int] | None = None) -> list[RunSpec]:
    """The final (or pilot) runs (proposal and baselines, every seed) not yet finished."""
    return plan_final(exp, writer(exp.warehouse), proposal, pilot, seeds)


@task(name="seed-plan", cache_policy=NONE)
def seed_plan_task(exp: Experiment) -> SeedPlan:
    """How many final seeds, in which looks (printed)."""
    plan = seed_plan(exp, writer(exp.warehouse))
    print(f"final seeds: {plan.text}")
    return plan


@task(name="look", cache_policy=NONE)
def look_task(exp: Experiment, proposal: list[float], plan: SeedPlan, seeds: list[int]) -> bool:
    """Whether every comparison is decided after the final runs at `seeds` (printed); then no more seeds."""
    out = look_outcomes(exp, writer(exp.warehouse), proposal, plan, seeds)
    print(f"look at {len(seeds)} seeds: " + ", ".join(f"{b} {o}" for b, o in out.items()))
    return all(o in ("win", "loss", "tie") for o in out.values())


@task(name="pilot-verdict", cache_policy=NONE)
def pilot_outcome_task(exp: Experiment, proposal: list[float]) -> PilotOutcome | None:
    """Did the proposal lead at the pilot? (and the mixture the final trains as `proposed`)"""
    out = pilot_outcome(exp, writer(exp.warehouse), proposal)
    if out is not None:
        print(out.message)
    return out


@task(name="final-run", task_run_name="{spec.role}-{spec.label}-seed{spec.seed}", cache_policy=NONE)
def final_run_task(exp: Experiment, spec: RunSpec) -> RunResult:
    """Train one final run in its own process (so it could use DDP) and spool its result."""
    return train_final(exp, spec)
