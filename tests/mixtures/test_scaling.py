"""The scale-aware law: extrapolation across scales, leave-largest-scale-out scores, the hedge."""

import numpy as np
import pytest

from mixopt.mixtures.design import sample_design
from mixopt.mixtures.regressors import make_regressor
from mixopt.mixtures.scaling import ScaleAwareLaw, bootstrap_laws, hedge, leave_largest_scale_out


def _truth(W: np.ndarray, s: np.ndarray) -> np.ndarray:
    """A loss whose ranking flips with scale: domain 0 helps small models, domain 2 large ones."""
    z = s - 1.0
    return 5.0 - 0.8 * np.sqrt(W[:, 0]) - 0.3 * np.sqrt(W[:, 2]) - z * (0.1 + 0.6 * np.sqrt(W[:, 2]))


def _ladder(noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    W = sample_design(np.full(4, 0.25), 24, None, seed=seed)
    scales = [0.0, 0.5, 1.0]
    rows = [(w, s) for s in scales for w in (W if s == 1.0 else W[:10])]
    Wl = np.array([r[0] for r in rows])
    sl = np.array([r[1] for r in rows])
    y = _truth(Wl, sl) + noise * rng.standard_normal(len(sl))
    groups = [str(np.round(w, 6)) for w in Wl]
    return W, Wl, sl, y, groups


def test_the_law_extrapolates_a_ranking_that_flips_with_scale():
    W, Wl, sl, y, groups = _ladder(noise=0.002)
    law = ScaleAwareLaw().fit(Wl, sl, y, groups)
    s_final = 2.0
    pred = law.predict_at(W, s_final)
    truth = _truth(W, np.full(len(W), s_final))
    assert np.corrcoef(pred, truth)[0, 1] > 0.95
    # the proxies' own ranking (at the largest proxy scale) is a worse guide to the final scale
    proxy = _truth(W, np.full(len(W), 1.0))
    from scipy.stats import spearmanr
    assert spearmanr(pred, truth)[0] > spearmanr(proxy, truth)[0] + 0.1


def test_leave_largest_scale_out_scores_the_law_and_single_scale_regressors():
    _, Wl, sl, y, groups = _ladder(noise=0.002)
    singles = {"linear": lambda: make_regressor("linear", 0)}
    checks = {c.name: c for c in leave_largest_scale_out(Wl, sl, y, groups, singles)}
    assert set(checks) == {"scale_law", "linear", "scale_law[linear]"}
    assert checks["scale_law"].n == 24
    assert checks["scale_law"].spearman > 0.9
    assert checks["scale_law"].regret >= 0
    with pytest.raises(ValueError, match=">= 3 scales"):
        leave_largest_scale_out(Wl[sl > 0], sl[sl > 0], y[sl > 0])


def test_one_scale_only_is_the_base_regressor_and_too_few_top_rows_is_refused():
    W, Wl, sl, y, groups = _ladder(noise=0.0)
    top = sl == 1.0
    law = ScaleAwareLaw().fit(Wl[top], sl[top], y[top])
    assert law.n_scales_ == 1 and np.allclose(law.slope(W), 0.0)
    assert np.allclose(law.predict_at(W, 5.0), law.predict_at(W, 1.0))
    with pytest.raises(ValueError, match="largest scale"):
        ScaleAwareLaw().fit(Wl[:12], np.r_[np.zeros(10), np.ones(2)], y[:12])


def test_the_hedge_moves_only_as_far_as_the_laws_agree():
    k = 4
    start, opt = np.full(k, 0.25), np.array([0.1, 0.1, 0.7, 0.1])
    _, Wl, sl, y, groups = _ladder(noise=0.002)
    sure = hedge(start, opt, bootstrap_laws(Wl, sl, y, groups, B=30, seed=1), s_final=2.0, kappa=1.0)
    assert sure.lam > 0.5 and sure.gain > 0
    # pure noise: no real gain anywhere, so the lower-confidence gain is best at the start
    rng = np.random.default_rng(3)
    y_noise = 5.0 + 0.05 * rng.standard_normal(len(y))
    unsure = hedge(start, opt, bootstrap_laws(Wl, sl, y_noise, groups, B=30, seed=1), s_final=2.0, kappa=2.0)
    assert unsure.lam <= 0.2
    assert np.isclose(unsure.weights.sum(), 1.0)
