"""The report's domain-interaction section: how training on domain j changes the held-out
loss of domain i, estimated from the swarm (`mixopt.mixtures.interaction`) and from the gradients the
proposed final runs measured (`mixopt.models.interaction`), stored in the warehouse's `interactions`
table (one row per experiment, method, i, j) and compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mixopt.mixtures.interaction import agreement, row_contrast, strongest_pairs, swarm_interaction
from mixopt.warehouse import Warehouse, reads

TITLES = {"swarm": "swarm: mixing law per domain\n(relative to the average other domain)",
          "gradient": "gradients: cosine of held-out gradients\n(diagonal: split-half)"}


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return x if np.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def swarm_estimate(wh: Warehouse, experiment_id: str, names: list[str], point: np.ndarray) -> np.ndarray | None:
    """S from the target-size proxies' per-domain held-out losses (None with too few proxies)."""
    df = reads.proxy_domain_losses(wh, experiment_id)
    if not df.height:
        return None
    runs: dict[str, tuple[list[float], dict[str, float]]] = {}
    for r in df.iter_rows(named=True):
        runs.setdefault(r["run_id"], (list(r["weights"]), {}))[1][r["domain"]] = r["loss"]
    X = np.array([w for w, _ in runs.values()], dtype=float)
    Y = np.array([[losses.get(n, np.nan) for n in names] for _, losses in runs.values()], dtype=float)
    if len(X) < len(names) + 2:
        return None
    S = swarm_interaction(X, Y, point)
    return S if np.isfinite(S).any() else None


def gradient_estimate(wh: Warehouse, experiment_id: str, names: list[str]) -> tuple[np.ndarray | None, int, int]:
    """The gradient cosines averaged over every run and point measured; (matrix, runs, points)."""
    df = reads.run_gradient_cosines(wh, experiment_id)
    if not df.height:
        return None, 0, 0
    index = {n: i for i, n in enumerate(names)}
    total, count = np.zeros((len(names), len(names))), np.zeros((len(names), len(names)))
    for r in df.iter_rows(named=True):
        i, j = index.get(r["row_domain"]), index.get(r["col_domain"])
        if i is not None and j is not None and r["value"] is not None and np.isfinite(r["value"]):
            total[i, j] += r["value"]
            count[i, j] += 1
    with np.errstate(invalid="ignore"):
        M = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    points = df.select(["run_id", "step"]).unique().height
    return M, df["run_id"].n_unique(), points


def record_interactions(wh: Warehouse, experiment_id: str, names: list[str], point: np.ndarray | None,
                        point_name: str, details: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Estimate both matrices from what the warehouse holds; method -> matrix. They are stored when `wh`
    is the writer (the flow's report step); `mixopt report` reads through a read-only handle (it may run
    while a search writes) and only shows them."""
    out: dict[str, np.ndarray] = {}
    store = wh.record_interaction if isinstance(wh, Warehouse) else None
    if point is not None:
        S = swarm_estimate(wh, experiment_id, names, point)
        if S is not None:
            if store:
                store(experiment_id, "swarm", names, S, _clean(
                    {"point": point_name, "weights": [float(w) for w in point], "regressor": "mixing_law",
                     "definition": "-dL_i/dd along d = e_j - uniform over the domains other than i"}))
            out["swarm"] = S
    G, n_runs, n_points = gradient_estimate(wh, experiment_id, names)
    if G is not None:
        if details is not None:
            details.update(runs=n_runs, points=n_points)
        if store:
            store(experiment_id, "gradient", names, G,
                  {"runs": n_runs, "points": n_points, "definition": "cos(grad L_i, grad L_j)"})
        out["gradient"] = G
    return out


def stored_interactions(wh: Warehouse, experiment_id: str, names: list[str]) -> dict[str, np.ndarray]:
    """method -> matrix in `names` order, as stored."""
    index = {n: i for i, n in enumerate(names)}
    out: dict[str, np.ndarray] = {}
    for r in reads.interactions(wh, experiment_id).iter_rows(named=True):
        M = out.setdefault(r["method"], np.full((len(names), len(names)), np.nan))
        i, j = index.get(r["row_domain"]), index.get(r["col_domain"])
        if i is not None and j is not None and r["value"] is not None:
            M[i, j] = r["value"]
    return out


def _pairs(pairs: list[tuple[str, str, float]]) -> str:
    return ", ".join(f"{j} → {i} ({v:+.3f})" for i, j, v in pairs) or "none"


def interaction_markdown(matrices: dict[str, np.ndarray], names: list[str], details: dict[str, Any]) -> str:
    if not matrices:
        return ("\n## How domains interact\n\nNo estimate yet: the swarm estimate needs at least domains + 2 "
                "finished proxies; the gradient one needs final runs with `final.interaction_points` > 0.\n")
    md = ["\n## How domains interact\n\nRow i, column j: how training on domain j changes the held-out loss of "
          "domain i (positive: helps). "]
    if "swarm" in matrices:
        md.append(f"**Swarm**: one mixing law per domain fitted on the proxies' held-out losses, differentiated at "
                  f"{details.get('point', 'the proposal')}: the loss of i saved by moving a unit of weight from the "
                  "average other domain to j (a fixed budget can only tell what helps more than the rest). ")
    if "gradient" in matrices:
        md.append("**Gradients**: cosine between the held-out gradients of i and j on the proposed final models "
                  f"({details.get('runs', '?')} runs, {details.get('points', '?')} checkpoints in all); the diagonal "
                  "is a domain's split-half cosine, the noise reference. ")
    md.append("\n\n")
    for method, M in matrices.items():
        helps, hurts = strongest_pairs(M, names)
        md.append(f"- {method}: strongest help {_pairs(helps)}; strongest hurt {_pairs(hurts)}\n")
    if "swarm" in matrices and "gradient" in matrices:
        a = agreement(matrices["swarm"], row_contrast(matrices["gradient"]))
        sign = "–" if a.sign_agreement is None else f"{a.sign_agreement:.0%}"
        rho = "n/a" if a.spearman is None else f"{a.spearman:+.2f}"
        md.append(f"\nAgreement over the {a.n} off-diagonal pairs (gradient cosines taken relative to the average "
                  f"other domain, as the swarm's are): signs agree on **{sign}**, Spearman rho **{rho}**.\n")
    md.append("\nThe matrices: `mixopt sql \"select * from interactions\"`.\n")
    return "".join(md)


def interaction_section(wh: Warehouse, experiment_id: str, names: list[str], prop: dict | None,
                        prior: list[float], out: Path) -> tuple[str, list[Path]]:
    """Estimate, store and describe the interactions; returns (markdown, plot paths)."""
    point = np.asarray(prop["weights"], dtype=float) if prop else np.asarray(prior, dtype=float)
    details: dict[str, Any] = {"point": "the proposal" if prop else "the natural mixture"}
    matrices = record_interactions(wh, experiment_id, names, point, details["point"], details)
    paths = []
    if matrices:
        from mixopt.report.plots import interaction_figure, save

        paths.append(save(interaction_figure(names, matrices, TITLES), out / "domain_interactions.png"))
    return interaction_markdown(matrices, names, details), paths
