"""The report's figures (matplotlib, Agg): each `*_figure` function takes plain rows or arrays and
returns the Figure (tests inspect its lines and images); `save` writes and closes it.

- `heldout_figure`: the held-out target against training tokens, one band (mean ± sd over seeds) per
  mixture. Every run is measured on the same held-out windows, so the curves are comparable, unlike
  the training loss, which each run measures on its own mixture.
- `paired_figure`: proposed − baseline at each token count, paired by seed, with the 95% t-interval
  of `mixopt.mixtures.verdict.paired` (below 0: the proposal is ahead).
- `interaction_figure`: the domain interaction matrices side by side (same domain order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mixopt.mixtures.verdict import paired

Labels = dict[str, list[tuple[str, int]]]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path, dpi: int = 100) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _plt().close(fig)
    return path


def curves_by_label(rows: Iterable[Mapping[str, Any]], labels: Labels | None = None,
                    value: str = "target_loss") -> dict[str, dict[int, dict[int, float]]]:
    """label -> seed -> tokens -> value; `labels` (run_id -> [(label, seed)]) names runs shared by labels."""
    out: dict[str, dict[int, dict[int, float]]] = {}
    for r in rows:
        for label, seed in (labels or {}).get(r["run_id"], [(r["label"], r["seed"])]):
            out.setdefault(label, {}).setdefault(int(seed), {})[int(r["tokens"])] = float(r[value])
    return out


def band(by_seed: dict[int, dict[int, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token counts every seed measured, and the mean and sd (0 for one seed) over seeds there."""
    tokens = sorted(set.intersection(*(set(v) for v in by_seed.values()))) if by_seed else []
    vals = np.array([[by_seed[s][t] for t in tokens] for s in sorted(by_seed)], dtype=float).reshape(-1, len(tokens))
    sd = vals.std(axis=0, ddof=1) if len(vals) > 1 else np.zeros(len(tokens))
    return np.array(tokens), vals.mean(axis=0) if len(vals) else np.zeros(0), sd


def heldout_figure(curves: dict[str, dict[int, dict[int, float]]], target_name: str = "held-out target") -> Any:
    """One line (the mean over seeds) and one shaded band (± sd) per mixture label."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label in sorted(curves, key=lambda x: (x != "proposed", x)):
        t, mean, sd = band(curves[label])
        if not len(t):
            continue
        n = len(curves[label])
        (line,) = ax.plot(t, mean, marker="o", ms=3, label=f"{label} ({n} seed{'s' if n > 1 else ''})")
        ax.fill_between(t, mean - sd, mean + sd, color=line.get_color(), alpha=0.2)
    ax.set(xlabel="training tokens", ylabel=f"{target_name} loss",
           title="Final runs on the same held-out windows\n(mean ± sd over seeds)")
    ax.legend(fontsize=8)
    return fig


def paired_series(curves: dict[str, dict[int, dict[int, float]]], baseline: str,
                  proposed: str = "proposed") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """tokens, mean, low, high of proposed − baseline paired by seed at every token count both measured
    (low/high NaN with one seed), and the number of seeds paired."""
    mine, other = curves.get(proposed, {}), curves.get(baseline, {})
    seeds = sorted(set(mine) & set(other))
    if not seeds:
        return np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), 0
    tokens = sorted(set.intersection(*(set(mine[s]) & set(other[s]) for s in seeds)))
    stats = [paired(baseline, {s: mine[s][t] for s in seeds}, {s: other[s][t] for s in seeds}) for t in tokens]
    return (np.array(tokens), np.array([p.mean for p in stats]), np.array([p.low for p in stats]),
            np.array([p.high for p in stats]), len(seeds))


def paired_figure(curves: dict[str, dict[int, dict[int, float]]], proposed: str = "proposed") -> Any:
    """proposed − baseline against tokens, one line and 95% band per baseline, and the zero line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.axhline(0.0, color="k", lw=1, ls="--")
    for baseline in sorted(b for b in curves if b != proposed):
        t, mean, low, high, n = paired_series(curves, baseline, proposed)
        if not len(t) or np.all(mean == 0):  # no pair, or the baseline is the proposal's own runs
            continue
        (line,) = ax.plot(t, mean, marker="o", ms=3, label=f"vs {baseline} ({n} paired seed{'s' if n > 1 else ''})")
        if np.isfinite(low).any():
            ax.fill_between(t, low, high, color=line.get_color(), alpha=0.2)
    ax.set(xlabel="training tokens", ylabel="proposed − baseline (held-out target)",
           title="Proposed − baseline, paired by seed (95% t-interval)\nbelow 0: the proposal is ahead")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return fig


def interaction_figure(names: list[str], matrices: dict[str, np.ndarray], titles: dict[str, str]) -> Any:
    """Heatmaps side by side, same domain order (rows: the held-out domain i; columns: the trained
    domain j), each on a symmetric colour scale around 0 (red: helps, blue: hurts), values written in."""
    plt = _plt()
    methods = list(matrices)
    size = max(3.2, 0.55 * len(names) + 2.0)
    fig, axes = plt.subplots(1, len(methods), figsize=(size * len(methods), size), squeeze=False)
    for ax, method in zip(axes[0], methods):
        M = np.asarray(matrices[method], dtype=float)
        off = M[~np.eye(len(M), dtype=bool)]
        lim = float(np.nanmax(np.abs(off))) if np.isfinite(off).any() and np.nanmax(np.abs(off)) > 0 else 1.0
        im = ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set(xlabel="trained on domain j", ylabel="held-out loss of domain i", title=titles.get(method, method))
        for i in range(len(names)):
            for j in range(len(names)):
                if np.isfinite(M[i, j]):
                    ax.text(j, i, f"{M[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if abs(M[i, j]) > 0.6 * lim else "black")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return fig
