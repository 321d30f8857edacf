"""Plot Aioli's mixture trajectories: each domain's weight over the training steps, per run.

`rows` are the warehouse's `mixture_trajectory` rows (mappings with `run_id`, `step`, `domain`,
`weight`; an optional `label` and `seed` name the panel), e.g.
``mixopt.warehouse.reads.final_trajectories(wh, experiment_id).to_dicts()``.
A weight holds from its step until the next entry, so lines are drawn as steps; LearnParams' short
visits on smoothed one-hot mixtures are not part of the trajectory and are not drawn.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def _panels(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """run title -> domain -> [(step, weight)] sorted by step."""
    runs: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        title = str(r["run_id"])
        if r.get("label") is not None:
            title = f"{r['label']} (seed {r['seed']}) {title}" if r.get("seed") is not None else f"{r['label']} {title}"
        runs[title][str(r["domain"])].append((int(r["step"]), float(r["weight"])))
    return {t: {d: sorted(pts) for d, pts in sorted(doms.items())} for t, doms in sorted(runs.items())}


def plot_trajectory(rows: Iterable[Mapping[str, Any]], path: str | Path,
                    total_steps: int | None = None) -> Path | None:
    """Draw each domain's weight over steps, one panel per Aioli run, to `path` (PNG).

    `total_steps` (optional) extends the last weight to the end of training. Returns the path,
    or None (and writes nothing) when `rows` is empty.
    """
    panels = _panels(rows)
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels)
    fig, axes = plt.subplots(n, 1, figsize=(7.5, 2.8 * n), squeeze=False, sharex=True)
    for ax, (title, domains) in zip(axes[:, 0], panels.items()):
        for domain, pts in domains.items():
            steps = [s for s, _ in pts]
            weights = [w for _, w in pts]
            end = max(total_steps or 0, steps[-1])
            if end > steps[-1]:
                steps, weights = steps + [end], weights + [weights[-1]]
            real = list(range(len(pts)))  # markers on the recorded updates, not on the extension
            ax.plot(steps, weights, drawstyle="steps-post", marker=".", markevery=real, label=domain)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("weight")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right", ncols=min(4, len(domains)))
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
