"""How often the proposal reads each domain: at the final budget, and in a proxy on the same mixture.

A domain the final run repeats but the proxies read far less often was never seen repeated by the law,
which then over-weights it when it is small and useful (`mixtures/repetition.py`). The report gives
both epochs per domain and warns where they part; with `design.match_repetition` they are equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mixopt.mixtures.repetition import epochs, matched_pool

WARN_EPOCHS = 2.0
"""Warn when the final run reads a domain at least this many times and at least this many times as
often as the proxies did."""


@dataclass
class Repetition:
    """Per domain, the epochs of the final run and of a (target-size) proxy on one mixture."""

    final_tokens: int
    proxy_tokens: int
    matched: bool
    final: list[float]
    proxy: list[float]


def repetition(cfg: dict, train_tokens: list[int], weights: list[float]) -> Repetition:
    """The epochs of `weights` at `final.tokens` over whole shards, and at `swarm.tokens` over what the
    proxies drew from (whole shards, or with `design.match_repetition` the matched subsamples)."""
    final, swarm = cfg.get("final") or {}, cfg.get("swarm") or {}
    matched = bool((cfg.get("design") or {}).get("match_repetition"))
    tf, tp = int(final.get("tokens") or 0), int(swarm.get("tokens") or 0)
    n = np.asarray(train_tokens, dtype=np.int64)
    w = np.asarray(weights, dtype=float)
    pool = matched_pool(n, tp, tf, int(swarm.get("seq_len") or 0) + 1) if matched and tp and tf else n
    return Repetition(tf, tp, matched, epochs(w, tf, n).tolist(), epochs(w, tp, pool).tolist())


def repetition_markdown(names: list[str], r: Repetition) -> tuple[str, list[str]]:
    """One line for the first screen (the domains the final run reads more than once, with their epochs
    in a proxy) and the warnings where the proxies read a repeated domain far less often."""
    repeated = [(n, f, p) for n, f, p in zip(names, r.final, r.proxy) if f > 1.0]
    how = ("repetition-matched proxies (`design.match_repetition`) read each domain as often"
           if r.matched else f"the proxies ({r.proxy_tokens:,} tokens, whole shards) read them")
    if not repeated:
        line = (f"**Repetition:** no domain is read more than once at the final budget ({r.final_tokens:,} "
                f"tokens; most: {max(r.final, default=0.0):.2f} epochs).")
    else:
        line = (f"**Repetition at the final budget** ({r.final_tokens:,} tokens): "
                + ", ".join(f"{n} {f:.1f}× (proxy {p:.1f}×)" for n, f, p in repeated) + f"; {how}.")
    warnings = [f"the proposal reads {n} {f:.1f} times at the final budget but a proxy on it read it {p:.2f} "
                "times: the law never saw that repetition and may over-weight the domain (`design.match_repetition` "
                "makes the proxies read it as often, from a subsample of its text: benchmarks/repetition.md)"
                for n, f, p in zip(names, r.final, r.proxy)
                if not r.matched and f >= WARN_EPOCHS and f >= WARN_EPOCHS * p]
    return line, warnings
