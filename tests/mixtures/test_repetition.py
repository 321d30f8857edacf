"""Repetition: epochs per domain and the subsamples of repetition-matched proxies."""

from __future__ import annotations

import numpy as np
import pytest

from mixopt.mixtures.repetition import CHUNK_WINDOWS, epochs, matched_pool, pool_chunks


def test_a_matched_pool_gives_the_proxy_the_final_runs_epochs_at_every_mixture() -> None:
    n = np.array([2_000_000, 40_000, 600_000])
    pool = matched_pool(n, 60_000, 480_000, window=129)
    assert pool.tolist() == [250_000, 5_000, 75_000]  # 1/8 of each shard
    rng = np.random.default_rng(0)
    for w in rng.dirichlet(np.ones(3), size=20):
        np.testing.assert_allclose(epochs(w, 60_000, pool), epochs(w, 480_000, n))


def test_a_domain_smaller_than_one_window_keeps_one_window_and_a_proxy_at_the_final_budget_reads_everything() -> None:
    n = np.array([1_000_000, 500, 100])
    pool = matched_pool(n, 1_000, 1_000_000, window=129)
    assert pool.tolist() == [1_000, 129, 100]  # at least one window; never more than the shard
    assert matched_pool(n, 2_000_000, 1_000_000, window=129).tolist() == n.tolist()
    with pytest.raises(ValueError, match="positive"):
        matched_pool(n, 0, 1_000, window=129)


@pytest.mark.parametrize("total, pool, window", [(1_000_000, 125_000, 129), (30_000, 3_750, 129),
                                                 (10_000, 129, 129), (50_000, 40_000, 17), (7_919, 3_001, 33)])
def test_chunks_are_disjoint_evenly_spread_and_hold_the_pool(total: int, pool: int, window: int) -> None:
    starts, lengths = pool_chunks(total, pool, window)
    assert int(lengths.sum()) == pool and lengths.min() >= window and np.ptp(lengths) <= 1
    assert starts[0] == 0 and starts[-1] + lengths[-1] <= total
    assert np.all(starts[1:] >= starts[:-1] + lengths[:-1])  # disjoint, in order
    if len(starts) > 1:
        assert starts[-1] + lengths.max() == total  # the last chunk ends the shard: the whole shard is covered
        assert lengths.max() <= 2 * CHUNK_WINDOWS * window
    assert pool_chunks(total, pool, window)[0].tolist() == starts.tolist()  # a function of the sizes alone


def test_the_whole_shard_needs_no_chunks_and_a_pool_below_one_window_is_refused() -> None:
    assert pool_chunks(1000, 0, 17) is None and pool_chunks(1000, 1000, 17) is None
    assert pool_chunks(50_000, 49_990, 17) is None  # too close to the shard for disjoint chunks: all of it
    with pytest.raises(ValueError, match="no training window"):
        pool_chunks(1000, 10, 17)


def test_epochs_of_an_empty_domain_are_zero() -> None:
    assert epochs(np.array([0.5, 0.5]), 100, np.array([50, 0])).tolist() == [1.0, 0.0]
