"""The experiment report: markdown and PNG plots, built from the warehouse alone.

`build_report` reads what the warehouse holds for one experiment (through the named reads of
`mixopt.warehouse.reads`, as polars DataFrames), so `mixopt report` can rebuild it at any time;
the flow also publishes parts of it as Prefect artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mixopt.mixtures.baselines import adaptive_baselines
from mixopt.mixtures.diagnostics import check_warnings, noise_floor, rank_transfer, train_flops
from mixopt.report.answer import Answer, answer_section
from mixopt.report.choice import (
    choice_markdown,
    paired_verdicts,
    pilot_markdown,
    proposal_details,
    verdict_markdown,
    verdict_sentence,
)
from mixopt.report.evals import evals_markdown
from mixopt.report.hierarchy import hierarchy_markdown
from mixopt.report.html import write_html
from mixopt.report.interaction import interaction_section
from mixopt.report.repetition import repetition, repetition_markdown
from mixopt.report.runs import achieved_section, heldout_section
from mixopt.warehouse import Warehouse, reads


@dataclass
class Report:
    experiment_id: str
    markdown: str
    path: Path
    plots: list[Path] = field(default_factory=list)
    top_mixtures: list[dict[str, Any]] = field(default_factory=list)
    comparison: list[dict[str, Any]] = field(default_factory=list)
    verdict: str = ""
    checks: dict[str, Any] = field(default_factory=dict)  # noise floor and scale transfer (see `trust_checks`)
    warnings: list[str] = field(default_factory=list)
    html: Path | None = None  # report.html next to report.md: one self-contained page, images inlined
    answer: Answer | None = None  # the first screen: claims, speedups, noise and power


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _table(rows: pl.DataFrame | list[dict[str, Any]], cols: list[str]) -> str:
    if isinstance(rows, pl.DataFrame):
        rows = rows.to_dicts()
    if not rows:
        return "_(none)_\n"
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(out) + "\n"


def latest_experiment(wh: Warehouse) -> str | None:
    return reads.latest_experiment(wh)


def comparison_rows(wh: Warehouse, experiment_id: str, run_ids: list[str] | None = None,
                    labels: dict[str, list[tuple[str, int]]] | None = None) -> list[dict[str, Any]]:
    """Final runs grouped by mixture label: mean and spread of the target over seeds. Only runs of
    one final configuration are compared: `run_ids` (the flow's), else the runs compared now
    (`reads.current_final_runs`: each label's current mixture). `labels` (run_id -> [(label, seed)])
    counts a run under every label that shares it."""
    if run_ids is None:
        labels = reads.current_final_runs(wh, experiment_id)
        run_ids = list(labels)
    if labels is None:
        return reads.final_comparison(wh, experiment_id, run_ids).to_dicts()
    by: dict[str, list[dict[str, Any]]] = {}
    for r in reads.final_targets(wh, experiment_id, run_ids).to_dicts():
        for label, _seed in labels.get(r["run_id"], [(r["label"], r["seed"])]):
            by.setdefault(label, []).append(r)
    rows = []
    for label in sorted(by, key=lambda x: (x != "proposed", x)):
        v = np.array([r["target_loss"] for r in by[label]], dtype=float)
        rows.append({"label": label, "seeds": len(v), "mean_target": float(v.mean()),
                     "std_target": float(v.std(ddof=1)) if len(v) > 1 else None, "best": float(v.min()),
                     "worst": float(v.max()), "n_params": by[label][0]["n_params"], "tokens": by[label][0]["tokens"]})
    return rows


def _configured_min_rho(wh: Warehouse, experiment_id: str) -> float:
    try:
        return float(reads.experiment_config(wh, experiment_id)["design"]["transfer_min_rho"])
    except (IndexError, KeyError, TypeError, ValueError):
        return 0.5


def trust_checks(wh: Warehouse, experiment_id: str) -> dict[str, Any]:
    """The noise floor (pooled seed-to-seed sd of the target over target-size mixtures trained with
    several seeds) and the scale transfer (Spearman rho between the sizes over mixtures trained at
    both, one seed each), from the finished proxy runs alone."""
    rows = reads.finished_proxies(wh, experiment_id).iter_rows(named=True)
    seeds: dict[str, list[float]] = {}
    one: dict[str, dict[str, float]] = {"target": {}, "low": {}}
    compute: dict[str, list[float]] = {"target": [], "low": []}
    for r in rows:
        if r["size"] == "target":
            seeds.setdefault(r["mixture_id"], []).append(r["target_loss"])
        if r["label"] != "seed_repeat" and r["size"] in one:
            one[r["size"]][r["mixture_id"]] = r["target_loss"]
        if r["size"] in compute and r["n_params"] and r["tokens"]:
            compute[r["size"]].append(train_flops(r["n_params"], r["tokens"]))
    transfer = rank_transfer(one["low"], one["target"]) if one["low"] else None
    pairs = sorted(set(one["low"]) & set(one["target"]))
    cost = (float(np.mean(compute["low"]) / np.mean(compute["target"]))
            if compute["low"] and compute["target"] else None)
    return {"noise": noise_floor(list(seeds.values())), "transfer": transfer, "relative_cost": cost,
            "pairs": [(one["low"][m], one["target"][m]) for m in pairs]}


def _checks_markdown(checks: dict[str, Any], chosen: dict | None, min_rho: float, warnings: list[str]) -> str:
    noise, transfer = checks["noise"], checks["transfer"]
    md = ["\n## Scale transfer and noise floor\n\n"]
    if noise.sd is None:
        md.append("Noise floor: no mixture was trained with several seeds at the target size "
                  "(`design.noise_mixtures`).\n")
    else:
        ratio = (f" The chosen fit ({chosen['regressor']}) has CV RMSE {_fmt(chosen['cv_rmse'])}"
                 f" = {chosen['cv_rmse'] / noise.sd:.1f}x the floor." if chosen and chosen["cv_rmse"] is not None
                 and noise.sd > 0 else "")
        md.append(f"Noise floor: seed-to-seed sd of the target at the target size, pooled over {noise.n_mixtures} "
                  f"mixtures ({noise.n_runs} runs, {noise.dof} degrees of freedom): **{noise.sd:.4f}**.{ratio}\n")
    if transfer is None:
        md.append("\nScale transfer: no second proxy size (`design.low_fidelity`).\n")
    else:
        cost = f" ({checks['relative_cost']:.2g}x the target's compute)" if checks["relative_cost"] else ""
        rho = "n/a (fewer than 3 mixtures, or constant losses)" if transfer.rho is None else f"**{transfer.rho:.3f}**"
        md.append(f"\nScale transfer: Spearman rho of the target between the low size{cost} and the target size "
                  f"over n = {transfer.n} mixtures trained at both: {rho} (warning below {min_rho:.2f}).\n")
    md.append("\n" + ("\n".join(f"- **warning:** {w}" for w in warnings) if warnings else "No warning.") + "\n")
    md.append("\nThe runs: `mixopt sql \"select label, size, seed, mixture_id, target_loss from proxy_runs "
              "where label in ('seed_repeat', 'transfer') order by mixture_id\"`.\n")
    return "".join(md)


def build_report(wh: Warehouse, experiment_id: str, out_dir: str | Path, final_run_ids: list[str] | None = None,
                 min_rho: float | None = None, labels: dict[str, list[tuple[str, int]]] | None = None) -> Report:
    """The report of one experiment; `min_rho`: the scale-transfer warning threshold (default: the
    experiment's stored `design.transfer_min_rho`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not reads.experiment(wh, experiment_id).height:
        raise ValueError(f"no experiment {experiment_id!r} in the warehouse")
    domains = reads.domains(wh, experiment_id)
    names = domains["domain"].to_list()
    status = reads.proxy_status_counts(wh, experiment_id).to_dicts()
    bad = reads.excluded_proxies(wh, experiment_id)
    speeds = reads.proxy_speeds(wh, experiment_id).to_dicts()
    fits = reads.latest_fits(wh, experiment_id)
    prop = reads.latest_proposal(wh, experiment_id).to_dicts()
    chosen = next(iter(fits.filter(pl.col("chosen")).to_dicts()), None)
    top = reads.top_proxies(wh, experiment_id, chosen["fit_id"] if chosen else None).to_dicts()
    for t in top:
        t["mixture"] = ", ".join(f"{n} {w:.2f}" for n, w in zip(names, t.pop("weights")) if w > 0)
    if final_run_ids is None:  # the runs of the mixtures compared now, under every label that shares them
        labels = reads.current_final_runs(wh, experiment_id)
        final_run_ids = list(labels)
    comp = comparison_rows(wh, experiment_id, final_run_ids, labels)
    comps = paired_verdicts(wh, experiment_id, final_run_ids, labels)
    verdict = verdict_sentence(comps)
    checks = trust_checks(wh, experiment_id)
    min_rho = _configured_min_rho(wh, experiment_id) if min_rho is None else min_rho
    warnings = check_warnings(chosen["regressor"] if chosen else None, chosen["cv_rmse"] if chosen else None,
                              checks["noise"], checks["transfer"], min_rho)

    md = [f"# mixopt report — {experiment_id}\n"]
    p0 = prop[0] if prop else None
    baselines = {label: w for rid, w in reads.run_mixtures(wh, final_run_ids).items()
                 for label, _ in (labels or {}).get(rid, [])
                 if label != "proposed" and label not in adaptive_baselines()}
    ans = answer_section(wh, experiment_id, names, p0, proposal_details(p0), comps, final_run_ids, labels, baselines)
    md.append(ans.markdown)
    rep = None
    if p0 is not None:
        rep = repetition(reads.experiment_config(wh, experiment_id) or {}, domains["train_tokens"].to_list(),
                         list(p0["weights"]))
        rep_line, rep_warnings = repetition_markdown(names, rep)
        md.append(rep_line + "\n")
        warnings += rep_warnings
    md.append("## Domains (the prior is the token distribution)\n")
    md.append(_table(domains, ["domain", "train_tokens", "val_tokens", "prior", "text_sha256"]))
    md.append("## Swarm\n")
    md.append(", ".join(f"{s['n']} {s['status']}" for s in status) + " proxy runs"
              + "".join(f"; {sp['n']} ok at the {sp['size']} size: {sp['n_params']:,} parameters and "
                        f"{sp['tokens']:,} tokens each, {_fmt(sp['tokens_per_s'], 0)} tokens/s on average, "
                        f"{_fmt(sp['wall_s'], 1)} s of training in all" for sp in speeds) + ".\n")
    if bad.height:
        md.append("\nExcluded from every fit:\n\n" + _table(bad, ["run_id", "status", "last_good_step", "error"]))
    md.append("\n## Fits (k-fold cross-validation on the target-size proxies only, one seed per mixture)\n")
    md.append(_table(fits, ["regressor", "chosen", "n_train", "folds", "cv_repeats", "cv_spearman", "cv_spearman_sd",
                            "cv_kendall", "cv_r2", "cv_rmse"]))
    md.append("\nScores are means over `cv_repeats` shuffles of the folds; `cv_spearman_sd` is their spread.\n")
    md.append(_checks_markdown(checks, chosen, min_rho, warnings))
    md.append("\n## Top proxy mixtures (target size; measured, and the chosen fit's out-of-fold prediction)\n")
    md.append(_table(top, ["run_id", "measured", "predicted_cv", "mixture"]))
    if prop:
        p = prop[0]
        prior = dict(zip(names, domains["prior"].to_list()))
        rows = [{"domain": n, "proposed": w, "natural": prior[n], "cap_active": c, "epochs_final": ef,
                 "epochs_proxy": ep}
                for n, w, c, ef, ep in zip(names, p["weights"], p["caps_active"], rep.final, rep.proxy)]
        md.append(f"\n## Proposal ({p['method']} on the {p['regressor']} fit `{p['fit_id']}`)\n")
        md.append(f"Predicted target: {p['predicted_target']:.4f}. Epochs: times each domain is read at the final "
                  f"budget ({rep.final_tokens:,} tokens) and by a proxy on this mixture ({rep.proxy_tokens:,} "
                  f"tokens{', repetition-matched' if rep.matched else ''}).\n\n")
        md.append(_table(rows, ["domain", "proposed", "natural", "cap_active", "epochs_final", "epochs_proxy"]))
    md.append(hierarchy_markdown(wh, experiment_id, prop[0] if prop else None))
    choice_md, choice_warnings = choice_markdown(wh, experiment_id, names, prop[0] if prop else None)
    md.append(choice_md)
    warnings += choice_warnings
    md.append(pilot_markdown(wh, experiment_id, labels))
    md.append("\n## Final comparison (same model, tokens and seeds)\n")
    md.append(_table(comp, ["label", "seeds", "mean_target", "std_target", "best", "worst", "n_params", "tokens"]))
    md.append(verdict_markdown(comps))
    md.append(f"\n{verdict}\n")
    md.append(evals_markdown(wh, experiment_id))  # eval sets and groups

    # ---- sections: each returns its markdown and any plots it drew
    extra: list[Path] = []
    heldout_md, heldout_plots = heldout_section(wh, experiment_id, final_run_ids, labels, out)
    md.append(heldout_md); extra += heldout_plots
    inter_md, inter_plots = interaction_section(wh, experiment_id, names, prop[0] if prop else None,
                                                domains["prior"].to_list(), out)
    md.append(inter_md); extra += inter_plots
    md.append(achieved_section(wh, experiment_id, names))

    plots = extra + _plots(wh, experiment_id, names, chosen, prop[0] if prop else None, domains, out, checks["pairs"],
                           training_curves=not heldout_plots)
    if plots:
        md.append("\n## Plots\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in plots) + "\n")
    md.append(registered_markdown())
    text = "\n".join(md)
    path = out / "report.md"
    path.write_text(text, encoding="utf-8")
    html = write_html(text, out / "report.html", title=f"mixopt report — {experiment_id}")
    return Report(experiment_id, text, path, plots, top, comp, verdict, checks, warnings, html, ans)


def registered_markdown() -> str:
    """The components this install has registered (regressors, proposers, built-in baselines)."""
    from mixopt.mixtures.baselines import BASELINES
    from mixopt.mixtures.proposers import PROPOSERS
    from mixopt.mixtures.registry import REGRESSORS

    baselines = [f"{e.name} ({'adaptive' if e.adaptive else 'static'}{', default' if e.default else ''})"
                 for e in BASELINES]
    return ("\n## Registered components\n\n"
            f"Regressors: {', '.join(REGRESSORS.names())}. Proposers: {', '.join(PROPOSERS.names())}. "
            f"Built-in baselines: {', '.join(baselines)}.\n")


def _plots(wh: Warehouse, experiment_id: str, names: list[str], chosen: dict | None, prop: dict | None,
           domains: pl.DataFrame, out: Path, pairs: list[tuple[float, float]],
           training_curves: bool = True) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    if chosen:
        pts = reads.fit_predictions(wh, chosen["fit_id"])
        if pts.height:
            a = pts["actual"].to_numpy(); q = pts["predicted"].to_numpy()
            fig, ax = plt.subplots(figsize=(4.5, 4.5))
            ax.scatter(a, q, s=18)
            lo, hi = float(min(a.min(), q.min())), float(max(a.max(), q.max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=1)
            ax.set(xlabel="measured target loss", ylabel="predicted (out-of-fold)",
                   title=f"{chosen['regressor']}: CV Spearman {_fmt(chosen['cv_spearman'], 3)}")
            fig.tight_layout(); paths.append(out / "cv_predicted_vs_actual.png")
            fig.savefig(paths[-1], dpi=110); plt.close(fig)
    if prop:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        x = np.arange(len(names))
        ax.bar(x - 0.2, domains["prior"].to_list(), 0.4, label="natural (prior)")
        ax.bar(x + 0.2, prop["weights"], 0.4, label="proposed")
        ax.set_xticks(x, names, rotation=30, ha="right"); ax.set_ylabel("weight"); ax.legend()
        fig.tight_layout(); paths.append(out / "mixture_proposed_vs_natural.png")
        fig.savefig(paths[-1], dpi=110); plt.close(fig)
    if len(pairs) >= 2:
        lo_, hi_ = np.array(pairs).T
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.scatter(lo_, hi_, s=18)
        ax.set(xlabel="target loss, low size", ylabel="target loss, target size",
               title=f"Scale transfer ({len(pairs)} mixtures)")
        fig.tight_layout(); paths.append(out / "scale_transfer.png"); fig.savefig(paths[-1], dpi=110); plt.close(fig)
    curves = reads.final_curves(wh, experiment_id).to_dicts() if training_curves else []
    if curves:  # only without held-out curves: each run measures its training loss on its own mixture
        fig, ax = plt.subplots(figsize=(6, 4))
        keys = sorted({(c["label"], c["seed"]) for c in curves})
        for label, seed in keys:
            pts = [(c["tokens"], c["loss"]) for c in curves if c["label"] == label and c["seed"] == seed]
            t, l = np.array(pts).T
            k = max(1, len(l) // 50)  # light smoothing for readability
            ax.plot(t[k - 1:], np.convolve(l, np.ones(k) / k, mode="valid"), label=f"{label} (seed {seed})")
        ax.set(xlabel="training tokens", ylabel="training loss (smoothed)",
               title="Final runs: training loss, on each run's own mixture")
        ax.legend(fontsize=8); fig.tight_layout()
        paths.append(out / "final_loss_curves.png"); fig.savefig(paths[-1], dpi=110); plt.close(fig)
    trajectory = reads.final_trajectories(wh, experiment_id).to_dicts()
    if trajectory:
        from mixopt.report.aioli_plot import plot_trajectory

        drawn = plot_trajectory(trajectory, out / "aioli_trajectory.png", total_steps=trajectory[0]["steps"])
        if drawn:
            paths.append(Path(drawn))
    return paths
