"""Tests for mixopt.mixtures.design: caps, reference mixtures, the Dirichlet design."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixopt.mixtures.design import (
    natural_mixture,
    project_to_caps,
    sample_design,
    stratified_mixture,
    token_caps,
)


def _on_simplex(W: np.ndarray, tol: float = 1e-9) -> bool:
    W = np.atleast_2d(W)
    return bool(np.all(W >= -tol) and np.allclose(W.sum(axis=1), 1.0, atol=1e-9))


def test_token_caps_formula() -> None:
    caps = token_caps([100, 50, 10, 1000], budget_tokens=500, max_epochs=2)
    np.testing.assert_allclose(caps, [0.4, 0.2, 0.04, 1.0])


@pytest.mark.parametrize("budget,epochs", [(0, 1), (100, 0), (-1, 1)])
def test_token_caps_rejects_bad_arguments(budget: float, epochs: float) -> None:
    with pytest.raises(ValueError):
        token_caps([1, 2], budget, epochs)


def test_natural_and_stratified_respect_caps() -> None:
    tokens = np.array([100.0, 50.0, 10.0, 1.0, 1000.0])
    caps = token_caps(tokens, 500, 2)
    nat = natural_mixture(tokens, caps)
    np.testing.assert_allclose(nat, tokens / tokens.sum())  # already feasible: unchanged
    strat = stratified_mixture(5, caps)
    assert _on_simplex(strat) and np.all(strat <= caps + 1e-12)
    np.testing.assert_allclose(stratified_mixture(4), np.full(4, 0.25))


def test_project_to_caps_redistributes_proportionally() -> None:
    p = project_to_caps([0.9, 0.1, 0.0, 0.0], [0.3, 0.3, 0.3, 0.3])
    assert _on_simplex(p) and np.all(p <= 0.3 + 1e-12)
    np.testing.assert_allclose(p[:2], [0.3, 0.3])
    # Feasible input is returned as is.
    np.testing.assert_allclose(project_to_caps([0.2, 0.3, 0.5], [0.5, 0.5, 0.5]), [0.2, 0.3, 0.5])


def test_project_to_caps_infeasible() -> None:
    with pytest.raises(ValueError, match="infeasible"):
        project_to_caps([0.5, 0.5], [0.4, 0.4])


@settings(max_examples=60, deadline=None)
@given(
    w=st.lists(st.floats(0, 10), min_size=2, max_size=8),
    extra=st.lists(st.floats(0, 1), min_size=8, max_size=8),
)
def test_project_to_caps_property(w: list[float], extra: list[float]) -> None:
    k = len(w)
    caps = np.array(extra[:k])
    if caps.sum() < 1:  # make feasible: scale caps up (keeping them <= 1 works when k >= 2)
        caps = np.minimum(1.0, caps + (1.0 - caps.sum()) / k + 1e-3)
    p = project_to_caps(w, caps)
    assert _on_simplex(p)
    assert np.all(p <= np.minimum(caps, 1) + 1e-12)


def test_design_basic_invariants() -> None:
    k, n = 6, 80
    prior = np.array([0.4, 0.2, 0.2, 0.1, 0.05, 0.05])
    caps = np.array([0.5, 0.6, 0.3, 1.0, 0.2, 0.25])
    D = sample_design(prior, n, caps, seed=3, min_weight=0.01)
    assert D.shape == (n, k)
    assert _on_simplex(D)
    assert np.all(D <= caps + 1e-12)
    assert np.all((D == 0) | (D >= 0.01 - 1e-12))
    keys = {tuple(np.round(r, 4)) for r in D}
    assert len(keys) == n
    np.testing.assert_array_equal(D, sample_design(prior, n, caps, seed=3, min_weight=0.01))
    assert not np.array_equal(D, sample_design(prior, n, caps, seed=4, min_weight=0.01))


def test_design_covers_spiky_and_flat_mixtures() -> None:
    D = sample_design(np.full(5, 0.2), 300, None, seed=0)
    nonzero = (D > 0).sum(axis=1)
    assert nonzero.min() <= 2 and nonzero.max() == 5


def test_design_avoids_existing_rows() -> None:
    prior = np.full(4, 0.25)
    first = sample_design(prior, 30, None, seed=0)
    second = sample_design(prior, 30, None, seed=0, existing=first)
    a = {tuple(np.round(r, 4)) for r in first}
    b = {tuple(np.round(r, 4)) for r in second}
    assert not a & b


def test_design_tight_caps_falls_back_to_projection() -> None:
    caps = np.array([0.26, 0.26, 0.26, 0.26])  # nearly the only feasible point is uniform
    D = sample_design(np.array([0.7, 0.1, 0.1, 0.1]), 10, caps, seed=0)
    assert _on_simplex(D) and np.all(D <= caps + 1e-12)
    assert np.all((D == 0) | (D >= 0.005 - 1e-12))


def test_design_infeasible_caps_raise() -> None:
    with pytest.raises(ValueError, match="infeasible"):
        sample_design(np.full(3, 1 / 3), 5, [0.3, 0.3, 0.3], seed=0)
    with pytest.raises(ValueError, match="distinct"):  # only one feasible point exists
        sample_design(np.full(2, 0.5), 3, [0.5, 0.5], seed=0)


@settings(max_examples=25, deadline=None)
@given(
    prior=st.lists(st.floats(0.01, 1), min_size=2, max_size=7),
    cap_frac=st.floats(0.0, 1.0),
    seed=st.integers(0, 10_000),
)
def test_design_property(prior: list[float], cap_frac: float, seed: int) -> None:
    k = len(prior)
    rng = np.random.default_rng(seed)
    caps = np.minimum(1.0, rng.uniform(0.05, 1.0, k) + cap_frac)
    if caps.sum() < 1.05:
        caps = np.minimum(1.0, caps * 1.05 / caps.sum())
    D = sample_design(prior, 12, caps, seed=seed)
    assert D.shape == (12, k)
    assert _on_simplex(D)
    assert np.all(D <= caps + 1e-12)
    assert np.all((D == 0) | (D >= 0.005 - 1e-12))
    assert len({tuple(np.round(r, 4)) for r in D}) == 12


def test_policy_next_step() -> None:
    from mixopt.mixtures.policy import DesignStep, next_step

    def step(method: str, held: int, missing: int, low: bool = False) -> DesignStep:
        return next_step(method, held, missing, initial=8, round_size=2, low_fidelity=low)

    assert step("dirichlet", 4, 6) == DesignStep("sample", 6)
    assert step("sequential", 4, 6) == DesignStep("sample", 4)  # up to the initial design first
    assert step("sequential", 8, 6) == DesignStep("acquire", 2)  # then rounds of round_size
    assert step("sequential", 8, 1, low=True) == DesignStep("multi_fidelity", 1)


def test_policy_samples_around_target_and_prior() -> None:
    from mixopt.mixtures.policy import TARGET_SEED_OFFSET, sample_around_prior_and_target

    prior, target, caps = np.array([0.5, 0.3, 0.2]), np.array([0.1, 0.1, 0.8]), np.ones(3)
    kw = dict(target_fraction=0.25, concentration_min=0.1, concentration_max=5.0, min_weight=0.005)
    W = sample_around_prior_and_target(prior, target, 8, caps, 3, [], **kw)
    near_target = sample_design(target, 2, caps, seed=3 + TARGET_SEED_OFFSET, min_weight=0.005)
    np.testing.assert_array_equal(W[:2], near_target)  # the target's share first, then the prior's
    assert W.shape == (8, 3) and len({tuple(np.round(w, 4)) for w in W}) == 8
    again = sample_around_prior_and_target(prior, target, 4, caps, 3, list(W), **kw)
    assert not {tuple(np.round(w, 4)) for w in again} & {tuple(np.round(w, 4)) for w in W}
    assert sample_around_prior_and_target(prior, target, 0, caps, 3, [], **kw).shape == (0, 3)


def test_policy_drop_taken() -> None:
    from mixopt.mixtures.policy import drop_taken

    rows = [np.array([0.5, 0.5]), np.array([0.25, 0.75]), np.array([0.500001, 0.499999])]
    assert drop_taken(rows, [[0.5, 0.5]]) == [1]
