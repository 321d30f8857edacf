"""The scale gate (law vs its level regressor alone, leave-largest-scale-out) and the transfer variance."""

import numpy as np
import pytest

from mixopt.mixtures.design import sample_design
from mixopt.mixtures.regressors import make_regressor
from mixopt.mixtures.scaling import Gate, bootstrap_laws, hedge, scale_gate, transfer_tau2

SCALES = (0.0, 0.5, 1.0)


def _swarm(truth, noise=0.002, seed=0, n=24, n_rung=12):
    rng = np.random.default_rng(seed)
    W = sample_design(np.full(4, 0.25), n, None, seed=seed)
    rows = [(w, s) for s in SCALES for w in (W if s == SCALES[-1] else W[:n_rung])]
    Wl, sl = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    return Wl, sl, truth(Wl, sl) + noise * rng.standard_normal(len(sl)), [str(np.round(w, 6)) for w in Wl]


def _flips(W, s):
    """Domain 0 helps small models, domain 2 large ones: a linear-in-scale ranking flip."""
    return 5.0 - 0.8 * np.sqrt(W[:, 0]) - 0.3 * np.sqrt(W[:, 2]) - (s - 1.0) * (0.1 + 0.6 * np.sqrt(W[:, 2]))


def _rebounds(W, s):
    """Domain 2's effect shrinks from the smallest to the middle scale, then comes back at the largest:
    the law's straight line extrapolates the wrong way, the middle scale's ranking is the better guide."""
    g = -np.sqrt(W[:, 2])
    strength = np.where(s == 0.0, 2.0, np.where(s == 0.5, 1.0, 2.0))
    return 5.0 - 0.2 * np.sqrt(W[:, 0]) + strength * g


def _ridge():
    from mixopt.mixtures.scaling import _Ridge

    return _Ridge()


def test_gate_picks_the_law_when_the_ranking_moves_linearly_with_scale():
    W, s, y, g = _swarm(_flips)
    gate = scale_gate(W, s, y, g, _ridge, name="ridge")
    assert gate.use_law, gate.reason
    assert gate.law.name == "scale_law[ridge]" and gate.single.name == "ridge"
    assert gate.law.regret <= gate.single.regret and gate.law.n == 24
    assert gate.law.spearman > gate.single.spearman
    assert set(gate.residuals) == {"law", "single"} and gate.residuals["law"].shape == (24,)


def test_gate_keeps_the_single_scale_regressor_when_the_law_extrapolates_wrongly():
    W, s, y, g = _swarm(_rebounds)
    gate = scale_gate(W, s, y, g, lambda: make_regressor("linear", 0), name="linear")
    assert not gate.use_law, gate.reason
    assert gate.law.regret > gate.single.regret
    assert "regret@1" in gate.reason


def test_gate_needs_three_scales_to_test_the_law():
    W, s, y, g = _swarm(_flips)
    two = s > 0
    gate = scale_gate(W[two], s[two], y[two], np.asarray(g)[two], _ridge)
    assert not gate.use_law and gate.law is None and gate.single is not None
    assert "fewer than 3" in gate.reason
    one = s == 1.0
    assert not scale_gate(W[one], s[one], y[one], None, _ridge).use_law


def test_transfer_tau2_is_the_gain_error_per_unit_tv_net_of_noise():
    Wm = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    r = np.array([0.1, -0.1, 0.0])
    gate = Gate(True, "", None, None, {"law": r, "single": r + 7.0}, Wm, np.ones(3), 0.0)
    # pairs: (0,1) q=0.04 d=1; (0,2) q=0.01 d=0.5; (1,2) q=0.01 d=0.5 -> mean q 0.02 / mean d 2/3
    assert transfer_tau2(gate) == pytest.approx(0.02 / (2 / 3))
    assert transfer_tau2(gate, "single") == pytest.approx(transfer_tau2(gate))  # a common offset cancels
    noisy = Gate(True, "", None, None, {"law": r}, Wm, np.array([2.0, 2.0, 2.0]), 0.01)
    assert transfer_tau2(noisy) == pytest.approx((0.02 - 0.01) / (2 / 3))
    assert transfer_tau2(Gate(True, "", None, None, {"law": r}, Wm, np.ones(3), 1.0)) == 0.0
    assert transfer_tau2(Gate(True, "", None, None, {}, Wm, np.ones(3), 0.0)) == 0.0


def test_noise_variance_is_pooled_over_repeated_mixtures_at_the_largest_scale():
    W, s, y, g = _swarm(_flips, noise=0.0)
    rep = s == 1.0
    W2, s2, g2 = np.vstack([W, W[rep]]), np.r_[s, s[rep]], list(g) + list(np.asarray(g)[rep])
    y2 = np.r_[y + 0.0, y[rep] + 0.02]  # each top mixture measured twice, 0.02 apart
    gate = scale_gate(W2, s2, y2, g2, _ridge)
    assert gate.noise_var == pytest.approx(0.0002)  # (0.01^2 * 2) / 1 per mixture
    assert np.all(gate.counts == 2)


def test_the_hedge_adds_the_transfer_variance_and_it_can_hold_the_proposal_back():
    start, opt = np.full(4, 0.25), np.array([0.1, 0.1, 0.7, 0.1])
    W, s, y, g = _swarm(_flips)
    laws = bootstrap_laws(W, s, y, g, B=20, seed=1)
    plain = hedge(start, opt, laws, s_final=2.0, kappa=1.0)
    with_t = hedge(start, opt, laws, s_final=2.0, kappa=1.0, transfer_tau2=1e-3)
    for a, b in zip(plain.path, with_t.path):
        tv = 0.5 * np.abs(((1 - a["lam"]) * start + a["lam"] * opt) - start).sum()
        assert b["gain_sd"] == pytest.approx(np.sqrt(a["gain_sd"] ** 2 + 1e-3 * tv))
        assert b["boot_sd"] == pytest.approx(a["gain_sd"]) and b["gain"] == pytest.approx(a["gain"])
    assert with_t.transfer_sd > 0 and plain.transfer_sd == 0.0
    stuck = hedge(start, opt, laws, s_final=2.0, kappa=1.0, transfer_tau2=100.0)
    assert stuck.lam == 0.0 and np.allclose(stuck.weights, start)
