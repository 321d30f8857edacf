"""Tests for the mixture regressors (linear, LightGBM, mixing law, GP, auto)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessRegressor

from mixopt.mixtures.auto import AutoRegressor
from mixopt.mixtures.cv import cross_validate
from mixopt.mixtures.gp import GPRegressor, gp_transform, neg_log_ml
from mixopt.mixtures.mixing_law import MixingLawRegressor
from mixopt.mixtures.regressors import REGRESSOR_NAMES, make_regressor


def test_mixing_law_recovers_parameters() -> None:
    rng = np.random.default_rng(1)
    k, n = 4, 200
    c, b, t = 2.0, 0.3, np.array([-2.0, -1.0, 0.5, 1.0])
    X = rng.dirichlet(np.ones(k), size=n)
    y = c + np.exp(b + X @ t) + rng.normal(0.0, 0.01, size=n)
    y[:8] += 0.5  # a few outliers: the Huber loss should shrug them off
    law = MixingLawRegressor(ridge=0.0).fit(X, y)
    # On the simplex only b + t_i (the log reducible loss at vertex i) is identifiable.
    assert law.c_ == pytest.approx(c, abs=0.05)
    np.testing.assert_allclose(law.b_ + law.t_, b + t, atol=0.05)
    clean = c + np.exp(b + X @ t)
    assert np.sqrt(np.mean((law.predict(X) - clean) ** 2)) < 0.01


@pytest.mark.parametrize("name", ["linear", "lightgbm", "mixing_law", "mixing_law_sqrt", "gp"])
def test_regressors_beat_constant_in_cv(name: str, smooth_data) -> None:
    X, y = smooth_data
    report = cross_validate(name, X, y, folds=5, seed=0)
    assert report.n == len(y) and report.oof_pred.shape == y.shape
    assert report.r2 > 0.3  # a constant predictor has CV R^2 <= 0
    assert report.spearman > 0.6
    if name in ("gp", "mixing_law_sqrt"):
        assert report.spearman > 0.95


def test_gp_predict_std_and_others_none(smooth_data) -> None:
    X, y = smooth_data
    gp = make_regressor("gp").fit(X, y)
    std = gp.predict_std(X[:5])
    assert std is not None and std.shape == (5,) and np.all(std > 0)
    far = np.array([[1.0, 0.0, 0.0, 0.0]])
    assert gp.predict_std(far)[0] >= std.min()
    for name in ("linear", "lightgbm", "mixing_law"):
        assert make_regressor(name).fit(X, y).predict_std(X) is None


def test_gp_likelihood_matches_sklearn(smooth_data) -> None:
    X, y = smooth_data
    Z, z = gp_transform(X), (y - y.mean()) / y.std()
    rng = np.random.default_rng(0)
    for kernel in ("rbf", "matern52", "matern32"):
        gp = GPRegressor(kernel=kernel)
        theta = np.concatenate([[0.2], rng.normal(-0.5, 0.3, 4), [-3.0]])
        f, grad = neg_log_ml(theta, Z, z, kernel)
        ref = GaussianProcessRegressor(gp._kernel(theta), optimizer=None, alpha=1e-10).fit(Z, z)
        assert f == pytest.approx(-ref.log_marginal_likelihood(theta), rel=1e-8)
        h = 1e-6
        num = [(neg_log_ml(theta + h * e, Z, z, kernel)[0] - neg_log_ml(theta - h * e, Z, z, kernel)[0])
               / (2 * h) for e in np.eye(theta.size)]
        np.testing.assert_allclose(grad, num, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "auto" else n  # auto: nested CV
                                  for n in REGRESSOR_NAMES])
@pytest.mark.parametrize("n", [8, 16])
def test_every_regressor_works_with_few_runs(name: str, n: int) -> None:
    rng = np.random.default_rng(n)
    X = rng.dirichlet(np.ones(5), size=n)
    y = 3.0 + np.exp(-2.0 * np.sqrt(X[:, 0])) + rng.normal(0.0, 0.01, size=n)
    model = make_regressor(name, seed=0).fit(X, y)
    pred = model.predict(rng.dirichlet(np.ones(5), size=20))
    assert pred.shape == (20,) and np.all(np.isfinite(pred))
    assert np.all(pred > 2.0) and np.all(pred < 5.0)


def test_make_regressor_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown regressor"):
        make_regressor("xgboost")


@pytest.mark.slow  # nested CV: about 30 s here
def test_auto_choice_ignores_other_data(smooth_data) -> None:
    X, y = smooth_data
    sub = slice(0, 40)
    cands = ("linear", "mixing_law_sqrt", "gp")
    a = AutoRegressor(candidates=cands, seed=3).fit(X[sub], y[sub])
    # Other held-out data existing (and other models fitted on it) must change nothing.
    rng = np.random.default_rng(9)
    X_other = np.vstack([X, rng.dirichlet(np.ones(4), size=100)])
    AutoRegressor(candidates=cands, seed=3).fit(X_other, np.r_[y, rng.normal(size=100)])
    b = AutoRegressor(candidates=cands, seed=3).fit(X[sub].copy(), y[sub].copy())
    assert a.weights_ == b.weights_
    assert [r.name for r in a.reports_] == [r.name for r in b.reports_]
    np.testing.assert_allclose(a.predict(X[40:]), b.predict(X[40:]))
    assert all(r.n == 40 for r in a.reports_)


def test_auto_degenerate_inputs() -> None:
    X = np.random.default_rng(0).dirichlet(np.ones(3), size=6)
    a = AutoRegressor(candidates=("linear", "gp")).fit(X, np.full(6, 2.5))
    assert a.weights_ == {"gp": 1.0}
    np.testing.assert_allclose(a.predict(X), 2.5, atol=1e-6)
    a3 = AutoRegressor(candidates=("linear", "gp")).fit(X[:3], np.array([1.0, 2.0, 3.0]))
    assert a3.reports_ == [] and np.all(np.isfinite(a3.predict(X)))
