"""The report's sections on the final runs' held-out curves and on every run's achieved mixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mixopt.report.plots import Labels, curves_by_label, heldout_figure, paired_figure, paired_series, save
from mixopt.warehouse import Warehouse, reads


def heldout_section(wh: Warehouse, experiment_id: str, run_ids: list[str] | None, labels: Labels | None,
                    out: Path) -> tuple[str, list[Path]]:
    """The held-out target against tokens (a band per mixture) and the paired differences; (markdown, plots)."""
    rows = reads.heldout_target_curves(wh, experiment_id, run_ids).to_dicts()
    if not rows:
        return "", []
    curves = curves_by_label(rows, labels)
    paths = [save(heldout_figure(curves), out / "final_heldout_curves.png")]
    md = ["\n## Held-out target during the final runs\n\nEvery final run measured the target on the same held-out "
          f"windows at {len({r['step'] for r in rows})} token counts (`final.curve_points`), so the curves compare "
          "mixtures on one yardstick (the training loss does not: each run measures it on its own mixture).\n"]
    lines = []
    for baseline in sorted(b for b in curves if b != "proposed"):
        t, mean, low, high, n = paired_series(curves, baseline)
        if not len(t) or np.all(mean == 0):
            continue
        ahead = [int(x) for x, h in zip(t, high) if np.isfinite(h) and h < 0]
        steady = next((int(x) for k, x in enumerate(t) if all(np.isfinite(h) and h < 0 for h in high[k:])), None)
        since = (f"ahead (95% interval below 0) from {steady:,} tokens on" if steady is not None else
                 f"ahead at {len(ahead)} of {len(t)} points" if ahead else "never ahead with 95% confidence")
        lines.append(f"- against {baseline} ({n} paired seeds): {mean[-1]:+.4f} at the end; {since}")
    if lines:
        paths.append(save(paired_figure(curves), out / "final_paired_differences.png"))
        md.append("\nProposed − baseline, paired by seed (negative: the proposal is ahead):\n\n"
                  + "\n".join(lines) + "\n")
    return "".join(md), paths


def achieved_section(wh: Warehouse, experiment_id: str, names: list[str]) -> str:
    """Requested and achieved (drawn) mixture of every run: finals in full, proxies as a deviation summary."""
    df = reads.achieved_mixtures(wh, experiment_id)
    if not df.height:
        return ""
    runs: dict[str, dict] = {}
    for r in df.iter_rows(named=True):
        run = runs.setdefault(r["run_id"], {"role": r["role"], "label": r["label"], "seed": r["seed"], "w": {}})
        run["w"][r["domain"]] = (r["requested"], r["fraction"])
    md = ["\n## Achieved mixtures (fraction of training tokens drawn from each domain, next to the request)\n\n",
          "| run | role | label | seed | TV distance | " + " | ".join(names) + " |\n",
          "|---|---|---|---|---|" + "---|" * len(names) + "\n"]
    for run_id, run in sorted(runs.items(), key=lambda kv: (kv[1]["role"] == "proxy", kv[1]["role"],
                                                           kv[1]["label"], kv[1]["seed"], kv[0])):
        cells, tv = [], 0.0
        for n in names:
            req, got = run["w"].get(n, (None, None))
            cells.append("–" if got is None else (f"{req:.3f} → {got:.3f}" if req is not None else f"{got:.3f}"))
            if req is not None and got is not None:
                tv += abs(req - got) / 2
        md.append(f"| {run_id} | {run['role']} | {run['label']} | {run['seed']} | {tv:.3f} | " + " | ".join(cells)
                  + " |\n")
    md.append("\nEach sequence picks its domain at random by the requested weights (an online mixture, Aioli, "
              "requests its starting weights), so the drawn fractions scatter around the request. "
              "`mixopt sql \"select * from achieved_mixture\"`.\n")
    return "".join(md)
