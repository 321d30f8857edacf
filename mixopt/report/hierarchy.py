"""The report's two-level view of the proposal for `source:topic` domains (empty for flat names):
each source's weight (the sum of its topics) against the natural one, then each topic's weight
within its source."""

from __future__ import annotations

from typing import Any

from mixopt.warehouse import reads


def _f(x: Any) -> str:
    return "–" if x is None else f"{x:.4f}"


def hierarchy_markdown(db: reads.Frames, experiment_id: str, prop: dict | None) -> str:
    """Markdown of the proposal by source and by topic within source ("" for flat domain names)."""
    if prop is None:
        return ""
    rows = reads.mixture_levels(db, experiment_id, prop["mixture_id"]).to_dicts()
    if not rows or not any(":" in r["domain"] for r in rows):
        return ""
    natural: dict[str, float] = {}
    for r in rows:
        natural[r["source"]] = natural.get(r["source"], 0.0) + (r["prior"] or 0.0)
    frozen = set(_frozen_sources(db, experiment_id))
    md = ["\n## Proposal by source (source weight = sum of its topics)\n",
          "| source | proposed | natural | topics | topic mix |", "|---|---|---|---|---|"]
    seen: list[str] = []
    for r in rows:
        if r["source"] in seen:
            continue
        seen.append(r["source"])
        mine = [x for x in rows if x["source"] == r["source"]]
        mix = ", ".join(f"{x['topic']} {x['topic_weight']:.2f}" for x in mine)
        md.append(f"| {r['source']} | {_f(r['source_weight'])} | {_f(natural[r['source']])} | {len(mine)} | "
                  f"{mix}{' (frozen)' if r['source'] in frozen else ''} |")
    md.append("\n| domain | source | topic | weight | weight within source | natural within source |")
    md.append("|---|---|---|---|---|---|")
    for r in rows:
        nat = (r["prior"] or 0.0) / natural[r["source"]] if natural[r["source"]] > 0 else None
        md.append(f"| {r['domain']} | {r['source']} | {r['topic']} | {_f(r['weight'])} | {_f(r['topic_weight'])} | "
                  f"{_f(nat)} |")
    return "\n".join(md) + "\n"


def _frozen_sources(db: reads.Frames, experiment_id: str) -> list[str]:
    cfg = reads.experiment_config(db, experiment_id) or {}
    h = (cfg.get("design") or {}).get("hierarchy") or {}
    return [name for name, s in (h.get("sources") or {}).items() if (s or {}).get("frozen") is not None]
