"""The zero-proxy prior's math (mixtures/prior.py) on planted bucket counts: recovery, ranking, caps, determinism."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from mixopt.mixtures.design import project_to_caps
from mixopt.mixtures.prior import (
    METHODS,
    bucket_distributions,
    mixture_cross_entropy,
    mixture_distance,
    prior_from_counts,
    softmax_weights,
)

B = 256


def _planted(rng, overlap: bool = False, n: int = 200_000):
    """Four domains over B buckets (disjoint quarters, or all overlapping) and target counts drawn
    70/30 from the first two domains' distributions."""
    P = np.zeros((4, B))
    for i in range(4):
        if overlap:
            P[i] = rng.dirichlet(np.full(B, 0.3))
        else:
            P[i, i * 64:(i + 1) * 64] = rng.dirichlet(np.ones(64))
    counts = np.stack([rng.multinomial(n, p) for p in P]).astype(float)
    true = 0.7 * P[0] + 0.3 * P[1]
    target = rng.multinomial(n, true).astype(float)
    return counts, target, P


@pytest.mark.parametrize("overlap", [False, True])
def test_cross_entropy_recovers_the_planted_mixture(overlap):
    counts, target, _ = _planted(np.random.default_rng(0), overlap)
    r = prior_from_counts(counts, target, ["a", "b", "c", "d"], "xent")
    assert r.weights.sum() == pytest.approx(1.0)
    assert r.weights[0] == pytest.approx(0.7, abs=0.03)
    assert r.weights[1] == pytest.approx(0.3, abs=0.03)
    assert np.all(r.weights[2:] < 0.02)  # unrelated domains get ~nothing
    assert r.details["prior_score"] <= r.score_fn(np.eye(4)).min()


def test_cross_entropy_ranks_mixtures_by_their_distance_to_the_target():
    counts, target, P = _planted(np.random.default_rng(1), overlap=True)
    r = prior_from_counts(counts, target, method="xent")
    ordered = np.array([[0.7, 0.3, 0, 0], [0.5, 0.5, 0, 0], [0.3, 0.3, 0.2, 0.2], [0.1, 0.1, 0.4, 0.4],
                        [0, 0, 0.5, 0.5]])
    assert np.all(np.diff(r.score_fn(ordered)) > 0)
    W = np.random.default_rng(2).dirichlet(np.ones(4), size=200)
    q = 0.7 * P[0] + 0.3 * P[1]
    true = -(np.log(W @ P + 1e-12) @ q)  # the population cross-entropy of each mixture on the target
    assert spearmanr(r.score_fn(W), true).statistic > 0.95


def test_the_cross_entropy_optimum_beats_every_feasible_mixture_within_caps():
    rng = np.random.default_rng(3)
    counts, target, _ = _planted(rng, overlap=True)
    caps = np.array([0.5, 1.0, 0.2, 1.0])
    r = prior_from_counts(counts, target, method="xent", caps=caps)
    assert np.all(r.weights <= caps + 1e-9) and np.all(r.weights >= 0)
    assert r.weights.sum() == pytest.approx(1.0)
    assert r.weights[0] == pytest.approx(0.5, abs=1e-6)  # the cap binds on the planted 0.7
    assert r.details["solver"] == "slsqp"
    W = np.stack([project_to_caps(w, caps) for w in rng.dirichlet(np.ones(4), size=500)])
    assert r.details["prior_score"] <= r.score_fn(W).min() + 1e-9


@pytest.mark.parametrize("method", ["js", "hellinger", "tv"])
def test_distances_rank_the_domains_and_down_weight_unrelated_ones(method):
    counts, target, _ = _planted(np.random.default_rng(4))
    r = prior_from_counts(counts, target, method=method)
    d = r.domain_scores
    assert d[0] < d[1] < min(d[2], d[3])
    assert r.weights[0] > r.weights[1] > max(r.weights[2], r.weights[3])
    assert np.all(r.weights[2:] < 0.05)
    assert r.score_fn(np.array([[0.7, 0.3, 0, 0]]))[0] < d.min()  # the planted mixture is closer than any domain
    capped = prior_from_counts(counts, target, method=method, caps=[0.4, 1, 1, 1])
    assert capped.weights[0] <= 0.4 + 1e-9 and capped.weights.sum() == pytest.approx(1.0)


def test_softmax_temperature_keeps_near_equal_distances_near_uniform():
    w, t = softmax_weights(np.array([0.47, 0.472, 0.471, 0.463]))
    assert np.all(np.abs(w - 0.25) < 0.02) and t > 0  # (the old max-min temperature gave 0.95 to one)
    w, _ = softmax_weights(np.array([0.1, 0.9, 0.9]), contrast=100.0)
    assert w[0] > 0.95
    w, t = softmax_weights(np.zeros(3))
    assert t == 0.0 and np.allclose(w, 1 / 3)


def test_distances_are_their_definitions():
    q = np.array([0.5, 0.5, 0.0])
    P = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    W = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    assert mixture_distance(W, P, q, "tv") == pytest.approx([0.0, 1.0, 0.5])
    assert mixture_distance(W, P, q, "js") == pytest.approx([0.0, 1.0, 1.5 - 0.75 * np.log2(3)])
    assert mixture_distance(W, P, q, "hellinger") == pytest.approx([0.0, 1.0, np.sqrt(1 - np.sqrt(0.5))])
    Ps = np.array([[0.5, 0.25, 0.25], [0.25, 0.25, 0.5]])
    assert mixture_cross_entropy(W[:2], Ps, q) == pytest.approx([-0.5 * np.log(0.5) - 0.5 * np.log(0.25),
                                                                 -np.log(0.25)])


def test_many_mixtures_are_scored_in_chunks_like_one_at_a_time(monkeypatch):
    import mixopt.mixtures.prior as prior

    counts, target, _ = _planted(np.random.default_rng(5), overlap=True)
    W = np.random.default_rng(6).dirichlet(np.ones(4), size=37)
    for method in METHODS:
        r = prior_from_counts(counts, target, method=method)
        whole = r.score_fn(W)
        monkeypatch.setattr(prior, "_CELLS", 3 * B)  # three mixtures per chunk
        assert np.allclose(r.score_fn(W), whole)
        assert np.allclose([r.score_fn(w[None])[0] for w in W[:5]], whole[:5])
        monkeypatch.undo()


def test_deterministic():
    counts, target, _ = _planted(np.random.default_rng(7), overlap=True)
    for method in METHODS:
        a = prior_from_counts(counts, target, method=method, caps=[0.6, 1, 1, 1])
        b = prior_from_counts(counts.copy(), target.copy(), method=method, caps=[0.6, 1, 1, 1])
        assert np.array_equal(a.weights, b.weights) and np.array_equal(a.domain_scores, b.domain_scores)


def test_bad_input_is_a_clear_error():
    counts, target, _ = _planted(np.random.default_rng(8))
    with pytest.raises(ValueError, match="unknown prior method"):
        prior_from_counts(counts, target, method="ot")
    with pytest.raises(ValueError, match="domain 2 has no features"):
        bucket_distributions(np.vstack([counts[:2], np.zeros(B)]))
    with pytest.raises(ValueError, match="target has 10 buckets"):
        prior_from_counts(counts, target[:10])
    with pytest.raises(ValueError, match="infeasible caps"):
        prior_from_counts(counts, target, caps=[0.1, 0.1, 0.1, 0.1])
    r = prior_from_counts(counts, target)
    with pytest.raises(ValueError, match="3 weights for 4 domains"):
        r.score_fn(np.ones((2, 3)))
