"""Tests for mixopt.mixtures.aioli: W, recovering a known A, normalisation, the update, schedules."""

from __future__ import annotations

import numpy as np
import pytest

from mixopt.mixtures.aioli import (
    Round,
    ema_A,
    normalise_A,
    plan_rounds,
    proportions_from_ema,
    smoothed_one_hot,
    solve_A,
    update_proportions,
    visit_orders,
)


def _on_simplex(p: np.ndarray) -> bool:
    return bool(np.all(p >= 0) and abs(p.sum() - 1.0) < 1e-9)


def _learnparams(A: np.ndarray, W: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Simulate LearnParams under the linear law: training on W[j] lowers loss i by (A @ W[j])_i;
    column j of delta holds that decrease (plus noise)."""
    k = len(A)
    delta = np.zeros((k, k))
    for j in range(k):
        before = np.full(k, 5.0)
        after = before - A @ W[j] + rng.normal(0.0, noise, size=k)
        delta[:, j] = before - after
    return delta


def test_smoothed_one_hot_rows_are_mixtures() -> None:
    W = smoothed_one_hot(4, 0.7)
    assert np.allclose(W.sum(axis=1), 1.0) and np.allclose(np.diag(W), 0.7)
    assert np.allclose(W[0, 1:], 0.1)
    assert np.array_equal(smoothed_one_hot(1, 0.5), [[1.0]])
    assert np.array_equal(smoothed_one_hot(3, 1.0), np.eye(3))
    with pytest.raises(ValueError, match="1/k"):
        smoothed_one_hot(4, 0.25)
    with pytest.raises(ValueError):
        smoothed_one_hot(3, 0.0)


@pytest.mark.parametrize("k,f", [(2, 0.75), (4, 0.5), (6, 0.6)])
def test_solve_A_recovers_a_known_asymmetric_A(k: int, f: float) -> None:
    rng = np.random.default_rng(k)
    A = rng.uniform(0.0, 0.2, size=(k, k))
    A[:, 0] += 0.3  # training on domain 0 helps every loss: A is far from symmetric
    W = smoothed_one_hot(k, f)
    delta = _learnparams(A, W, rng, noise=1e-5)
    est = normalise_A(solve_A(delta, W))
    assert np.allclose(est, normalise_A(A), atol=1e-3)
    assert not np.allclose(est, normalise_A(A.T), atol=1e-2)  # the orientation matters
    # averaging several noisy LearnParams rounds (what lp_rounds does) still recovers A
    noisy = np.mean([_learnparams(A, W, rng, noise=1e-3) for _ in range(4)], axis=0)
    assert np.allclose(normalise_A(solve_A(noisy, W)), normalise_A(A), atol=0.02)


def test_solve_A_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        solve_A(np.zeros((2, 3)), np.eye(2))
    with pytest.raises(ValueError):
        solve_A(np.full((2, 2), np.nan), np.eye(2))


def test_normalise_A_shifts_negative_entries_and_sums_to_one() -> None:
    A = np.array([[0.2, -0.1], [0.4, 0.0]])
    N = normalise_A(A)
    assert N.min() == pytest.approx(0.0) and N.sum() == pytest.approx(1.0)
    assert np.allclose(N, (A + 0.1) / (A + 0.1).sum())
    P = np.array([[1.0, 3.0], [0.0, 0.0]])
    assert np.allclose(normalise_A(P), P / 4)  # non-negative: only scaled
    assert np.array_equal(normalise_A(np.full((2, 2), -1.0)), np.zeros((2, 2)))
    assert np.array_equal(normalise_A(np.array([[np.inf, 0.0], [0.0, 0.0]])), np.zeros((2, 2)))


def test_update_moves_mass_to_the_domain_whose_training_lowers_losses_most() -> None:
    k = 3
    A = np.full((k, k), 0.05)
    A[:, 2] = 0.3  # training on domain 2 lowers every domain's loss the most
    p0 = np.full(k, 1 / k)
    p1 = update_proportions(p0, normalise_A(A), eta=1.0)
    assert _on_simplex(p1) and np.argmax(p1) == 2 and p1[2] > p0[2]
    assert p1[0] == pytest.approx(p1[1])
    # end to end through LearnParams: the estimated A gives the same direction
    W = smoothed_one_hot(k, 0.75)
    est = normalise_A(solve_A(_learnparams(A, W, np.random.default_rng(0), 1e-4), W))
    assert np.argmax(update_proportions(p0, est, eta=1.0)) == 2
    # a larger step moves further; repeated steps keep moving the same way
    p_big = update_proportions(p0, normalise_A(A), eta=5.0)
    assert p_big[2] > p1[2] and update_proportions(p1, normalise_A(A), 1.0)[2] > p1[2]


def test_update_is_multiplicative_and_stays_on_the_simplex() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        k = int(rng.integers(2, 7))
        p = rng.dirichlet(np.ones(k))
        A = normalise_A(rng.normal(size=(k, k)))
        q = update_proportions(p, A, eta=float(rng.uniform(0.01, 20)))
        assert _on_simplex(q)
    q = update_proportions([0.5, 0.5, 0.0], np.eye(3), eta=1.0)
    assert q[2] == 0.0 and _on_simplex(q)  # a zero weight stays zero
    assert np.allclose(update_proportions([0.2, 0.8], np.zeros((2, 2)), 1.0), [0.2, 0.8])  # A = 0: no change
    # loss weights: only domain 0's loss counts, and only training on domain 1 lowers it
    A = np.array([[0.0, 0.5], [0.5, 0.0]])
    assert update_proportions([0.5, 0.5], A, 1.0, loss_weights=[1.0, 0.0])[1] > 0.5


def test_ema_variant() -> None:
    A1, A2 = np.eye(2) / 2, np.array([[0.0, 0.5], [0.0, 0.5]])
    assert np.array_equal(ema_A(None, A1, 0.9), A1)
    assert np.allclose(ema_A(A1, A2, 0.75), 0.75 * A1 + 0.25 * A2)
    p = proportions_from_ema(A2, eta=1.0)
    assert _on_simplex(p) and p[1] > p[0]
    assert np.allclose(proportions_from_ema(A1, 1.0), [0.5, 0.5])
    with pytest.raises(ValueError):
        ema_A(A1, A2, 1.0)


def test_visit_orders_are_seeded_permutations() -> None:
    v = visit_orders(4, 3, seed=7, round_index=2)
    assert len(v) == 12 and all(sorted(v[i : i + 4]) == [0, 1, 2, 3] for i in (0, 4, 8))
    assert v == visit_orders(4, 3, seed=7, round_index=2)
    others = {tuple(visit_orders(4, 3, seed=s, round_index=r)) for s in range(3) for r in range(3)}
    assert len(others) > 1


def test_plan_rounds() -> None:
    assert plan_rounds(100, 0, 30, 8) == [
        Round(1, 0, 8, 30), Round(2, 30, 38, 60), Round(3, 60, 68, 90), Round(4, 90, 98, 100)
    ]
    assert plan_rounds(95, 0, 30, 8)[-1] == Round(3, 60, 68, 90)  # 5 steps left: no LearnParams fits
    assert plan_rounds(100, 50, 30, 8) == [Round(1, 50, 58, 80), Round(2, 80, 88, 100)]
    assert plan_rounds(40, 0, 10, 16) == [Round(1, 0, 16, 17), Round(2, 17, 33, 34)]  # LP fills a round
    assert plan_rounds(10, 0, 30, 16) == []
    with pytest.raises(ValueError):
        plan_rounds(10, 11, 5, 2)
