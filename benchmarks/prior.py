"""How well does the zero-proxy similarity prior rank the swarm's mixtures? Spearman against the measured target.

    python benchmarks/prior.py out/tiny/mixopt.duckdb                     # the latest experiment
    python benchmarks/prior.py W.duckdb --experiment tiny-8c2a36cd6d --corpus out/tiny/corpus --md benchmarks/prior.md

For one finished search: the proxies' mixtures and measured target losses come from the warehouse
(finished proxy runs with a finite target, seed repeats left out, as the regressors see them; one row
per mixture and proxy size), the target's terms from the experiment's stored config, the token shards
from the corpus manifest (`--corpus`, default `<runtime.out_dir>/corpus`, else next to the warehouse).
Each prior method (`mixopt.mixtures.prior.METHODS`) scores every proxy mixture; the table gives its
Spearman with the measured target (positive: a lower score goes with a lower loss), per proxy size,
next to the regressors' cross-validated Spearman recorded by the search. The prior reads no proxy
result, so its plain Spearman is already out-of-sample: there is nothing to hold out. A `name-match`
row is the prior one gets from the target's domain weights alone (`-sum_i t_i log max(w_i, 1e-3)`;
n/a for a target on eval sets only), to tell what the text adds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

_OBSERVATIONS = """
SELECT r.mixture_id, coalesce(r.size, 'target') AS size, avg(r.target_loss) AS target_loss, any_value(m.weights) AS w
FROM proxy_runs r JOIN mixtures m USING (mixture_id)
WHERE r.experiment_id = '{eid}' AND r.status = 'ok' AND r.target_loss IS NOT NULL AND isfinite(r.target_loss)
  AND r.label IS DISTINCT FROM 'seed_repeat'
GROUP BY ALL ORDER BY r.mixture_id, size
"""


def _quote(s: str) -> str:
    return s.replace("'", "''")


def load_search(warehouse: str | Path, experiment: str | None = None) -> dict[str, Any]:
    """The experiment's id, config, domain names (in weight order) and proxy observations."""
    import mixopt

    with mixopt.open(warehouse) as w:
        if experiment is None:
            ids = w.sql("SELECT experiment_id FROM experiments ORDER BY created_at DESC LIMIT 1")
            if ids.height == 0:
                raise SystemExit(f"{warehouse}: no experiment recorded")
            experiment = str(ids["experiment_id"][0])
        eid = _quote(experiment)
        row = w.sql(f"SELECT config_json FROM experiments WHERE experiment_id = '{eid}'")
        if row.height == 0:
            raise SystemExit(f"{warehouse}: no experiment '{experiment}'")
        config = json.loads(row["config_json"][0])
        names = w.sql(f"SELECT domain FROM domains WHERE experiment_id = '{eid}' ORDER BY idx")["domain"].to_list()
        obs = w.sql(_OBSERVATIONS.format(eid=eid))
        fits = w.sql(f"SELECT regressor, chosen, n_train, cv_spearman FROM fits WHERE experiment_id = '{eid}' "
                     "ORDER BY created_at")
    if obs.height == 0:
        raise SystemExit(f"{warehouse}: experiment '{experiment}' has no finished proxy run with a target")
    return {"experiment": experiment, "config": config, "names": names,
            "W": np.array(obs["w"].to_list(), dtype=float), "y": obs["target_loss"].to_numpy(),
            "sizes": obs["size"].to_list(), "fits": fits.to_dicts()}


def corpus_dir(warehouse: str | Path, config: dict, corpus: str | Path | None) -> Path:
    """`corpus` if given, else `<runtime.out_dir>/corpus` when it has a manifest, else next to the warehouse."""
    if corpus is not None:
        return Path(corpus)
    out = (config.get("runtime") or {}).get("out_dir")
    if out and (Path(out) / "corpus" / "manifest.json").is_file():
        return Path(out) / "corpus"
    return Path(warehouse).resolve().parent / "corpus"


def _spearman(score: np.ndarray, y: np.ndarray) -> float | None:
    if len(y) < 3 or np.ptp(score) == 0 or np.ptp(y) == 0:
        return None
    return float(spearmanr(score, y).statistic)


def evaluate(warehouse: str | Path, experiment: str | None = None, corpus: str | Path | None = None,
             n_buckets: int | None = None, max_tokens: int | None = None) -> dict[str, Any]:
    """Every method's Spearman with the measured target, per proxy size; with timings and prior weights."""
    from mixopt.config.data import TargetConfig
    from mixopt.corpus import similarity as sim
    from mixopt.mixtures.prior import METHODS
    from mixopt.targets import effective_weights

    s = load_search(warehouse, experiment)
    folder = corpus_dir(warehouse, s["config"], corpus)
    domains, eval_sets = sim.corpus_shards(folder)
    by_name = {d.name: d for d in domains}
    missing = sorted(set(s["names"]) - set(by_name))
    if missing:
        raise SystemExit(f"{folder}: the corpus has no shards for domains {missing}")
    domains = [by_name[n] for n in s["names"]]
    target = TargetConfig.model_validate(s["config"].get("target") or {})
    terms = effective_weights(target, s["names"], [e.name for e in eval_sets])
    t0 = time.perf_counter()
    feats = sim.ngram_features(domains, terms, eval_sets, n_buckets or sim.DEFAULT_BUCKETS,
                               max_tokens or sim.DEFAULT_MAX_TOKENS)
    t_features = time.perf_counter() - t0
    W, y, sizes = s["W"], s["y"], np.array(s["sizes"])
    scores: dict[str, np.ndarray] = {}
    priors = {}
    for m in METHODS:
        t1 = time.perf_counter()
        r = sim.similarity_prior(features=feats, method=m)
        scores[m] = r.score_fn(W)
        priors[m] = {"weights": [round(float(v), 4) for v in r.weights],
                     "domain_scores": [round(float(v), 4) for v in r.domain_scores],
                     "seconds": round(time.perf_counter() - t1, 4)}
    tw = np.array([terms[n] for n in s["names"]])
    if tw.sum() > 0:
        scores["name-match"] = -(np.log(np.maximum(W, 1e-3)) @ (tw / tw.sum()))
    table = {}
    for name, sc in scores.items():
        table[name] = {size: _spearman(sc[sizes == size], y[sizes == size]) for size in sorted(set(sizes))}
    return {"experiment": s["experiment"], "corpus": str(folder), "domains": s["names"], "terms": feats.terms,
            "n": {size: int((sizes == size).sum()) for size in sorted(set(sizes))},
            "spearman": table, "priors": priors, "fits": s["fits"], "features_seconds": round(t_features, 3),
            "tokens_read": feats.tokens_read}


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.3f}"


def markdown(res: dict[str, Any]) -> str:
    """The result as a markdown section."""
    sizes = list(res["n"])
    lines = [f"### {res['experiment']}", "",
             f"Domains {res['domains']}; target terms {json.dumps({k: round(v, 3) for k, v in res['terms'].items()})}; "
             f"features in {res['features_seconds']} s ({sum(res['tokens_read'].values()):,} tokens hashed).", "",
             "| score | " + " | ".join(f"{z} (n={res['n'][z]})" for z in sizes) + " | prior weights |",
             "|---|" + "---|" * (len(sizes) + 1)]
    for name, row in res["spearman"].items():
        w = res["priors"].get(name, {}).get("weights")
        lines.append(f"| {name} | " + " | ".join(_fmt(row[z]) for z in sizes) + f" | {w if w else ''} |")
    chosen = {}
    for f in res["fits"]:  # the latest fit of each regressor
        chosen[f["regressor"]] = f
    if chosen:
        lines += ["", "Regressors' cross-validated Spearman on the same search (target size): " + ", ".join(
            f"{k}{' (chosen)' if f['chosen'] else ''} {_fmt(f['cv_spearman'])}" for k, f in chosen.items()) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("warehouse", help="DuckDB warehouse of a finished search")
    ap.add_argument("--experiment", help="experiment id (default: the latest)")
    ap.add_argument("--corpus", help="corpus folder with manifest.json (default: from the config's out_dir)")
    ap.add_argument("--md", help="append the markdown section to this file")
    ap.add_argument("--json", help="write the full result to this JSON file")
    a = ap.parse_args(argv)
    res = evaluate(a.warehouse, a.experiment, a.corpus)
    text = markdown(res)
    print(text)
    if a.md:
        with open(a.md, "a", encoding="utf-8") as f:
            f.write("\n" + text)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
