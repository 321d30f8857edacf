"""Bootstrap of a proposal: stable on a well-determined problem, unstable on noise, bagging within caps."""

from __future__ import annotations

import numpy as np
import pytest

from mixopt.mixtures.bootstrap import bagged_proposal, bootstrap_proposals, regmix_proposer, tv_distance
from mixopt.mixtures.regressors import LinearRegressor

K = 4
PRIOR = np.full(K, 0.25)
CAPS = np.array([0.5, 0.5, 0.6, 0.6])


def _data(noise_only: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """30 mixtures; a clear linear loss (domain 0 best, then 1) or pure noise."""
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.ones(K), size=30)
    if noise_only:
        return X, rng.normal(0.0, 1.0, size=30)
    return X, 3.0 + X @ np.array([-1.0, -0.6, 0.4, 0.8]) + rng.normal(0.0, 0.01, size=30)


def _run(noise_only: bool, seed: int = 0):
    X, y = _data(noise_only)
    proposer = regmix_proposer(PRIOR, CAPS, n_samples=2000, top_k=50, seed=1)
    return bootstrap_proposals(X, y, LinearRegressor, proposer, CAPS, B=40, seed=seed)


def test_well_determined_problem_is_stable() -> None:
    res = _run(noise_only=False)
    assert res.proposals.shape == (40, K) and res.n_failed == 0
    assert res.stability < 0.03
    assert np.all(res.upper - res.lower < 0.06)
    assert np.all(res.lower <= res.proposal + 1e-9) and np.all(res.proposal <= res.upper + 1e-9)
    assert res.proposal[0] > res.proposal[2] and res.proposal[1] > res.proposal[3]


def test_pure_noise_is_unstable() -> None:
    res = _run(noise_only=True)
    assert res.stability > 0.15
    assert np.max(res.upper - res.lower) > 0.3


def test_bagged_proposal_within_caps_and_deterministic() -> None:
    res = _run(noise_only=True)
    for w in (res.bagged, *res.proposals):
        assert w.sum() == pytest.approx(1.0) and np.all(w >= 0) and np.all(w <= CAPS + 1e-9)
    np.testing.assert_allclose(res.bagged, _run(noise_only=True).bagged)  # same seed, same answer
    assert not np.allclose(res.bagged, _run(noise_only=True, seed=5).bagged)
    model = LinearRegressor().fit(*_data(noise_only=True))
    prop = bagged_proposal(res, model, CAPS)
    assert prop.method == "bagged" and prop.details["stability_tv"] == pytest.approx(res.stability)
    np.testing.assert_allclose(prop.weights, res.bagged)
    assert np.isfinite(prop.predicted) and len(prop.caps_active) == K


def test_tv_distance() -> None:
    assert tv_distance([1, 0, 0], [0, 1, 0]) == pytest.approx(1.0)
    assert tv_distance([0.5, 0.5], [0.5, 0.5]) == 0.0
    np.testing.assert_allclose(tv_distance(np.eye(3), [1, 0, 0]), [0, 1, 1])


def _smooth_model(u: np.ndarray):
    class Model:
        def predict(self, W):
            return -np.sqrt(np.clip(np.asarray(W, float), 0, None)) @ np.sqrt(u)

    return Model()


def test_candidate_pool_is_regmix_with_a_full_screen_and_matches_it_cheaply() -> None:
    from mixopt.mixtures.bootstrap import CandidatePool
    from mixopt.mixtures.proposers import propose_regmix

    model = _smooth_model(np.array([0.1, 0.5, 0.3, 0.1]))
    full = propose_regmix(model, PRIOR, CAPS, n_samples=20_000, top_k=50, seed=3).weights
    exact = CandidatePool(PRIOR, CAPS, n_samples=20_000, top_k=50, seed=3, n_screen=10**9)
    np.testing.assert_array_equal(exact.propose(model), full)
    cheap = CandidatePool(PRIOR, CAPS, n_samples=20_000, top_k=50, seed=3, n_screen=1000)
    w = cheap.propose(model)
    assert tv_distance(w, full) < 0.005
    assert cheap.last_scored < len(cheap.F) / 3
    coarse = propose_regmix(model, PRIOR, CAPS, n_samples=1000, top_k=50, seed=3).weights
    assert tv_distance(coarse, full) > 5 * tv_distance(w, full)  # the same budget, sampled, is coarser
    assert w.sum() == pytest.approx(1.0) and np.all(w <= CAPS + 1e-9)
