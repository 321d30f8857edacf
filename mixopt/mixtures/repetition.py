"""Repetition: how often a run reads each domain, and what a repetition-matched proxy reads.

A run of `T` tokens on mixture `w` reads domain `i` (`N_i` training tokens) `e_i = w_i T / N_i` times:
its epochs. The final run reads a small domain many times where a proxy of `T_p << T_f` tokens reads it
`T_p / T_f` as often, so a plain proxy never sees the diminishing returns of repetition and over-weights
small, useful domains. A repetition-matched proxy (`design.match_repetition`) draws domain `i` from a
fixed subsample of `P_i = N_i T_p / T_f` tokens instead: its epochs then equal the final run's at every
mixture. `P_i` does not depend on the mixture, so one subsample per domain and proxy size serves the
whole swarm; `models/data.py` lays it out as evenly spaced chunks of the shard (`pool_chunks`).

Pure numpy: no torch, no I/O.
"""

from __future__ import annotations

import numpy as np

CHUNK_WINDOWS = 16
"""A subsample's chunks hold about this many training windows each (evenly spaced over the shard)."""


def epochs(weights: np.ndarray, tokens: float, pool_tokens: np.ndarray) -> np.ndarray:
    """Times each domain is read by a run of `tokens` tokens on `weights` (one mixture, or rows of them)
    from pools of `pool_tokens` (the whole training shard, or a matched proxy's subsample); a domain with
    no tokens reads 0."""
    w = np.asarray(weights, dtype=float)
    pool = np.broadcast_to(np.asarray(pool_tokens, dtype=float), w.shape)
    return np.divide(w * float(tokens), pool, out=np.zeros_like(w), where=pool > 0)


def matched_pool(train_tokens: np.ndarray, run_tokens: float, final_tokens: float, window: int) -> np.ndarray:
    """Per domain, the tokens a proxy of `run_tokens` draws from so that it reads each domain as often
    as the final run of `final_tokens` does on the same mixture: `ceil(N_i * run / final)`, at least one
    training window (`window` = seq_len + 1; below that the proxy reads the domain more often than the
    final run) and at most the whole shard (a proxy at or above the final budget reads everything)."""
    n = np.asarray(train_tokens, dtype=np.int64)
    if run_tokens <= 0 or final_tokens <= 0:
        raise ValueError(f"token budgets must be positive, got run {run_tokens} and final {final_tokens}")
    ratio = min(1.0, float(run_tokens) / float(final_tokens))
    pool = np.ceil(n * ratio).astype(np.int64)
    return np.minimum(n, np.maximum(pool, int(window)))


def pool_chunks(train_tokens: int, pool_tokens: int, window: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The layout of a subsample of `pool_tokens` tokens in a shard of `train_tokens`: `(starts, lengths)`
    of evenly spaced, disjoint chunks of about `CHUNK_WINDOWS` windows each (lengths differ by at most
    one token, summing to the pool), the first at the shard's start and the last at its end. None: the
    whole shard (`pool_tokens` 0, or too close to the shard for disjoint chunks). Deterministic: a
    function of the three sizes alone."""
    if pool_tokens <= 0 or pool_tokens >= train_tokens:
        return None
    if pool_tokens < window:
        raise ValueError(f"a subsample of {pool_tokens} tokens holds no training window of {window} tokens")
    m = max(1, pool_tokens // (CHUNK_WINDOWS * window))
    lengths = np.full(m, pool_tokens // m, dtype=np.int64)
    lengths[: pool_tokens % m] += 1
    longest = int(lengths.max())
    if m * longest > train_tokens:
        return None
    starts = (np.arange(m, dtype=np.int64) * (train_tokens - longest)) // max(1, m - 1)
    return starts, lengths


R_STAR = 15.4
"""Data-constrained scaling (Muennighoff et al. 2023, R*_D ≈ 15.4): the value of repeated tokens decays
with this constant, in epochs beyond the first (4 epochs are worth about 3.7 fresh ones, 16 about 10.7)."""


def effective_epochs(e: np.ndarray, r_star: float = R_STAR) -> np.ndarray:
    """Fresh-data equivalent of reading a domain `e` times: `e` up to one epoch, then
    `1 + r_star (1 - exp(-(e - 1) / r_star))`, which saturates at `1 + r_star`."""
    e = np.asarray(e, dtype=float)
    if r_star <= 0:
        raise ValueError(f"r_star must be positive, got {r_star}")
    return np.where(e <= 1.0, e, 1.0 + r_star * -np.expm1(-(np.maximum(e, 1.0) - 1.0) / r_star))


def effective_shares(W: np.ndarray, tokens: float, pool_tokens: np.ndarray, r_star: float = R_STAR) -> np.ndarray:
    """Each mixture's weights discounted for repetition at a budget of `tokens` over pools of `pool_tokens`:
    `w_i * effective_epochs(e_i) / e_i` (the share of the budget in fresh-token equivalents; equal to `w_i`
    for a domain read at most once). Rows of `W` are mixtures."""
    W = np.atleast_2d(np.asarray(W, dtype=float))
    e = epochs(W, tokens, pool_tokens)
    ratio = np.ones_like(e)
    hot = e > 1.0
    ratio[hot] = effective_epochs(e[hot], r_star) / e[hot]
    return W * ratio
