"""The proposal at the final scale (part of the fit step): gather every proxy observation with its
compute, fit the scale-aware law on top of the chosen regressor, propose, bootstrap and hedge
(`mixtures/choose.py`), and describe the result for the warehouse (the proposal's `details`).

Rows: the target-size proxies (design and anchors, one seed each) and, with `design.ladder`, the
ladder's runs at the cheaper rungs; `x` = log10 of each size's training FLOPs. The law predicts at
the final run's FLOPs when `proposer.scale_aware` is on, there is more than one scale and the law
passes its gate (leave-largest-scale-out against the chosen regressor alone, scored as it is used,
an `auto` ensemble included); otherwise at the proxies' own scale (the single-scale proposal, still
bootstrapped and hedged). The gate's decision and scores, and the hedge's transfer term, go into the
proposal's details.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mixopt.experiment import Experiment
from mixopt.mixtures.auto import AutoRegressor
from mixopt.mixtures.choose import Choice, FixedEnsemble, choose_at_scale
from mixopt.mixtures.regressors import make_regressor
from mixopt.mixtures.scaling import mixture_key
from mixopt.tasks.fidelity import TARGET, ladder_sizes, size_flops, train_compute
from mixopt.warehouse import Warehouse


def propose_at_final_scale(exp: Experiment, wh: Warehouse, chosen: str, model: Any, caps: np.ndarray) -> Choice:
    """The proposal for the final run (see the module docstring). `model` is the chosen regressor
    fitted on the target-size rows; an `auto` choice is frozen (its members and weights) so the
    bootstrap refits do not redo its cross-validation."""
    cfg = exp.cfg
    seed = cfg.swarm.seed
    weights = dict(model.weights_) if isinstance(model, AutoRegressor) else None

    def base() -> Any:
        return FixedEnsemble(weights, seed) if weights else make_regressor(chosen, seed)
    sizes = [TARGET] + (ladder_sizes(exp) if cfg.proposer.scale_aware else [])
    log_flops = {size: math.log10(size_flops(exp, size)) for size in sizes}
    rows = [r for r in wh.proxy_observations(exp.experiment_id) if r["size"] in log_flops]
    k = len(exp.domains)
    W = np.array([r["weights"] for r in rows], dtype=float).reshape(len(rows), k)
    s = np.array([log_flops[r["size"]] for r in rows])
    y = np.array([r["target_loss"] for r in rows], dtype=float)
    groups = [mixture_key(w) for w in W]
    multi = len(set(s.tolist())) > 1
    s_final = math.log10(train_compute(exp, cfg.final)) if multi else log_flops[TARGET]
    p = cfg.proposer
    singles = {name: (lambda n=name: make_regressor(n, seed)) for name in cfg.regressor.candidates}
    from mixopt.tasks.swarm import reuse_plan, search_hierarchy  # `design.reuse`: the reduced space

    plan = reuse_plan(exp, wh)
    anchors = exp.anchor_mixtures(caps, cfg.final.tokens)
    choice = choose_at_scale(W, s, y, groups, base, exp.prior, caps, anchors, s_final,
                             n_samples=p.n_samples, top_k=p.top_k, seed=seed, kappa=p.hedge_kappa, B=p.bootstrap,
                             boot_samples=p.bootstrap_samples, single_scale=singles,
                             hierarchy=search_hierarchy(exp, plan), base_name="auto" if weights else chosen,
                             gate=p.scale_gate, transfer=p.hedge_transfer, boot_search=p.bootstrap_search)
    choice.reused_from = plan.details() if plan is not None else None  # lineage, into the details
    return choice


def _floats(v: Any) -> list[float]:
    return [float(x) for x in np.asarray(v, dtype=float).ravel()]


def choice_details(c: Choice) -> dict[str, Any]:
    """The choice as JSON for `proposals.details` (the report reads it back)."""
    d: dict[str, Any] = {
        "scale_aware": c.n_scales > 1, "n_scales": c.n_scales,
        "log10_flops_final": c.s_final, "log10_flops_proxy": c.s_proxy,
        "raw_optimum": _floats(c.raw.weights), "raw_predicted": float(c.law_predict(c.raw.weights)),
        "anchors_predicted": {n: {"mean": m, "sd": None if not np.isfinite(sd) else sd}
                              for n, (m, sd) in c.anchors.items()},
        "hedge_start": c.start,
    }
    if c.hedge is not None:
        d["hedge"] = {"lam": c.hedge.lam, "gain": c.hedge.gain, "gain_sd": c.hedge.gain_sd,
                      "boot_sd": c.hedge.boot_sd, "transfer_sd": c.hedge.transfer_sd,
                      "transfer_tau2": c.transfer_tau2}
    if c.gate is not None:
        d["scale_gate"] = _gate(c)
    if c.boot is not None:
        d["bootstrap"] = {"B": int(len(c.boot.proposals)), "failed": int(c.boot.n_failed), "scored": c.boot_scored,
                          "stability_tv": float(c.boot.stability), "lower": _floats(c.boot.lower),
                          "upper": _floats(c.boot.upper), "bagged": _floats(c.boot.bagged),
                          "seconds": float(c.boot.seconds)}
    if getattr(c, "reused_from", None):  # `design.reuse`: which experiment and proposal were reused
        d["reused_from"] = c.reused_from
    if c.checks:
        d["scale_checks"] = [{"name": x.name, "spearman": None if not np.isfinite(x.spearman) else x.spearman,
                              "rmse": x.rmse, "regret": x.regret, "n": x.n} for x in c.checks]
    return d


def _check(x: Any) -> dict[str, Any] | None:
    if x is None:
        return None
    return {"name": x.name, "spearman": None if not np.isfinite(x.spearman) else x.spearman, "rmse": x.rmse,
            "regret": x.regret, "n": x.n}


def _gate(c: Choice) -> dict[str, Any]:
    """The gate as JSON: which model proposed, why, and both leave-largest-scale-out scores."""
    g = c.gate
    return {"use": "law" if g.use_law else "single", "reason": g.reason, "law": _check(g.law),
            "single": _check(g.single), "transfer_tau2": c.transfer_tau2, "noise_var": g.noise_var}
