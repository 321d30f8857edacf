"""Aioli's online mixing law (Chen et al., 2024), as pure numpy.

Aioli models one round of training on mixture ``p`` (over ``k`` domains) with the linear dynamic
mixing law ``L_i(after) = L_i(before) - sum_j A_ij p_j``: **row i of A says how training on each
domain j lowers domain i's held-out loss** (column j: what training on domain j does to every loss).

LearnParams estimates A once per round. It visits the domains (in ``lp_rounds`` random orders) and,
for a visited domain j, trains a few steps on the smoothed one-hot mixture ``W[j]`` (weight ``f`` on
j, ``(1 - f) / (k - 1)`` on each other domain) and measures the loss decrease, a vector over the k
losses, stored as **column j** of ``delta``. Under the law, column j is ``A @ W[j]``, so

    delta = A @ W.T        (delta_ij = sum_l A_il W_jl)

and each row of A solves ``W @ A[i] = delta[i]``: ``A = solve(W, delta.T).T`` (:func:`solve_A`).
A is then normalised (:func:`normalise_A`: shifted by its minimum if that is negative, divided by
the sum of its entries) and the proportions take an exponentiated-gradient step towards domains
whose columns are large, i.e. whose training lowers the losses most (:func:`update_proportions`):

    p_j  proportional to  p_prev_j * exp(eta * sum_i A_ij).

:func:`ema_A` and :func:`proportions_from_ema` give the EMA variant (p computed from uniform with
an exponential moving average of A). :func:`visit_orders` and :func:`plan_rounds` lay out the
seeded LearnParams visits and the rounds of a run. No deep-learning imports here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

ArrayLike = Sequence[float] | np.ndarray


def smoothed_one_hot(k: int, f: float) -> np.ndarray:
    """The k x k matrix W whose row j is LearnParams' mixture for domain j.

    ``W[j, j] = f`` and ``W[j, l] = (1 - f) / (k - 1)`` for l != j, so every row is on the simplex.
    W is invertible unless ``f == 1/k`` (then every row is uniform); that, and ``f`` outside
    ``(0, 1]``, is a ValueError. ``k == 1`` gives ``[[1.0]]``.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not 0.0 < f <= 1.0:
        raise ValueError(f"one_hot_factor must be in (0, 1], got {f}")
    if k == 1:
        return np.ones((1, 1))
    if abs(f - 1.0 / k) < 1e-9:
        raise ValueError(f"one_hot_factor {f} equals 1/k for k={k}: every LearnParams mixture is uniform")
    W = np.full((k, k), (1.0 - f) / (k - 1))
    np.fill_diagonal(W, f)
    return W


def solve_A(delta: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Recover A from LearnParams' loss decreases.

    ``delta[i, j]`` is the decrease of domain i's loss while training on mixture ``W[j]`` (averaged
    over the LearnParams rounds). Solves ``W @ A[i] = delta[i]`` for every row i, i.e.
    ``A = (W^-1 @ delta.T).T``, which inverts ``delta = A @ W.T``.
    """
    delta = np.asarray(delta, dtype=float)
    W = np.asarray(W, dtype=float)
    if delta.ndim != 2 or delta.shape[0] != delta.shape[1] or W.shape != delta.shape:
        raise ValueError(f"delta and W must both be k x k, got {delta.shape} and {W.shape}")
    if not np.all(np.isfinite(delta)):
        raise ValueError("delta must be finite")
    return np.linalg.solve(W, delta.T).T


def normalise_A(A: np.ndarray) -> np.ndarray:
    """Shift A by its minimum if that is negative, then divide by the sum of its entries.

    The result is non-negative and sums to 1; an A that is all equal after the shift (sum 0), or
    not finite, gives all zeros, which leaves the proportions unchanged.
    """
    A = np.asarray(A, dtype=float)
    if not np.all(np.isfinite(A)):
        return np.zeros_like(A)
    m = A.min()
    if m < 0:
        A = A - m
    total = A.sum()
    if total <= 0:
        return np.zeros_like(A)
    return A / total


def _softmax(logits: np.ndarray) -> np.ndarray:
    finite = np.isfinite(logits)
    out = np.zeros_like(logits)
    z = logits[finite] - logits[finite].max()
    out[finite] = np.exp(z) / np.exp(z).sum()
    return out


def _check_mixture(p: ArrayLike, k: int) -> np.ndarray:
    v = np.asarray(p, dtype=float).ravel()
    if v.shape != (k,) or not np.all(np.isfinite(v)) or np.any(v < 0) or v.sum() <= 0:
        raise ValueError(f"expected {k} finite non-negative weights with a positive sum, got {v.tolist()}")
    return v / v.sum()


def update_proportions(p_prev: ArrayLike, A: np.ndarray, eta: float,
                       loss_weights: ArrayLike | None = None) -> np.ndarray:
    """One exponentiated-gradient step: ``p_j ∝ p_prev_j * exp(eta * sum_i w_i A_ij)``.

    ``loss_weights`` (default: all ones) weights the domains' losses (the rows of A); a domain with
    ``p_prev_j == 0`` stays at 0 (the update is multiplicative). Returns a point on the simplex.
    """
    A = np.asarray(A, dtype=float)
    k = A.shape[0]
    p = _check_mixture(p_prev, k)
    w = np.ones(k) if loss_weights is None else np.asarray(loss_weights, dtype=float)
    gain = w @ A  # sum_i w_i A_ij, one value per trained domain j
    with np.errstate(divide="ignore"):
        logits = np.log(p) + eta * gain
    return _softmax(logits)


def ema_A(A_prev: np.ndarray | None, A_new: np.ndarray, decay: float) -> np.ndarray:
    """Exponential moving average ``decay * A_prev + (1 - decay) * A_new`` (A_new if no A_prev)."""
    if not 0.0 < decay < 1.0:
        raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
    A_new = np.asarray(A_new, dtype=float)
    if A_prev is None:
        return A_new.copy()
    return decay * np.asarray(A_prev, dtype=float) + (1.0 - decay) * A_new


def proportions_from_ema(A_ema: np.ndarray, eta: float, loss_weights: ArrayLike | None = None) -> np.ndarray:
    """The EMA variant's proportions: one exponentiated-gradient step from uniform with ``A_ema``."""
    k = np.asarray(A_ema).shape[0]
    return update_proportions(np.full(k, 1.0 / k), A_ema, eta, loss_weights)


def visit_orders(k: int, lp_rounds: int, seed: int, round_index: int = 0) -> list[int]:
    """LearnParams' visiting sequence for one Aioli round: ``lp_rounds`` random permutations of
    ``range(k)``, concatenated. Deterministic in ``(seed, round_index)``; each domain appears
    exactly ``lp_rounds`` times."""
    if k < 1 or lp_rounds < 1:
        raise ValueError(f"k and lp_rounds must be at least 1, got {k} and {lp_rounds}")
    rng = np.random.default_rng([int(seed), int(round_index), 0xA101])
    return [int(j) for _ in range(lp_rounds) for j in rng.permutation(k)]


@dataclass(frozen=True)
class Round:
    """One Aioli round: steps ``[begin, lp_end)`` are LearnParams, ``[lp_end, end)`` train on p."""

    index: int  # 1-based
    begin: int
    lp_end: int
    end: int


def plan_rounds(total_steps: int, start: int, update_steps: int, lp_steps_per_round: int) -> list[Round]:
    """Lay out Aioli's rounds over the steps ``[start, total_steps)``.

    A round lasts ``update_steps`` steps, or ``lp_steps_per_round + 1`` if LearnParams alone would
    fill it (so every round trains at least one step on its updated mixture). The last round is
    cut at ``total_steps``; steps left that cannot hold a LearnParams plus one step run no round
    (they keep the last mixture). Steps before ``start`` (restricted mode) belong to no round.
    """
    if update_steps < 1 or lp_steps_per_round < 0 or not 0 <= start <= total_steps:
        raise ValueError(f"bad round plan: total {total_steps}, start {start}, "
                         f"update_steps {update_steps}, LearnParams steps {lp_steps_per_round}")
    length = max(update_steps, lp_steps_per_round + 1)
    rounds, begin = [], start
    while begin + lp_steps_per_round + 1 <= total_steps:
        lp_end = begin + lp_steps_per_round
        end = min(begin + length, total_steps)
        rounds.append(Round(len(rounds) + 1, begin, lp_end, end))
        begin = end
    return rounds
