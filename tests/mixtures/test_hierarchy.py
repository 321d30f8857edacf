"""Hierarchical domains: the two-level design, frozen topic weights in the design and every proposer."""

import numpy as np
import pytest

from mixopt.mixtures.choose import choose_at_scale
from mixopt.mixtures.design import sample_design, token_caps
from mixopt.mixtures.hierarchy import Hierarchy, check_domain_names, split_name
from mixopt.mixtures.proposers import propose_best_seen, propose_exact, propose_regmix

NAMES = ["web:news", "web:forums", "web:blogs", "code:python", "code:c", "books"]
PRIOR = np.array([0.3, 0.2, 0.1, 0.15, 0.05, 0.2])
FROZEN = {"web": {"news": 0.5, "forums": 0.3, "blogs": 0.2}}


def _within(W, idx):
    W = np.atleast_2d(W)
    return W[:, idx] / W[:, idx].sum(axis=1, keepdims=True)


@pytest.mark.parametrize("bad", ["web:", ":news", "a:b:c"])
def test_malformed_names_are_refused_naming_the_field(bad):
    with pytest.raises(ValueError, match=r"corpus.domains\[1\].name: bad hierarchical domain name"):
        check_domain_names(["web:news", bad])
    assert split_name("web:news") == ("web", "news") and split_name("books") == ("books", "books")


def test_unknown_source_or_topic_is_refused():
    with pytest.raises(ValueError, match=r"design.hierarchy.sources.wiki: unknown source 'wiki'"):
        Hierarchy.from_names(NAMES, frozen={"wiki": {"x": 1.0}})
    with pytest.raises(ValueError, match=r"design.hierarchy.sources.wiki: unknown source"):
        Hierarchy.from_names(NAMES, per_source={"wiki": (0.1, 1.0)})
    with pytest.raises(ValueError, match=r"sources.web.frozen: unknown topic 'sports'"):
        Hierarchy.from_names(NAMES, frozen={"web": {"sports": 1.0}})


@pytest.mark.parametrize("s", [0.3, 4.0])
def test_source_level_dirichlet_has_its_concentration(s):
    """Source totals ~ Dirichlet(P * s * n_sources): mean P, variance P(1-P)/(s n + 1); the topic sweep
    does not change them."""
    h = Hierarchy.from_names(NAMES, source_range=(s, s), topic_range=(0.1, 0.1))
    S = h.source_totals(h.draw(PRIOR, 40_000, np.random.default_rng(0)))
    P = h.source_totals(PRIOR)[0]
    a0 = s * len(h.sources)
    np.testing.assert_allclose(S.mean(axis=0), P, atol=0.01)
    np.testing.assert_allclose(S.var(axis=0), P * (1 - P) / (a0 + 1), rtol=0.08)


@pytest.mark.parametrize("t", [0.3, 4.0])
def test_topic_level_dirichlet_has_its_own_concentration(t):
    """Within web: Dirichlet(q * t * 3) around the prior's within-source proportions, whatever the
    source sweep is; a per-source sweep overrides the topic sweep for its source only."""
    h = Hierarchy.from_names(NAMES, source_range=(50.0, 50.0), topic_range=(100.0, 100.0),
                             per_source={"web": (t, t)})
    W = h.draw(PRIOR, 40_000, np.random.default_rng(1))
    web, code = h.members(0), h.members(1)
    q = PRIOR[web] / PRIOR[web].sum()
    T = _within(W, web)
    np.testing.assert_allclose(T.mean(axis=0), q, atol=0.01)
    np.testing.assert_allclose(T.var(axis=0), q * (1 - q) / (t * 3 + 1), rtol=0.08)
    qc = PRIOR[code] / PRIOR[code].sum()  # code keeps the (tight) topic sweep
    np.testing.assert_allclose(_within(W, code).var(axis=0), qc * (1 - qc) / (100 * 2 + 1), rtol=0.1)


def test_design_keeps_frozen_topics_exactly_and_respects_caps_and_min_weight():
    h = Hierarchy.from_names(NAMES, frozen=FROZEN)
    caps = token_caps(np.array([30, 20, 10, 15, 5, 20]) * 1e3, 1e5, 1.5)  # code:c capped at 0.075
    W = sample_design(PRIOR, 40, caps, seed=3, hierarchy=h, min_weight=0.01)
    assert W.shape == (40, 6)
    np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-9)
    assert np.all(W <= caps + 1e-9)
    web = h.members(0)
    on = W[:, web].sum(axis=1) > 0
    np.testing.assert_allclose(_within(W[on], web), np.tile([0.5, 0.3, 0.2], (on.sum(), 1)), atol=1e-9)
    free = W[:, h.free_mask]
    assert np.all((free == 0) | (free >= 0.01 - 1e-9))
    assert len({tuple(np.round(r, 4)) for r in W}) == 40
    np.testing.assert_array_equal(W, sample_design(PRIOR, 40, caps, seed=3, hierarchy=h, min_weight=0.01))


def test_design_with_tight_caps_projects_and_still_keeps_the_freeze():
    h = Hierarchy.from_names(NAMES, frozen=FROZEN)
    caps = np.array([0.2, 0.2, 0.2, 0.3, 0.3, 0.3])  # web total <= 0.4 through news' cap / 0.5
    W = sample_design(PRIOR, 30, caps, seed=0, hierarchy=h)
    assert np.all(W <= caps + 1e-9)
    assert np.all(W[:, h.members(0)].sum(axis=1) <= 0.4 + 1e-9)
    assert all(h.respects(w) for w in W)


def test_flat_design_unchanged_without_hierarchy():
    a = sample_design(PRIOR, 10, None, seed=5)
    b = sample_design(PRIOR, 10, None, seed=5, hierarchy=None)
    np.testing.assert_array_equal(a, b)
    h = Hierarchy.from_names(NAMES)  # unfrozen two-level draws: a different design, same feasibility
    c = sample_design(PRIOR, 10, None, seed=5, hierarchy=h)
    assert not np.allclose(a, c) and np.allclose(c.sum(axis=1), 1.0)


def test_infeasible_freeze_is_a_clear_error():
    h = Hierarchy.from_names(NAMES, frozen=FROZEN)
    caps = np.array([0.01, 1, 1, 0.1, 0.1, 0.1])  # web may take 0.02 only, the rest 0.3
    with pytest.raises(ValueError, match="frozen topic weights"):
        h.reduced_caps(caps)


class _Linear:
    """A loss that prefers blogs strongly (so a free proposer would move web's topic mix)."""

    coef = np.array([1.0, 0.8, -2.0, 0.5, 0.6, 0.2])

    def fit(self, X, y):
        return self

    def predict(self, W):
        return np.asarray(W) @ self.coef


def test_every_proposer_keeps_frozen_topics():
    h = Hierarchy.from_names(NAMES, frozen=FROZEN)
    caps = np.full(6, 0.6)
    model = _Linear()
    free = propose_regmix(model, PRIOR, caps, n_samples=3000, top_k=20)
    assert not h.respects(free.weights, tol=1e-3)  # the freeze is what keeps web's mix
    for prop in (propose_regmix(model, PRIOR, caps, n_samples=3000, top_k=20, hierarchy=h),
                 propose_exact(model, PRIOR, caps, n_candidates=2000, hierarchy=h)):
        w = prop.weights
        assert h.respects(w), prop.method
        assert np.all(w <= caps + 1e-9) and abs(w.sum() - 1) < 1e-9
        assert prop.predicted == pytest.approx(float(model.predict(w[None])[0]))
        assert prop.details["frozen_sources"] == ["web"]
    X = np.vstack([free.weights, h.expand(h.reduce(PRIOR))])
    best = propose_best_seen(X, np.array([0.0, 1.0]), caps, hierarchy=h)  # the better row breaks the freeze
    assert best.details["index"] == 1 and h.respects(best.weights)


def test_choose_at_scale_hedge_and_bootstrap_keep_frozen_topics():
    h = Hierarchy.from_names(NAMES, frozen=FROZEN)
    rng = np.random.default_rng(0)
    W = sample_design(PRIOR, 24, None, seed=1, hierarchy=h)
    y = W @ _Linear.coef + rng.normal(0, 0.01, len(W))
    from mixopt.mixtures.regressors import make_regressor

    anchors = {"natural": PRIOR, "stratified": np.full(6, 1 / 6)}  # neither keeps web's frozen mix
    c = choose_at_scale(W, np.zeros(len(W)), y, [str(i) for i in range(len(W))], lambda: make_regressor("linear", 0),
                        PRIOR, np.ones(6), anchors, 0.0, n_samples=2000, top_k=20, B=8, boot_samples=500,
                        hierarchy=h)
    assert h.respects(c.weights) and h.respects(c.raw.weights)
    assert all(h.respects(p) for p in c.boot.proposals)
