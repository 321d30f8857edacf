"""The final comparison: the proposal and the baselines, trained at the same budget and seeds.

Each final run is its own process (`mixopt.models.launch`), so it can later be started with
Lightning's DDP on several devices; the flow only waits for its result file. The plain functions
come first, then the Prefect tasks around them.

The Aioli baselines (issue 4) adapt their mixture online: "aioli" starts from the uniform
(stratified, within caps) mixture, "aioli_restricted" from the proposal; their specs carry
`cfg.final.aioli`, which also gives them ids distinct from the static runs on the same mixture.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from mixopt.experiment import Experiment
from mixopt.mixtures.design import natural_mixture, stratified_mixture, token_caps
from mixopt.runspec import RunResult, RunSpec
from mixopt.tasks.swarm import DONE, ingest_spool, spool_result
from mixopt.warehouse import Warehouse, reads, writer

AIOLI_LABELS = ("aioli", "aioli_restricted")  # runs that adapt their mixture online (issue 4)


def final_mixtures(exp: Experiment, proposal: list[float]) -> dict[str, list[float]]:
    """Label -> mixture of every final run (for the Aioli runs: the mixture they start from)."""
    cfg = exp.cfg
    caps = token_caps(exp.train_tokens, cfg.final.tokens, cfg.proposer.final_max_epochs)
    mixes = {"proposed": [float(w) for w in proposal]}
    if "natural" in cfg.final.baselines:
        mixes["natural"] = [float(w) for w in natural_mixture(exp.train_tokens, caps)]
    if "stratified" in cfg.final.baselines:
        mixes["stratified"] = [float(w) for w in stratified_mixture(len(exp.domains), caps)]
    if "aioli" in cfg.final.baselines:
        mixes["aioli"] = [float(w) for w in stratified_mixture(len(exp.domains), caps)]
    if "aioli_restricted" in cfg.final.baselines:
        mixes["aioli_restricted"] = [float(w) for w in proposal]
    return mixes


def final_specs(exp: Experiment, proposal: list[float]) -> list[RunSpec]:
    """Every final run of the current config: each mixture (proposal and baselines) at each seed."""
    cfg = exp.cfg
    return [
        exp.run_spec("final", label, w, seed, cfg.final,
                     aioli=cfg.final.aioli.model_dump(mode="json") if label in AIOLI_LABELS else None)
        for seed in cfg.final.seeds
        for label, w in final_mixtures(exp, proposal).items()
    ]


def plan_final(exp: Experiment, wh: Warehouse, proposal: list[float]) -> list[RunSpec]:
    """Specs of the final runs not yet finished."""
    ingest_spool(exp, wh)
    specs = final_specs(exp, proposal)
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
def plan_final_task(exp: Experiment, proposal: list[float]) -> list[RunSpec]:
    """The final runs (proposal and baselines, every seed) not yet finished."""
    return plan_final(exp, writer(exp.warehouse), proposal)


@task(name="final-run", task_run_name="final-{spec.label}-seed{spec.seed}", cache_policy=NONE)
def final_run_task(exp: Experiment, spec: RunSpec) -> RunResult:
    """Train one final run in its own process (so it could use DDP) and spool its result."""
    return train_final(exp, spec)
