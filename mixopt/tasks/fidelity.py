"""Proxy sizes (multi-fidelity) and the extra proxies behind the report's checks, without Prefect.

`design.low_fidelity` adds a second, cheaper proxy size, "low", next to the swarm's, "target". A
size's fidelity level is the log of its compute relative to the target (FLOPs = 6 x params x
tokens), so the target is level 0 and the low size's relative cost is exp(level).

Besides the design's own proxies (label `design`, one per design mixture, at the size the design
chose), two kinds of ordinary proxy runs are planned:

* `transfer` — the first `design.transfer_mixtures` design mixtures are also trained at the other
  size (only with `low_fidelity`): the report's scale-transfer rank correlation;
* `seed_repeat` — the first `design.noise_mixtures` target-size design mixtures are retrained at
  seeds `swarm.seed + 1 ... + noise_seeds`: the report's noise floor. Fits leave them out;
* `anchor:<name>` — the static built-in baselines (natural, stratified) and the user's
  `design.anchors`, at the target size and the swarm's seed (fits use them like design mixtures), plus
  their `seed_repeat`s at the other seeds;
* `ladder` — the first `design.ladder.mixtures` design mixtures and the anchors, at every cheaper
  rung of `design.ladder` (sizes `ladder1`, `ladder2`, ...): the scale-aware law's data.

Run ids hash the mixture, the seed and the training settings (the size), so a mixture+size+seed
already stored is never trained again.
"""

from __future__ import annotations

import math

import numpy as np

from mixopt.config import TrainConfig
from mixopt.experiment import Experiment
from mixopt.mixtures.diagnostics import train_flops
from mixopt.mixtures.sizing import expected_params
from mixopt.warehouse import Warehouse

TARGET, LOW = "target", "low"


def ladder_sizes(exp: Experiment) -> list[str]:
    """The ladder's rungs as proxy sizes, cheapest first as configured: ["ladder1", "ladder2", ...]."""
    ladder = exp.cfg.design.ladder
    return [f"ladder{i + 1}" for i in range(len(ladder.scales))] if ladder else []


def size_train(exp: Experiment, size: str) -> TrainConfig:
    """The training settings of a proxy of `size`: the swarm's, the swarm's with the low size's
    model and tokens, or a ladder rung's."""
    cfg = exp.cfg
    if size == TARGET:
        return cfg.swarm
    if size in ladder_sizes(exp):
        rung = cfg.design.ladder.scales[int(size[len("ladder"):]) - 1]
        return cfg.swarm.model_copy(update={"model": rung.model or cfg.swarm.model,
                                            "tokens": max(1, round(rung.tokens_fraction * cfg.swarm.tokens))})
    low = cfg.design.low_fidelity
    if size != LOW or low is None:
        raise ValueError(f"unknown proxy size {size!r} (configured: {[TARGET] + ([LOW] if low else [])})")
    return cfg.swarm.model_copy(update={"model": low.model or cfg.swarm.model,
                                        "tokens": low.tokens or cfg.swarm.tokens})


def train_compute(exp: Experiment, t: TrainConfig) -> float:
    """Training compute of one run with settings `t` (parameters counted as the GPT builds them)."""
    n_params, _ = expected_params(exp.vocab_size, t.seq_len, t.model.n_layer, t.model.n_embd)
    return train_flops(n_params, t.tokens)


def size_flops(exp: Experiment, size: str) -> float:
    """Training compute of one proxy of `size`."""
    return train_compute(exp, size_train(exp, size))


def fidelity_levels(exp: Experiment) -> dict[str, float]:
    """log(compute / target compute) per configured size: {"target": 0.0, "low": < 0}."""
    levels = {TARGET: 0.0}
    if exp.cfg.design.low_fidelity is not None:
        levels[LOW] = math.log(size_flops(exp, LOW) / size_flops(exp, TARGET))
    return levels


def extra_runs(exp: Experiment, design: list[tuple[str, list[float]]],
               sizes: dict[str, str]) -> list[tuple[str, list[float], int, str]]:
    """(label, weights, seed, size) of the transfer and seed-repeat proxies for these design
    mixtures (`sizes`: the size each design mixture trains at; absent = target)."""
    d, base = exp.cfg.design, exp.cfg.swarm.seed
    out = []
    if d.low_fidelity is not None:
        for mid, w in design[: d.transfer_mixtures]:
            out.append(("transfer", w, base, LOW if sizes.get(mid, TARGET) == TARGET else TARGET))
    at_target = [(mid, w) for mid, w in design if sizes.get(mid, TARGET) == TARGET]
    for _mid, w in at_target[: d.noise_mixtures]:
        out += [("seed_repeat", w, base + i, TARGET) for i in range(1, d.noise_seeds + 1)]
    anchors = anchor_proxies(exp) if d.anchor_proxies else {}
    for name, w in anchors.items():
        out.append((f"anchor:{name}", w, base, TARGET))
        out += [("seed_repeat", w, base + i, TARGET) for i in range(1, d.noise_seeds + 1)]
    rungs = [w for _mid, w in at_target[: d.ladder.mixtures]] + list(anchors.values()) if d.ladder else []
    for size in ladder_sizes(exp):
        out += [("ladder", w, base, size) for w in rungs]
    return out


def anchor_proxies(exp: Experiment) -> dict[str, list[float]]:
    """The anchors as proxies: the static built-ins within the proxies' caps, and the user's."""
    return exp.anchor_mixtures(exp.proxy_caps(), exp.proxy_budget())


def n_extra_runs(exp: Experiment) -> int:
    """How many transfer and seed-repeat proxies a full swarm plans (for progress totals)."""
    d, n = exp.cfg.design, exp.cfg.swarm.n_proxies
    n_anchors = len(exp.static_builtins()) + len(d.anchors) if d.anchor_proxies else 0
    ladder = len(ladder_sizes(exp)) * (min(d.ladder.mixtures, n) + n_anchors) if d.ladder else 0
    transfer = min(d.transfer_mixtures, n) if d.low_fidelity is not None else 0
    return transfer + min(d.noise_mixtures, n) * d.noise_seeds + n_anchors * (1 + d.noise_seeds) + ladder


def acquire_multi_fidelity(exp: Experiment, wh: Warehouse, caps: np.ndarray, n: int,
                           seed: int) -> list[tuple[np.ndarray, str]]:
    """One multi-fidelity round: (mixture, size) pairs chosen by Thompson sampling at the target size
    and information per cost (`next_batch(..., fidelity=...)`) over every finished proxy of both sizes."""
    from mixopt.mixtures.hierarchy import frozen_only
    from mixopt.mixtures.sequential import next_batch

    levels = fidelity_levels(exp)
    rows = wh.proxy_observations(exp.experiment_id)
    k = len(exp.domains)
    X = np.array([r["weights"] for r in rows], dtype=float).reshape(len(rows), k)
    y = np.array([r["target_loss"] for r in rows], dtype=float)
    f = np.array([levels[r["size"]] for r in rows], dtype=float)
    lv = [levels[LOW], levels[TARGET]]
    d = exp.cfg.design
    prior = exp.prior
    h = frozen_only(exp.hierarchy())  # frozen topics: the GP and its candidates live in the reduced space
    if h is not None:
        X, prior, caps = h.reduce(X), h.reduce(prior), h.reduced_caps(caps)
    r = X.shape[1]
    batch = next_batch(X, y, prior, caps, n, seed=seed, method="thompson", fidelity=f, fidelity_levels=lv,
                       costs=[math.exp(v) for v in lv], concentration_min=d.concentration_min,
                       concentration_max=d.concentration_max)
    return [(b[:r] if h is None else h.expand(b[:r]), TARGET if b[r] == levels[TARGET] else LOW) for b in batch]
