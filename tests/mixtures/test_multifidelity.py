"""MultiFidelityGP: learns from both sizes, predicts at the target size, hides held-out mixtures."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mixopt.mixtures.cv import cross_validate
from mixopt.mixtures.design import sample_design
from mixopt.mixtures.multifidelity import MultiFidelityGP

OPT = np.array([0.5, 0.3, 0.2])


def loss(X):
    return 3.0 + 2.0 * np.sum((np.sqrt(X) - np.sqrt(OPT)) ** 2, axis=1)


def test_predicts_at_the_target_size_not_the_cheap_one():
    prior = np.full(3, 1 / 3)
    X_low = sample_design(prior, 30, None, seed=0)
    X = sample_design(prior, 6, None, seed=1)
    y_low = loss(X_low) + 1.0  # the small proxies are uniformly worse by one nat
    with threadpool_limits(1):
        m = MultiFidelityGP(X_low, y_low, level_low=-3.0, seed=0).fit(X, loss(X))
        X_test = sample_design(prior, 40, None, seed=2)
        pred = m.predict(X_test)
    assert m.n_low_ == 30
    assert abs(np.mean(pred) - np.mean(loss(X_test))) < 0.3  # at the target's level, not +1
    assert np.corrcoef(pred, loss(X_test))[0, 1] > 0.8


def test_cv_folds_drop_the_cheap_rows_of_held_out_mixtures():
    prior = np.full(3, 1 / 3)
    X = sample_design(prior, 8, None, seed=3)
    X_low = np.vstack([X[:5], sample_design(prior, 4, None, seed=4)])  # 5 transfer mixtures + 4 low-only
    y_low = loss(X_low) + 0.5
    with threadpool_limits(1):
        m = MultiFidelityGP(X_low, y_low, -2.0, X_all=X).fit(X[2:], loss(X[2:]))  # rows 0, 1 held out
        assert m.n_low_ == 9 - 2
        full = MultiFidelityGP(X_low, y_low, -2.0, X_all=X).fit(X, loss(X))
        assert full.n_low_ == 9
        rep = cross_validate(lambda: MultiFidelityGP(X_low, y_low, -2.0, X_all=X), X, loss(X), folds=4)
    assert rep.n == 8 and np.all(np.isfinite(rep.oof_pred))


def test_levels_must_be_ordered():
    with pytest.raises(ValueError, match="level_low"):
        MultiFidelityGP(np.zeros((0, 3)), np.zeros(0), level_low=0.0)
