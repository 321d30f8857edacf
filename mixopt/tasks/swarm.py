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

import numpy as np
from prefect import task
from prefect.cache_policies import NONE

from mixopt.experiment import CODE_VERSION, Experiment, mixture_id
from mixopt.mixtures import policy
from mixopt.mixtures.design import token_caps
from mixopt.mixtures.hierarchy import frozen_only
from mixopt.models import runner
from mixopt.runspec import RunResult, RunSpec, atomic_write_text
from mixopt.tasks import fidelity
from mixopt.warehouse import Warehouse, writer
from mixopt.warehouse.postgres import is_url

log = logging.getLogger(__name__)
DONE = ("ok", "diverged")  # outcomes that retraining would not change


def design_mixtures(exp: Experiment, wh: Warehouse) -> list[tuple[str, list[float]]]:
    """The experiment's first `n_proxies` design mixtures, sampling and storing new ones as needed
    (the policy, `mixtures/policy.py`, says how many and by which step)."""
    cfg = exp.cfg
    existing = wh.mixtures(exp.experiment_id, "design")
    missing = cfg.swarm.n_proxies - len(existing)
    if missing > 0 and cfg.design.method == "sequential" and _round_unfinished(exp, wh, existing):
        missing = 0  # e.g. after a crash mid-round: finish that round before choosing the next
    if missing > 0:
        caps = token_caps(exp.train_tokens, cfg.swarm.tokens, cfg.design.proxy_max_epochs)
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
            new = _acquire(exp, wh, caps, step.n, seed)
        else:
            new = sample_around_prior_and_target(exp, step.n, caps, seed, [w for _, w in existing])
        for i, w in enumerate(new):
            wh.record_mixture(mixture_id(w), exp.experiment_id, "design", w, size=sizes[i] if sizes else None)
        existing = wh.mixtures(exp.experiment_id, "design")
    return existing[: cfg.swarm.n_proxies]


def sample_around_prior_and_target(exp: Experiment, n: int, caps: np.ndarray, seed: int,
                                   existing: list[list[float]]) -> np.ndarray:
    """`n` new design mixtures around the target's weights and the token prior
    (`policy.sample_around_prior_and_target` with the experiment's design settings)."""
    d = exp.cfg.design
    return policy.sample_around_prior_and_target(
        exp.prior, exp.design_centre(), n, caps, seed, existing, target_fraction=d.target_fraction,
        concentration_min=d.concentration_min, concentration_max=d.concentration_max, min_weight=d.min_weight,
        hierarchy=exp.hierarchy())  # two-level draws for `source:topic` domains (None: the flat design)


def _round_unfinished(exp: Experiment, wh: Warehouse, existing: list[tuple[str, list[float]]]) -> bool:
    """Whether a stored design mixture has no proxy run recorded yet (any outcome counts: a proxy
    that failed for good must not stall the design)."""
    trained = wh.trained_mixture_ids(exp.experiment_id)
    return any(mid not in trained for mid, _ in existing)


def _acquire(exp: Experiment, wh: Warehouse, caps: np.ndarray, n: int, seed: int) -> np.ndarray:
    """One round of the sequential design over the proxies finished so far (`policy.acquire`)."""
    rows = wh.training_table(exp.experiment_id)
    X = np.array([r["weights"] for r in rows], dtype=float).reshape(len(rows), len(exp.domains))
    y = np.array([r["target_loss"] for r in rows], dtype=float)
    taken = [w for _, w in wh.mixtures(exp.experiment_id, "design")]
    return policy.acquire(X, y, exp.prior, caps, n, seed, exp.cfg.design.acquisition, taken,
                          hierarchy=frozen_only(exp.hierarchy()))


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
    for spec in sample:  # issue 16: a sample of proxies measures held-out curves too (not part of the id)
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
