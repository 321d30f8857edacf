"""The swarm step: plan the proxies, train them, spool and record results (plain functions, then
the Prefect tasks around them; the flow records results itself).

`plan_swarm` extends the experiment's design to `n_proxies` mixtures (earlier mixtures are kept,
so growing the swarm never changes what was trained) and returns the specs of the proxies that
still need training. `train_and_spool` runs in a worker and writes the result next to the
warehouse, never into it; `record_result` is the flow's single write path.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from prefect import task
from prefect.cache_policies import NONE

from mixopt.experiment import CODE_VERSION, Experiment, mixture_id
from mixopt.mixtures import policy
from mixopt.mixtures.hierarchy import frozen_only
from mixopt.models import runner
from mixopt.runspec import RunResult, RunSpec, atomic_write_text
from mixopt.tasks import fidelity
from mixopt.warehouse import Warehouse, reads, writer
from mixopt.warehouse.postgres import is_url, redact

if TYPE_CHECKING:
    from mixopt.mixtures.hierarchy import Hierarchy
    from mixopt.mixtures.reuse import ReusePlan

log = logging.getLogger(__name__)
DONE = ("ok", "diverged")  # outcomes that retraining would not change


def design_mixtures(exp: Experiment, wh: Warehouse) -> list[tuple[str, list[float]]]:
    """The experiment's first `n_proxies` design mixtures (with `design.reuse`, the reduced design's
    `design_size`), sampling and storing new ones as needed (the policy, `mixtures/policy.py`, says how
    many and by which step)."""
    cfg = exp.cfg
    plan = reuse_plan(exp, wh)
    n_design = design_size(exp, plan)
    existing = wh.mixtures(exp.experiment_id, "design")
    missing = n_design - len(existing)
    if missing > 0 and cfg.design.method == "sequential" and _round_unfinished(exp, wh, existing):
        missing = 0  # e.g. after a crash mid-round: finish that round before choosing the next
    if missing > 0:
        caps = exp.proxy_caps()
        seed = cfg.swarm.seed + len(existing)
        d = cfg.design
        step = policy.next_step(d.method, len(existing), missing, d.initial, d.round_size,
                                low_fidelity=d.low_fidelity is not None)
        sizes: list[str | None] = []
        if step.kind == "multi_fidelity":
            acquired = fidelity.acquire_multi_fidelity(exp, wh, caps, step.n, seed)
            chosen = [acquired[i] for i in policy.drop_taken([w for w, _ in acquired], [w for _, w in existing])]
            new, sizes = [w for w, _ in chosen], [s for _, s in chosen]
        elif step.kind == "acquire":
            new = _acquire(exp, wh, caps, step.n, seed, plan)
        else:
            new = sample_around_prior_and_target(exp, step.n, caps, seed, [w for _, w in existing], plan)
        for i, w in enumerate(new):
            wh.record_mixture(mixture_id(w), exp.experiment_id, "design", w, size=sizes[i] if sizes else None)
        existing = wh.mixtures(exp.experiment_id, "design")
    return existing[:n_design]


def sample_around_prior_and_target(exp: Experiment, n: int, caps: np.ndarray, seed: int,
                                   existing: list[list[float]], plan: ReusePlan | None = None) -> np.ndarray:
    """`n` new design mixtures around the target's weights and the token prior
    (`policy.sample_around_prior_and_target` with the experiment's design settings); with a reuse `plan`,
    in its reduced space (the composite's proportions kept)."""
    d = exp.cfg.design
    return policy.sample_around_prior_and_target(
        exp.prior, exp.design_centre(), n, caps, seed, existing, target_fraction=d.target_fraction,
        concentration_min=d.concentration_min, concentration_max=d.concentration_max, min_weight=d.min_weight,
        hierarchy=search_hierarchy(exp, plan))  # two-level draws (None: the flat design)


# ---------------------------------------------------------------- mixture reuse (`design.reuse`)
def reuse_plan(exp: Experiment, wh: Warehouse) -> ReusePlan | None:
    """What `design.reuse` reuses (None when unset): the source experiment's latest proposal over the
    domains unchanged since (by content and tokenizer, `mixtures/reuse.py`), as one frozen composite.

    The source must be in this experiment's warehouse: the same DuckDB file or the shared PostgreSQL
    store. A ConfigError (one line, naming `design.reuse`) when it is not there (e.g. in another DuckDB
    file), has no proposal, shares no unchanged domain, or the composite cannot fit the token caps."""
    from mixopt.config import ConfigError
    from mixopt.mixtures.design import token_caps as caps_at
    from mixopt.mixtures.proposers import PROPOSERS
    from mixopt.mixtures.reuse import DomainIdentity, build_plan, content_key, diff_domains, identities, tokenizer_key

    cfg = exp.cfg
    src = cfg.design.reuse
    if src is None:
        return None
    if src == exp.experiment_id:
        raise ConfigError(f"design.reuse: {src!r} is this experiment itself; name an earlier one")
    if not PROPOSERS.get(cfg.proposer.kind).final_scale:
        raise ConfigError(f"design.reuse needs a final-scale proposer.kind (regmix or bagged), got "
                          f"{cfg.proposer.kind!r}")
    where = redact(exp.warehouse) if is_url(exp.warehouse) else exp.warehouse
    if not reads.experiment(wh, src).height:
        raise ConfigError(f"design.reuse: experiment {src!r} is not in this warehouse ({where}); a reuse source "
                          "must be in the same DuckDB file or the shared PostgreSQL store (another DuckDB file is "
                          "refused): run there, or unset design.reuse for a full search")
    prop = reads.latest_proposal(wh, src)
    if not prop.height:
        raise ConfigError(f"design.reuse: experiment {src!r} has no proposal yet; finish its fit first")
    tok = tokenizer_key(exp.config)
    mine = [DomainIdentity(d.name, content_key(d.text_sha256, d.train_sha256, d.val_sha256), tok)
            for d in exp.domains]
    theirs = identities(reads.domain_identities(wh, src).to_dicts(), reads.experiment_config(wh, src))
    d = cfg.design
    try:
        plan = build_plan(exp.domain_names, diff_domains(theirs, mine), [t.name for t in theirs],
                          list(prop["weights"][0]), source=src, proposal_id=str(prop["proposal_id"][0]),
                          mixture_id=str(prop["mixture_id"][0]),
                          source_range=(d.concentration_min, d.concentration_max))
        for tokens, epochs in ((exp.proxy_budget(), d.proxy_max_epochs),
                               (cfg.final.tokens, cfg.proposer.final_max_epochs)):
            caps = caps_at(exp.train_tokens, tokens, epochs)
            if caps.sum() >= 1:  # infeasible without any freeze: reported where the caps are used
                plan.hierarchy.reduced_caps(caps)
    except ValueError as e:
        raise ConfigError(f"design.reuse: {e}") from None
    return plan


def design_size(exp: Experiment, plan: ReusePlan | None) -> int:
    """Design proxies: `swarm.n_proxies`, or with a reuse plan the reduced design's
    (`policy.reuse_design_size`)."""
    cfg = exp.cfg
    if plan is None:
        return cfg.swarm.n_proxies
    return policy.reuse_design_size(cfg.swarm.n_proxies, len(exp.domains), plan.reduced_dim,
                                    cfg.design.reuse_proxies)


def search_hierarchy(exp: Experiment, plan: ReusePlan | None) -> Hierarchy | None:
    """The space the design and the proposal search: a reuse plan's (the composite frozen), else the
    domains' own hierarchy (None: the flat design)."""
    return plan.hierarchy if plan is not None else exp.hierarchy()


def _round_unfinished(exp: Experiment, wh: Warehouse, existing: list[tuple[str, list[float]]]) -> bool:
    """Whether a stored design mixture has no proxy run recorded yet (any outcome counts: a proxy
    that failed for good must not stall the design)."""
    trained = wh.trained_mixture_ids(exp.experiment_id)
    return any(mid not in trained for mid, _ in existing)


def _acquire(exp: Experiment, wh: Warehouse, caps: np.ndarray, n: int, seed: int,
             plan: ReusePlan | None = None) -> np.ndarray:
    """One round of the sequential design over the proxies finished so far (`policy.acquire`), in the
    reduced space of frozen topics or of a reuse plan."""
    rows = wh.training_table(exp.experiment_id)
    X = np.array([r["weights"] for r in rows], dtype=float).reshape(len(rows), len(exp.domains))
    y = np.array([r["target_loss"] for r in rows], dtype=float)
    taken = [w for _, w in wh.mixtures(exp.experiment_id, "design")]
    return policy.acquire(X, y, exp.prior, caps, n, seed, exp.cfg.design.acquisition, taken,
                          hierarchy=frozen_only(search_hierarchy(exp, plan)))


def swarm_specs(exp: Experiment, wh: Warehouse) -> list[RunSpec]:
    """Every proxy of the swarm so far: one per design mixture (at the size the design chose), then
    the transfer and seed-repeat proxies (`tasks/fidelity.py`); distinct run ids."""
    design = design_mixtures(exp, wh)
    sizes = wh.design_sizes(exp.experiment_id)
    runs = [("design", w, exp.cfg.swarm.seed, sizes.get(mid, fidelity.TARGET)) for mid, w in design]
    specs: dict[str, RunSpec] = {}
    for label, w, seed, size in runs + fidelity.extra_runs(exp, design, sizes):
        spec = exp.run_spec("proxy", label, w, seed, fidelity.size_train(exp, size))
        spec.size = size  # recorded with the run; the id already differs through the training settings
        specs.setdefault(spec.run_id, spec)
    sample = [s for s in specs.values() if s.label == "design"][: exp.cfg.swarm.curve_proxies]
    for spec in sample:  # a sample of proxies measures held-out curves too (not part of the id)
        spec.curve_points = max(1, exp.cfg.final.curve_points)
        spec.curve_eval_batches = exp.cfg.final.curve_eval_batches
    return list(specs.values())


def plan_swarm(exp: Experiment, wh: Warehouse) -> tuple[list[RunSpec], int]:
    """Specs of the proxies still to train, and how many of the swarm are already done."""
    ingest_spool(exp, wh)
    specs = swarm_specs(exp, wh)
    status = wh.run_status([s.run_id for s in specs])
    todo = [s for s in specs if status.get(s.run_id) not in DONE]
    return todo, len(specs) - len(todo)


def spool_path(exp: Experiment, run_id: str) -> Path:
    return exp.spool_dir() / f"{run_id}.json"


def spool_result(exp: Experiment, spec: RunSpec, result: RunResult) -> None:
    """Keep the result on disk until the warehouse has it (survives a crash of the flow)."""
    atomic_write_text(spool_path(exp, result.run_id), '{"spec": %s, "result": %s}' % (spec.to_json(), result.to_json()))


def record_result(exp: Experiment, wh: Warehouse, spec: RunSpec, result: RunResult) -> float | None:
    """Store one finished run (the flow's single write path); returns its target loss."""
    target = exp.target_loss(result.val_losses) if result.status == "ok" else None
    if result.status == "ok" and target is None:
        result.status, result.error = "failed", "no finite held-out loss for a target domain"
    if spec.role != "proxy":
        kind, link = spec.label, True
    elif spec.label.startswith("anchor:"):
        kind, link = "anchor", True
    else:  # seed repeats and ladder runs reuse design or anchor mixtures: no new link
        kind, link = "design", spec.label in ("design", "transfer")
    wh.record_mixture(mixture_id(spec.weights), exp.experiment_id, kind, spec.weights, link=link)
    wh.record_run(
        result, experiment_id=exp.experiment_id, role=spec.role, label=spec.label,
        mixture_id=mixture_id(spec.weights), seed=spec.seed, target_loss=target, code_version=CODE_VERSION,
        size=spec.size if spec.role == "proxy" else None,
        eval_kinds=dict.fromkeys(exp.eval_set_names, "eval"), group_losses=exp.group_losses(result.val_losses),
        weights=dict(zip(exp.domain_names, spec.weights)),
        heldout_targets=[exp.target_loss(p[2]) for p in result.heldout_curve],
    )
    spool_path(exp, result.run_id).unlink(missing_ok=True)
    return target


def records_in_workers(exp: Experiment) -> bool:
    """On the shared store (a `postgresql://` warehouse) Dask workers record their own results: the
    flow's process is then no bottleneck, and only confirms them (`record_or_confirm`)."""
    return bool(exp.cfg.runtime.dask_address) and is_url(exp.warehouse)


def record_in_worker(exp: Experiment, spec: RunSpec, result: RunResult) -> None:
    """A worker's recording of its own result (shared store only); a failure is left to the flow."""
    if not records_in_workers(exp):
        return
    try:
        record_result(exp, writer(exp.warehouse), spec, result)
    except Exception as e:  # noqa: BLE001 - the result stays spooled and returned; the flow records it
        log.warning("proxy %s: recording from the worker failed (%s); the flow records it", spec.run_id, e)


def record_or_confirm(exp: Experiment, wh: Warehouse, spec: RunSpec, result: RunResult) -> float | None:
    """The flow's recording of a finished proxy: skipped when its worker already stored this outcome."""
    if records_in_workers(exp) and wh.run_status([result.run_id]).get(result.run_id) == result.status:
        spool_path(exp, result.run_id).unlink(missing_ok=True)
        return exp.target_loss(result.val_losses) if result.status == "ok" else None
    return record_result(exp, wh, spec, result)


def ingest_spool(exp: Experiment, wh: Warehouse) -> int:
    """Record results that workers finished but the flow did not store (e.g. it crashed)."""
    n = 0
    for path in sorted(exp.spool_dir().glob("*.json")):
        try:
            blob = json.loads(path.read_text(encoding="utf-8"))
            spec = RunSpec.from_json(json.dumps(blob["spec"]))
            result = RunResult(**blob["result"])
        except (ValueError, KeyError, TypeError):
            path.rename(path.with_suffix(".corrupt"))
            continue
        record_result(exp, wh, spec, result)
        n += 1
    return n


def spooled_or_failed(exp: Experiment, specs: list[RunSpec], error: BaseException) -> list[RunResult]:
    """The results of a task whose last retry failed: what the worker spooled for each spec, or a
    failed result carrying the task's error."""
    results = []
    for spec in specs:
        path = spool_path(exp, spec.run_id)
        if path.exists():
            results.append(RunResult(**json.loads(path.read_text())["result"]))
        else:
            results.append(RunResult(run_id=spec.run_id, status="failed", error=str(error)[:500]))
    return results


def held_design_mixtures(exp: Experiment, wh: Warehouse) -> int:
    """How many design mixtures (trained or not) the warehouse holds for the experiment."""
    return len(wh.mixtures(exp.experiment_id, "design"))


def work_dir(exp: Experiment) -> Path:
    """Scratch folder of isolated proxies (spec, result and stderr files), inside the spool folder."""
    return exp.spool_dir() / "work"


def proxies_per_task(exp: Experiment) -> int:
    """K, the proxies trained together as one batched model (`runner.proxies_per_task`)."""
    cfg = exp.cfg
    return runner.proxies_per_task(cfg.runtime, cfg.swarm.model, exp.vocab_size, cfg.swarm.seq_len,
                                   cfg.swarm.batch_size)


def train_group_and_spool(exp: Experiment, specs: list[RunSpec]) -> list[RunResult]:
    """Train K proxies together (the path `runner.execution_mode` chooses) and spool every result; a
    group of one trains as `train_and_spool` does, unless batches go to child processes."""
    rt = exp.cfg.runtime
    if len(specs) == 1 and runner.execution_mode(rt) != runner.CHILD:
        return [train_and_spool(exp, specs[0])]
    results = runner.train_group(specs, rt, work_dir(exp))
    for spec, result in zip(specs, results):
        spool_result(exp, spec, result)
        record_in_worker(exp, spec, result)
    return results


def train_and_spool(exp: Experiment, spec: RunSpec) -> RunResult:
    """Train one proxy and spool its result (runs in a worker thread or process).

    With `runtime.isolate` the training runs in a child process (`runner.train_one`): a crash or a
    kill -9 of the child comes back as a "failed" result naming the signal, and the flow goes on.
    Otherwise it runs here, in the worker.
    """
    result = runner.train_one(spec, exp.cfg.runtime, work_dir(exp))
    spool_result(exp, spec, result)
    record_in_worker(exp, spec, result)
    return result


class ProxyFailed(RuntimeError):
    """A proxy's training failed (Prefect retries the task; the last failure is recorded)."""


@task(name="plan-swarm", cache_policy=NONE)
def plan_swarm_task(exp: Experiment) -> tuple[list[RunSpec], int]:
    """Extend the design to n_proxies mixtures; return the proxies still to train and the count done."""
    return plan_swarm(exp, writer(exp.warehouse))


@task(name="train-proxies", task_run_name="proxies-{specs[0].run_id}-k{k}", cache_policy=NONE, retries=1,
      retry_delay_seconds=1)
def train_proxies_task(exp: Experiment, specs: list[RunSpec], k: int) -> list[RunResult]:
    """Train k proxies as one batched model; if every one of them failed, raise so Prefect retries."""
    results = train_group_and_spool(exp, specs)
    if all(r.status == "failed" for r in results):
        raise ProxyFailed(f"all {len(specs)} proxies of the batch failed: {results[0].error}")
    return results


@task(name="train-proxy", task_run_name="proxy-{spec.run_id}", cache_policy=NONE, retries=1, retry_delay_seconds=1)
def train_proxy_task(exp: Experiment, spec: RunSpec) -> RunResult:
    """Train one proxy; a failure raises (so Prefect retries) after the result is spooled."""
    result = train_and_spool(exp, spec)
    if result.status == "failed":
        raise ProxyFailed(f"proxy {spec.run_id} failed: {result.error}")
    return result
