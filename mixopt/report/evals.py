"""The report's section on eval sets and groups: every run is measured on them.

`evals_markdown` reads the wide `reads.eval_table` and gives, per final-run label, the mean over seeds
of each eval set's and group's loss, and for the proxies their mean and best. Empty (no section)
for an experiment without eval sets or groups.
"""

from __future__ import annotations

import polars as pl

from mixopt.warehouse import reads


def _fmt(x: object) -> str:
    return "–" if x is None else f"{x:.4f}" if isinstance(x, float) else str(x)


def _md_table(rows: list[dict], cols: list[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(out) + "\n"


def evals_markdown(db: reads.Frames, experiment_id: str) -> str:
    """Markdown: the eval-set and group columns of the final runs (by label) and of the proxies."""
    long = reads.run_evals(db, experiment_id)
    extra = long.filter(pl.col("kind").is_in(["eval", "group"]))
    if not extra.height:
        return ""
    kinds = dict(extra.select("name", "kind").unique().iter_rows())
    cols = sorted(kinds, key=lambda n: (kinds[n] != "eval", n))
    wide = reads.eval_table(db, experiment_id)
    md = ["\n## Eval sets and groups (measured on every run, never trained on)\n\n",
          "Columns: " + ", ".join(f"`{c}` ({'eval set' if kinds[c] == 'eval' else 'group'})" for c in cols)
          + ". Every loss: `mixopt sql \"select * from run_evals\"`.\n\n"]
    final = wide.filter(pl.col("role") == "final")
    if final.height:
        by = final.group_by("label").agg(pl.len().alias("seeds"), *[pl.col(c).mean() for c in cols]).sort("label")
        md.append("Final runs (mean over seeds):\n\n" + _md_table(by.to_dicts(), ["label", "seeds", *cols]))
    proxy = wide.filter(pl.col("role") == "proxy")
    if proxy.height:
        rows = [{"proxies": f"{stat} of {proxy.height}", **{c: getattr(proxy[c], stat)() for c in cols}}
                for stat in ("mean", "min")]
        md.append("\nProxies:\n\n" + _md_table(rows, ["proxies", *cols]))
    return "".join(md)
