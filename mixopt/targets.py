"""The target over domains, evaluation-only sets and groups: checks and arithmetic.

A run is measured on every training domain's held-out shard and on every `target.eval_sets` entry;
these measured losses are keyed by name. A group (`target.groups`) is the weighted mean of its
members' losses, like olmix's task families. `target.weights` may name domains, eval sets and
groups; the target is their weighted mean. By default it is the mean over the groups when groups are
given, else the mean over the domains (as before). Flattening the groups gives one weight per measured
name (`effective_weights`), so the target is a plain weighted sum of measured losses.

Pure Python and numpy: the config imports it lazily, the warehouse and report use it too.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

NEW_DOMAIN_FIELDS = {"dtype": None, "separator_id": None, "held_out": []}
"""Fields DomainConfig gained with eval sets and token domains, with their defaults (left out of identities at them)."""
NEW_TARGET_FIELDS = {"eval_sets": [], "groups": {}}


def check_target_names(t: Any) -> None:
    """Eval-set and group names are unique and distinct; group weights are >= 0 and not all 0."""
    names = [e.name for e in t.eval_sets]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"target.eval_sets: duplicate names {dup}")
    for e in t.eval_sets:
        if e.held_out:
            raise ValueError(f"target.eval_sets '{e.name}': held_out does not apply (an eval set is held out whole)")
    clash = sorted(set(names) & set(t.groups))
    if clash:
        raise ValueError(f"target.groups: {clash} is also an eval set's name")
    for g, w in t.groups.items():
        if not w:
            raise ValueError(f"target.groups.{g}: no members")
        inner = sorted(set(w) & set(t.groups))
        if inner:
            raise ValueError(f"target.groups.{g}: members {inner} are groups; a group holds domains and eval sets")
        bad = {k: v for k, v in w.items() if not v >= 0}
        if bad:
            raise ValueError(f"target.groups.{g}: weights must be >= 0, got {bad}")
        if sum(w.values()) <= 0:
            raise ValueError(f"target.groups.{g}: weights must not all be zero")


def check_experiment_data(cfg: Any) -> None:
    """Cross-section checks: tokenizer kind vs token domains; eval-set and group names vs domains."""
    t, c = cfg.target, cfg.corpus
    builtin = [d.name for d in c.domains if d.format == "builtin"]
    if builtin:
        raise ValueError(f"corpus.domains {builtin}: format 'builtin' applies to target.eval_sets only")
    sets = [*c.domains, *t.eval_sets]
    tokens = [d.name for d in sets if d.format == "tokens"]
    if cfg.tokenizer.kind == "none":
        text = [d.name for d in sets if d.format != "tokens"]
        if c.source != "files" or text:
            what = f"domains {text} are text" if text else f"corpus.source is '{c.source}'"
            raise ValueError(f"tokenizer.kind 'none' needs every domain and eval set in format 'tokens' ({what})")
    elif cfg.tokenizer.kind == "bpe" and tokens:
        raise ValueError(f"{tokens} are pre-tokenized (format 'tokens'): set tokenizer.kind to 'file' (their "
                         "tokenizer.json) or 'none' (with vocab_size), not 'bpe'")
    if c.source != "files":
        return
    domains = {d.name for d in c.domains}
    clash = sorted(domains & ({e.name for e in t.eval_sets} | set(t.groups)))
    if clash:
        raise ValueError(f"target: eval set or group names {clash} are also domain names")
    known = domains | {e.name for e in t.eval_sets}
    for g, w in t.groups.items():
        unknown = sorted(set(w) - known)
        if unknown:
            raise ValueError(f"target.groups.{g} names unknown domains or eval sets {unknown}; known: {sorted(known)}")


def _drop_domain_defaults(d: dict) -> None:
    for key, default in NEW_DOMAIN_FIELDS.items():
        if key in d and d[key] == default:
            del d[key]


def drop_new_defaults(payload: dict) -> dict:
    """In a dumped ExperimentConfig, remove the issue-15 fields at their defaults (ids stay put)."""
    for d in (payload.get("corpus") or {}).get("domains") or []:
        _drop_domain_defaults(d)
    target = payload.get("target")
    if isinstance(target, dict):
        drop_target_defaults(target)
    return payload


def drop_target_defaults(target: dict) -> dict:
    """A dumped TargetConfig without empty eval sets and groups; eval sets' own new fields likewise."""
    for key, default in NEW_TARGET_FIELDS.items():
        if key in target and target[key] == default:
            del target[key]
    for e in target.get("eval_sets") or []:
        _drop_domain_defaults(e)
    return target


def target_identity(target: Any) -> dict:
    """The target as it enters the experiment id: eval sets by their settings, not their paths (their
    content enters through the corpus fingerprint); unchanged for a target without eval sets or groups."""
    d = drop_target_defaults(target.model_dump(mode="json"))
    for e in d.get("eval_sets") or []:
        e.pop("paths", None)
        e.pop("held_out", None)
    return d


def effective_weights(target: Any, domains: Sequence[str], eval_sets: Sequence[str]) -> dict[str, float]:
    """Normalised weight of each measured name (domains, then eval sets) in the target; groups flattened.

    Raises ValueError naming unknown names."""
    measured = [*domains, *eval_sets]
    groups = target.groups
    w = target.weights
    if not w:
        w = {g: 1.0 for g in groups} if groups else {n: 1.0 for n in domains}
    unknown = sorted(set(w) - set(measured) - set(groups))
    if unknown:
        raise ValueError(f"target.weights: unknown names {unknown}; known: {measured + sorted(groups)}")
    out = dict.fromkeys(measured, 0.0)
    for name, weight in w.items():
        if name in groups:
            members = groups[name]
            missing = sorted(set(members) - set(measured))
            if missing:
                raise ValueError(f"target.groups.{name}: unknown names {missing}; known: {measured}")
            total = sum(members.values())
            for m, v in members.items():
                out[m] += weight * v / total
        else:
            out[name] += weight
    s = sum(out.values())
    return {k: v / s for k, v in out.items()}


def weighted_loss(weights: dict[str, float], losses: dict[str, float]) -> float | None:
    """Sum of weight x loss over names with weight > 0; None when one of them is missing or not finite."""
    total = 0.0
    for name, w in weights.items():
        if w == 0:
            continue
        v = losses.get(name)
        if v is None or not np.isfinite(v):
            return None
        total += w * float(v)
    return float(total)


def group_losses(target: Any, losses: dict[str, float]) -> dict[str, float]:
    """Each group's loss (weighted mean of its members); a group with a missing member is left out."""
    out = {}
    for g, members in target.groups.items():
        total = sum(members.values())
        v = weighted_loss({m: w / total for m, w in members.items()}, losses)
        if v is not None:
            out[g] = v
    return out
