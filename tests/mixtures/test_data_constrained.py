"""The repetition-aware law: effective epochs, effective shares, and a regressor that predicts at the
final budget with repeated tokens discounted."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from mixopt.mixtures.data_constrained import DataConstrained, RepetitionData
from mixopt.mixtures.regressors import make_regressor
from mixopt.mixtures.repetition import R_STAR, effective_epochs, effective_shares, matched_pool

N = np.array([20_000.0, 400_000.0])  # a small domain and a big one


def test_effective_epochs_are_fresh_up_to_one_epoch_then_saturate() -> None:
    e = np.array([0.0, 0.5, 1.0, 4.0, 16.0, 1e6])
    eff = effective_epochs(e)
    assert eff[:3].tolist() == [0.0, 0.5, 1.0]
    assert eff[3] == pytest.approx(1 + R_STAR * (1 - np.exp(-3 / R_STAR)))  # 4 epochs ~ 3.73 fresh ones
    assert np.all(np.diff(eff) > 0) and eff[-1] == pytest.approx(1 + R_STAR) and np.all(eff <= np.maximum(e, 0))
    with pytest.raises(ValueError, match="r_star"):
        effective_epochs(e, r_star=0)


def test_effective_shares_discount_only_the_repeated_domain() -> None:
    w = np.array([[0.4, 0.6], [0.05, 0.95]])
    s = effective_shares(w, 240_000, N)  # small domain read 4.8 and 0.6 times; the big one < 1
    assert s[0, 0] == pytest.approx(0.4 * effective_epochs(np.array(4.8)) / 4.8) and s[0, 0] < 0.4
    np.testing.assert_allclose(s[0, 1], 0.6)
    np.testing.assert_allclose(s[1], w[1])  # nothing read twice: unchanged


def _law(pool: np.ndarray) -> DataConstrained:
    rep = RepetitionData(30_000.0, pool, 240_000.0, N, partial(make_regressor, "linear", 0))
    rng = np.random.default_rng(0)
    X = rng.dirichlet([1.0, 1.0], size=40)
    y = 3.0 - 0.5 * effective_shares(X, 30_000, pool)[:, 0]  # more of the small domain's fresh tokens: better
    return DataConstrained(rep).fit(X, y)


def test_plain_proxies_the_law_predicts_the_final_run_worse_where_it_repeats_the_small_domain() -> None:
    law = _law(N)
    heavy, light = np.array([[0.4, 0.6]]), np.array([[0.05, 0.95]])
    at_proxy = law.predict(heavy)[0], law.predict(light)[0]
    law.at_final()
    assert law.predict(heavy)[0] > at_proxy[0] + 0.005  # 4.8 epochs at the final budget, 0.6 in a proxy
    assert law.predict(light)[0] == pytest.approx(at_proxy[1])  # read under once either way


def test_on_matched_proxies_it_is_its_base_regressor_at_either_budget() -> None:
    law = _law(matched_pool(N, 30_000, 240_000, 129).astype(float))
    X = np.random.default_rng(1).dirichlet([1.0, 1.0], size=10)
    before = law.predict(X)
    np.testing.assert_allclose(law.at_final().predict(X), before, rtol=1e-4)
