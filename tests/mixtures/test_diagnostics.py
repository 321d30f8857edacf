"""The report's trust statistics: rank transfer between sizes, the pooled seed noise floor, warnings."""

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from mixopt.mixtures.diagnostics import (
    NoiseFloor,
    TransferCheck,
    check_warnings,
    noise_floor,
    rank_transfer,
    train_flops,
)


def test_rank_transfer_on_known_ranks():
    small = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "only_small": 0.5}
    large = {"a": 10.0, "b": 20.0, "c": 40.0, "d": 30.0, "only_large": 9.0}
    t = rank_transfer(small, large)
    # ranks 1 2 3 4 vs 1 2 4 3: rho = 1 - 6 * 2 / (4 * 15)
    assert t.n == 4 and t.rho == pytest.approx(0.8)
    assert rank_transfer(small, {k: -v for k, v in large.items()}).rho == pytest.approx(-0.8)


def test_rank_transfer_matches_scipy_on_random_pairs():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=12), rng.normal(size=12)
    t = rank_transfer({str(i): x for i, x in enumerate(a)}, {str(i): x for i, x in enumerate(b)})
    assert t.n == 12 and t.rho == pytest.approx(spearmanr(a, b)[0])


def test_rank_transfer_needs_three_finite_mixtures():
    assert rank_transfer({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 3.0}) == TransferCheck(None, 2)
    assert rank_transfer({"a": 1.0, "b": 2.0, "c": math.nan}, {"a": 1.0, "b": 3.0, "c": 2.0}).n == 2
    assert rank_transfer({"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 1.0, "b": 3.0, "c": 2.0}).rho is None  # constant


def test_noise_floor_is_the_pooled_within_mixture_sd():
    nf = noise_floor([[1.0, 3.0], [2.0, 4.0, 6.0], [7.0], [5.0, math.nan]])
    # within sums of squares 2 + 8 over 1 + 2 degrees of freedom; single-seed groups carry nothing
    assert nf.sd == pytest.approx(math.sqrt(10 / 3))
    assert (nf.n_mixtures, nf.n_runs, nf.dof) == (2, 5, 3)
    rng = np.random.default_rng(1)
    groups = [rng.normal(loc=m, scale=0.05, size=4) for m in rng.normal(size=200)]
    assert noise_floor(groups).sd == pytest.approx(0.05, rel=0.1)  # recovers the seed sd, not the spread of means
    assert noise_floor([[1.0], [2.0]]) == NoiseFloor(None, 0, 0, 0)


def test_warning_when_cv_error_is_below_the_noise_floor():
    nf = NoiseFloor(0.02, 2, 6, 4)
    (w,) = check_warnings("auto", 0.01, nf, None, 0.5)
    assert "0.0100" in w and "0.0200" in w and "auto" in w and "noise floor" in w
    assert check_warnings("auto", 0.03, nf, None, 0.5) == []
    assert check_warnings("auto", None, nf, None, 0.5) == []
    assert check_warnings("auto", 0.01, NoiseFloor(None, 0, 0, 0), None, 0.5) == []


def test_warning_when_ranks_do_not_transfer():
    nf = NoiseFloor(None, 0, 0, 0)
    (w,) = check_warnings(None, None, nf, TransferCheck(0.3, 5), 0.5)
    assert "0.300" in w and "5 mixtures" in w and "0.50" in w
    assert check_warnings(None, None, nf, TransferCheck(0.8, 5), 0.5) == []
    assert check_warnings(None, None, nf, TransferCheck(None, 2), 0.5) == []
    assert len(check_warnings("gp", 0.001, NoiseFloor(0.01, 2, 6, 4), TransferCheck(-0.2, 4), 0.5)) == 2


def test_train_flops():
    assert train_flops(1_000, 2_000) == 12_000_000
    with pytest.raises(ValueError):
        train_flops(0, 10)
