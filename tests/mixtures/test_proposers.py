"""Tests for mixopt.mixtures.proposers: feasibility and finding known optima."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixopt.mixtures.design import project_to_caps
from mixopt.mixtures.mixing_law import MixingLawRegressor
from mixopt.mixtures.proposers import (
    Proposal,
    propose_best_seen,
    propose_exact,
    propose_regmix,
)


class Bowl:
    """Synthetic loss with a known minimiser: ``1 + ||p - target||^2``."""

    name = "bowl"

    def __init__(self, target: np.ndarray) -> None:
        self.target = np.asarray(target, dtype=float)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return 1.0 + np.sum((np.atleast_2d(X) - self.target) ** 2, axis=1)


def _check(prop: Proposal, caps: np.ndarray) -> None:
    w = prop.weights
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.all(w <= caps + 1e-9)
    assert len(prop.caps_active) == len(w)
    assert np.isfinite(prop.predicted)


@settings(max_examples=20, deadline=None)
@given(
    prior=st.lists(st.floats(0.01, 1.0), min_size=2, max_size=6),
    seed=st.integers(0, 1000),
    slack=st.floats(0.0, 1.5),
)
def test_proposers_feasible_property(prior: list[float], seed: int, slack: float) -> None:
    k = len(prior)
    rng = np.random.default_rng(seed)
    caps = np.minimum(1.0, rng.uniform(0.0, 1.0, k))
    caps = np.minimum(1.0, caps * (1.0 + slack) / max(caps.sum(), 1e-9) + 1e-3)
    if caps.sum() < 1.0:
        caps = np.minimum(1.0, caps + (1.0 - caps.sum()) / k + 1e-3)
    model = Bowl(rng.dirichlet(np.ones(k)))
    _check(propose_regmix(model, prior, caps, n_samples=500, top_k=20, seed=seed), caps)
    _check(propose_exact(model, prior, caps, kl_weight=0.1, n_candidates=300, n_starts=3,
                         seed=seed), caps)
    raw = rng.dirichlet(np.ones(k), size=10)
    X = np.vstack([raw, [project_to_caps(r, caps) for r in raw]])
    best = propose_best_seen(X, model.predict(X), caps)
    _check(best, caps)
    feasible = np.all(X <= caps + 1e-6, axis=1)
    assert best.predicted == pytest.approx(model.predict(X[feasible]).min())


def test_exact_and_regmix_find_known_optimum() -> None:
    target = np.array([0.5, 0.3, 0.15, 0.05])
    model = Bowl(target)
    prior = np.full(4, 0.25)
    exact = propose_exact(model, prior, None)
    np.testing.assert_allclose(exact.weights, target, atol=1e-3)
    assert exact.predicted == pytest.approx(1.0, abs=1e-5)
    regmix = propose_regmix(model, prior, None, n_samples=20_000, top_k=50)
    assert np.abs(regmix.weights - target).sum() < 0.15
    assert regmix.method == "regmix" and regmix.regressor == "bowl"
    best = propose_best_seen(np.eye(4), model.predict(np.eye(4)))
    for prop in (exact, regmix, best):
        json.dumps(prop.details)  # recorded as JSON by the fit stage


def test_exact_respects_active_cap() -> None:
    model = Bowl(np.array([0.7, 0.1, 0.1, 0.1]))
    caps = np.array([0.4, 1.0, 1.0, 1.0])
    prop = propose_exact(model, np.full(4, 0.25), caps)
    # Constrained optimum: p0 at its cap, the rest shares the remaining 0.6 equally.
    np.testing.assert_allclose(prop.weights, [0.4, 0.2, 0.2, 0.2], atol=1e-3)
    assert prop.caps_active == [True, False, False, False]


def test_kl_weight_pulls_towards_prior() -> None:
    model = Bowl(np.array([0.9, 0.05, 0.05]))
    prior = np.array([0.2, 0.4, 0.4])
    free = propose_exact(model, prior, None, kl_weight=0.0)
    tied = propose_exact(model, prior, None, kl_weight=1.0)
    assert np.abs(tied.weights - prior).sum() < np.abs(free.weights - prior).sum()


def test_exact_with_fitted_mixing_law() -> None:
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(3), size=40)
    y = 2.0 + np.exp(0.5 - 1.0 * X[:, 0] + 0.5 * X[:, 1] + 0.2 * X[:, 2])
    law = MixingLawRegressor().fit(X, y)
    caps = np.array([0.6, 1.0, 1.0])
    prop = propose_exact(law, np.full(3, 1 / 3), caps, regressor="mixing_law")
    np.testing.assert_allclose(prop.weights, [0.6, 0.0, 0.4], atol=1e-3)
    assert prop.caps_active[0] and prop.regressor == "mixing_law"


def test_best_seen_skips_rows_over_caps() -> None:
    X = np.array([[0.9, 0.1], [0.5, 0.5], [0.3, 0.7]])
    y = np.array([1.0, 2.0, 3.0])
    prop = propose_best_seen(X, y, caps=[0.6, 1.0])
    np.testing.assert_allclose(prop.weights, [0.5, 0.5])
    assert prop.details["index"] == 1 and prop.predicted == 2.0
    with pytest.raises(ValueError, match="caps"):
        propose_best_seen(X[:1], y[:1], caps=[0.6, 1.0])


def test_regmix_tight_caps_still_feasible() -> None:
    caps = np.full(5, 0.21)
    prop = propose_regmix(Bowl(np.array([1.0, 0, 0, 0, 0])), np.full(5, 0.2), caps,
                          n_samples=1000, top_k=10)
    _check(prop, caps)
    assert prop.details["n_feasible"] >= 1


def test_the_registered_proposers_make_the_plain_proposals() -> None:
    from types import SimpleNamespace

    from mixopt.mixtures.proposers import PROPOSERS, ProposerInputs

    assert PROPOSERS.names() == ["regmix", "exact", "best_seen", "bagged"]
    assert [e.name for e in PROPOSERS if e.final_scale] == ["regmix", "bagged"]
    X = np.array([[0.2, 0.4, 0.4], [0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])
    y = np.array([3.0, 2.5, 3.5])
    opt = np.array([0.5, 0.3, 0.2])
    inp = ProposerInputs(Bowl(opt), X, y, np.ones(3) / 3, np.ones(3), seed=0, n_samples=5000, top_k=20)
    by = {name: PROPOSERS.get(name).propose(inp) for name in PROPOSERS.names()}
    assert np.allclose(by["best_seen"].weights, X[1]) and by["best_seen"].predicted == 2.5
    assert np.allclose(by["exact"].weights, opt, atol=1e-3)
    assert np.abs(by["regmix"].weights - opt).max() < 0.05
    assert np.allclose(by["bagged"].weights, by["regmix"].weights)  # without a final-scale choice: regmix
    bagged = np.array([0.4, 0.4, 0.2])
    choice = SimpleNamespace(boot=SimpleNamespace(bagged=bagged), law_predict=lambda w: float(np.sum(w)))
    prop = PROPOSERS.get("bagged").from_choice(by["regmix"], choice, np.ones(3), None)
    assert np.allclose(prop.weights, bagged) and prop.predicted == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown proposer 'argmin'; registered: regmix, exact, best_seen, bagged"):
        PROPOSERS.get("argmin")
