"""The swarm's interaction estimate on a table of mixtures -> per-domain losses from a known law."""

import numpy as np

from mixopt.mixtures.interaction import agreement, row_contrast, strongest_pairs, swarm_interaction

NAMES = ["a", "b", "c", "d"]
# log-rates of the planted law L_i(p) = 3 + exp(0.5 + T[i] . p): a and b share a language (each lowers
# the other's loss), c and d help only themselves
T = np.array([[-2.0, -1.0, 0.0, 0.0], [-1.0, -2.0, 0.0, 0.0], [0.0, 0.0, -2.0, 0.0], [0.0, 0.0, 0.0, -2.0]])


def _table(n=40, noise=0.005, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.ones(4), size=n)
    Y = np.stack([3 + np.exp(0.5 + X @ T[i]) for i in range(4)], axis=1) + rng.normal(0, noise, (n, 4))
    return X, Y


def test_the_swarm_estimate_recovers_the_planted_interaction():
    X, Y = _table()
    S = swarm_interaction(X, Y, np.full(4, 0.25))
    # exact at uniform: row a: -(T[a] - mean over b, c, d) scaled by exp(0.5 - 0.75) ~ 0.78
    scale = np.exp(0.5 + 0.25 * T.sum(1))
    expected = -np.array([[T[i, j] - np.mean([T[i, k] for k in range(4) if k != i]) for j in range(4)]
                          for i in range(4)]) * scale[:, None]
    assert np.allclose(S, expected, atol=0.03), S
    assert S[0, 1] > 0.3 and S[1, 0] > 0.3  # a and b help each other
    assert np.allclose(S[2, [0, 1, 3]], 0, atol=0.02) and np.allclose(S[3, [0, 1, 2]], 0, atol=0.02)  # helped by none
    helps, hurts = strongest_pairs(S, NAMES)
    assert {(i, j) for i, j, _ in helps} == {("a", "b"), ("b", "a")}
    assert all(j in ("c", "d") and i in ("a", "b") for i, j, _ in hurts)  # relative to the others, c, d help a, b less


def test_any_regressor_can_be_differentiated():
    from mixopt.mixtures.regressors import LinearRegressor

    X, Y = _table(n=80)
    S = swarm_interaction(X, Y, np.full(4, 0.25), regressor=LinearRegressor)
    assert S[0, 1] > 0 and S[1, 0] > 0 and S[0, 1] > S[0, 2]


def test_agreement_compares_off_diagonals_in_the_same_form():
    grad = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.1], [0.0, 0.1, 1.0]])  # absolute cosines
    c = row_contrast(grad)
    assert np.allclose(np.diag(c), 1.0) and np.isclose(c[0, 1], 0.4) and np.isclose(c[0, 2], -0.4)
    a = agreement(c, c)
    assert a.n == 6 and a.sign_agreement == 1.0 and np.isclose(a.spearman, 1.0)
    flipped = agreement(c, -c)
    assert flipped.sign_agreement == 0.0 and np.isclose(flipped.spearman, -1.0)
    assert agreement(np.full((2, 2), np.nan), c[:2, :2]).n == 0


def test_a_proposal_on_the_simplex_edge_still_gives_every_entry():
    X, Y = _table()
    S = swarm_interaction(X, Y, np.array([0.5, 0.0, 0.5, 0.0]))
    assert np.isfinite(S).all() and S[0, 1] > 0 and S[1, 0] > 0
