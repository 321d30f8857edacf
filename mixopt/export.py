"""Mixture files: the chosen mixture with its provenance, for a training stack (`mixopt export`).

`mixture_record` reads one experiment's latest proposal from the warehouse (read-only) and returns a
plain dict: the provenance (experiment, proposal and fit ids, predicted and measured target, config
hash, code version) and per domain its weight, source and topic, tokens at the final run's budget
and the epochs of its training tokens those imply (and the epochs a proxy read it on the mixture:
equal with `design.match_repetition`). `render` writes it as

* ``yaml`` / ``json``: the dict itself, for any training stack;
* ``megatron``: a Megatron-LM / NeMo ``--data-path`` blend (weight and path pairs, paths from a
  template such as ``/data/{domain}/text_document``) as a shell variable, provenance in comments;
* ``hf``: a Python snippet that mixes HuggingFace datasets with ``interleave_datasets(probabilities=...)``.
"""

from __future__ import annotations

import json
import re
import string
from typing import Any

import numpy as np
import polars as pl

import mixopt
from mixopt.errors import MixoptError
from mixopt.mixtures.repetition import epochs
from mixopt.report.repetition import repetition
from mixopt.warehouse import reads

FORMATS = ("yaml", "json", "megatron", "hf")
FILE_VERSION = 1
_PLACEHOLDERS = {"domain", "source", "topic"}


class ExportError(MixoptError, ValueError):
    """An export that cannot be made (unknown experiment, no proposal yet, bad template)."""


def _split(name: str) -> tuple[str, str]:
    from mixopt.mixtures.hierarchy import split_name

    try:
        return split_name(name)
    except ValueError:
        return name, name


def _num(x: Any) -> float | None:
    return None if x is None else float(x)


def mixture_record(db: reads.Frames, experiment_id: str | None = None, tokens: int | None = None) -> dict[str, Any]:
    """The chosen mixture of `experiment_id` (default: the latest experiment) with its provenance.

    The token budget is `tokens`, else that of the final runs that trained the mixture, else the
    experiment's `final.tokens`. ``ExportError`` for an unknown experiment or one without a proposal."""
    if experiment_id is None:
        experiment_id = reads.latest_experiment(db)
        if experiment_id is None:
            raise ExportError("export: the warehouse holds no experiment yet (run `mixopt run` first)")
    exp = reads.experiment(db, experiment_id)
    if not exp.height:
        raise ExportError(f"export: unknown experiment {experiment_id!r} (see `mixopt sql \"select experiment_id "
                          f"from experiments\"`)")
    prop = reads.proposal(db, experiment_id)
    if not prop.height:
        raise ExportError(f"export: experiment {experiment_id!r} has no proposal yet (its fit has not run; "
                          "`mixopt run` with the same config finishes it)")
    p = prop.row(0, named=True)
    e = exp.row(0, named=True)
    cfg = reads.experiment_config(db, experiment_id) or {}
    doms = reads.domains(db, experiment_id).to_dicts()
    finals = reads.final_runs_of_mixture(db, experiment_id, p["mixture_id"])
    measured = None
    if finals.height:
        first = finals.row(0, named=True)  # the latest final configuration only (its tokens and size)
        latest = finals.filter(pl.col("tokens").eq_missing(first["tokens"]) & pl.col("n_params").eq_missing(
            first["n_params"]))
        t = latest["target_loss"]
        measured = {"mean": float(t.mean()), "sd": _num(t.std()) if latest.height > 1 else None,
                    "seeds": int(latest.height), "labels": sorted(set(latest["label"].to_list())),
                    "run_ids": latest["run_id"].to_list()}
    if tokens is not None:
        budget, budget_from = int(tokens), "given"
    elif finals.height:
        budget, budget_from = int(finals["tokens"][0]), "final_runs"
    else:
        budget, budget_from = int((cfg.get("final") or {}).get("tokens") or 0), "config"
    code = reads.runs(db, experiment_id)["code_version"].drop_nulls().unique().sort().to_list()
    weights = [float(w) for w in p["weights"]]
    trains = [int(d["train_tokens"] or 0) for d in doms]
    at_budget = epochs(np.array(weights), budget, np.array(trains))  # what the caps and the law used at `budget`
    rep = repetition(cfg, trains, weights)  # and what a proxy read on this mixture
    domains, sources = [], {}
    for i, (d, w) in enumerate(zip(doms, weights)):
        src, topic = _split(d["domain"])
        sources[src] = sources.get(src, 0.0) + w
        domains.append({"name": d["domain"], "source": src, "topic": topic, "weight": w, "train_tokens": trains[i],
                        "tokens": int(round(w * budget)), "epochs": float(at_budget[i]) if trains[i] else None,
                        "proxy_epochs": float(rep.proxy[i]) if trains[i] and rep.proxy_tokens else None})
    details = p.get("details")
    if isinstance(details, str):
        details = json.loads(details)
    for d in domains:  # the topic mix within each source: what `design.hierarchy.sources.<s>.frozen` reuses
        total = sources[d["source"]]
        d["within_source"] = d["weight"] / total if total > 0 else 0.0
    target = cfg.get("target") or {}
    return {
        "mixopt_mixture": FILE_VERSION,
        "experiment_id": experiment_id, "experiment_name": e["name"], "proposal_id": p["proposal_id"],
        "fit_id": p["fit_id"], "mixture_id": p["mixture_id"], "method": p["method"], "regressor": p["regressor"],
        "predicted_target": _num(p["predicted_target"]), "measured_target": measured,
        "config_hash": e["config_hash"], "corpus_fingerprint": e["corpus_fingerprint"],
        "code_version": code[-1] if code else None, "exported_by": f"mixopt {mixopt.__version__}",
        "created_at": str(p["created_at"]),
        "token_budget": budget, "token_budget_from": budget_from,
        "sources": sources if any(":" in d["name"] for d in domains) else None,
        "target": {"weights": target.get("weights"),
                   "eval_sets": [e.get("name") for e in target.get("eval_sets") or []],
                   "groups": target.get("groups") or {}},
        "compute_equivalent": _compute_equivalent(db, experiment_id),
        "proxies": {"tokens": rep.proxy_tokens, "match_repetition": rep.matched},
        "domains": domains,
    }


def _compute_equivalent(db: reads.Frames, experiment_id: str) -> dict[str, Any]:
    """Per baseline of the final comparison compared now: how many times the baseline's tokens the
    proposal needs to match its final held-out loss (geometric mean over seeds, 95% CI; from the curves)."""
    from mixopt.report.answer import held_out_curves, speedups

    labels = reads.current_final_runs(db, experiment_id)
    out = {}
    for name, s in speedups(held_out_curves(db, experiment_id, list(labels), labels)).items():
        if s.seeds:
            out[name] = {"speedup": _num(s.speedup), "low": _num(s.low), "high": _num(s.high),
                         "bound": s.bound or None, "seeds": len(s.seeds)}
    return out


_SAFE_PATH = re.compile(r"^[A-Za-z0-9/._:+=,@%-]*$")  # nothing a shell (or the blend's spaces) reads specially


def _check_template(template: str) -> list[tuple[str, str | None]]:
    """(literal text, placeholder) pieces of a --path-template; anything but plain placeholders between
    safe text (no format spec, conversion, quote, `$`, space or `..` segment) is an `ExportError`."""
    try:
        pieces = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ExportError(f"--path-template: {e} in {template!r}") from None
    bad = sorted({f for _, f, _, _ in pieces if f is not None} - _PLACEHOLDERS)
    if bad:
        raise ExportError(f"--path-template: unknown placeholder(s) {bad} in {template!r}; use {{domain}}, "
                          "{source} or {topic}")
    if any(spec or conv for _, f, spec, conv in pieces if f is not None):
        raise ExportError(f"--path-template: plain placeholders only ({{domain}}, no format spec or !conversion) "
                          f"in {template!r}")
    literal = "".join(text for text, _, _, _ in pieces)
    if not _SAFE_PATH.match(literal):
        raise ExportError(f"--path-template: {template!r} has a character that is not allowed in a data path "
                          "(letters, digits and / . _ - : + = , @ % only)")
    return [(text, f) for text, f, _, _ in pieces]


def _paths(rec: dict[str, Any], template: str) -> list[str]:
    pieces = _check_template(template)
    paths = []
    for d in rec["domains"]:
        values = {"domain": d["name"], "source": d["source"], "topic": d["topic"]}
        path = "".join(text + (values[f] if f else "") for text, f in pieces)
        if not _SAFE_PATH.match(path) or ".." in path.split("/"):
            raise ExportError(f"--path-template: the path of domain {d['name']!r}, {path!r}, leaves its folder "
                              "or has a character not allowed in a data path")
        paths.append(path)
    return paths


def _provenance_lines(rec: dict[str, Any]) -> list[str]:
    m = rec["measured_target"]
    measured = "none yet" if m is None else f"{m['mean']:.6g} over {m['seeds']} seed(s)"
    return [f"mixopt mixture of experiment {rec['experiment_id']} ({rec['method']} on {rec['regressor']})",
            f"proposal {rec['proposal_id']}, fit {rec['fit_id']}, mixture {rec['mixture_id']}",
            f"predicted target {rec['predicted_target']:.6g}; measured target {measured}",
            "target: " + (", ".join(f"eval set {n}" for n in (rec.get("target") or {}).get("eval_sets") or [])
                          or "the training domains' held-out losses"),
            "compute-equivalent: " + (", ".join(
                f"{b} {v['speedup']:.2f}x" for b, v in (rec.get("compute_equivalent") or {}).items()
                if v.get("speedup") is not None) or "no held-out curves yet"),
            f"config hash {rec['config_hash']}, code version {rec['code_version']}, {rec['exported_by']}",
            f"token budget {rec['token_budget']:,} ({rec['token_budget_from']}); per domain: tokens, epochs:"] + [
        f"  {d['name']}: weight {d['weight']:.6f}, {d['tokens']:,} tokens, "
        + ("n/a" if d["epochs"] is None else f"{d['epochs']:.3f}") + " epochs" for d in rec["domains"]]


def render(rec: dict[str, Any], fmt: str, path_template: str = "{domain}") -> str:
    """The mixture file's text in `fmt` (one of `FORMATS`)."""
    if fmt == "json":
        return json.dumps(rec, indent=2) + "\n"
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(rec, sort_keys=False)
    used = [(d, p) for d, p in zip(rec["domains"], _paths(rec, path_template)) if d["weight"] > 0]
    if fmt == "megatron":
        blend = " ".join(f"{d['weight']:.8f} {p}" for d, p in used)
        head = "\n".join("# " + line for line in _provenance_lines(rec))
        return (f"{head}\n# Megatron-LM / NeMo data blend (weight path pairs; domains of weight 0 left out):\n"
                f"#   pretrain_gpt.py ... --data-path $MIXOPT_DATA_PATH\nMIXOPT_DATA_PATH=\"{blend}\"\n")
    if fmt == "hf":
        head = "\n".join("# " + line for line in _provenance_lines(rec))
        names = [d["name"] for d, _ in used]
        paths = [p for _, p in used]
        probs = [d["weight"] for d, _ in used]
        total = sum(probs)
        probs = [w / total for w in probs]
        return (f"{head}\nfrom datasets import interleave_datasets, load_dataset\n\n"
                f"DOMAINS = {names!r}\nPATHS = {paths!r}\nPROBABILITIES = {probs!r}\n\n"
                "datasets = [load_dataset(path, split=\"train\", streaming=True) for path in PATHS]\n"
                "mixed = interleave_datasets(datasets, probabilities=PROBABILITIES, seed=0,\n"
                "                            stopping_strategy=\"all_exhausted\")\n")
    raise ExportError(f"--format: unknown format {fmt!r}; choose from {list(FORMATS)}")


def export_mixture(db: reads.Frames, experiment_id: str | None, fmt: str, path_template: str = "{domain}",
                   tokens: int | None = None) -> str:
    """`mixture_record` rendered in `fmt` (format and template are checked before anything is read)."""
    if fmt not in FORMATS:
        raise ExportError(f"--format: unknown format {fmt!r}; choose from {list(FORMATS)}")
    if tokens is not None and tokens <= 0:
        raise ExportError(f"--tokens: must be positive, got {tokens}")
    _paths({"domains": []}, path_template)
    return render(mixture_record(db, experiment_id, tokens), fmt, path_template)
