"""The mixture data module: reproducible sampling, weights, and held-out windows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from mixopt.models.data import MixtureDataModule
from mixopt.runspec import DomainShard


def make_dm(shards: list[DomainShard], weights: list[float], seed: int = 0, steps: int = 20) -> MixtureDataModule:
    return MixtureDataModule(shards, weights, seq_len=16, batch_size=8, seed=seed, total_steps=steps, eval_batches=2)


def batches(dm: MixtureDataModule) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    return list(dm.train_dataloader())


def test_batches_have_shape_and_shifted_targets(shards: list[DomainShard]) -> None:
    out = batches(make_dm(shards, [0.5, 0.5], steps=5))
    assert len(out) == 5
    x, y, dom = out[0]
    assert x.shape == y.shape == (8, 16) and x.dtype == torch.long and dom.shape == (8,)
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_same_seed_same_batches_different_seed_different(shards: list[DomainShard]) -> None:
    a, b = batches(make_dm(shards, [0.3, 0.7])), batches(make_dm(shards, [0.3, 0.7]))
    c = batches(make_dm(shards, [0.3, 0.7], seed=1))
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[2], q[2]) for p, q in zip(a, b))
    assert not all(torch.equal(p[0], q[0]) for p, q in zip(a, c))


def test_windows_come_from_the_sampled_domain(shards: list[DomainShard]) -> None:
    """Domain a uses ids < 32 (plus EOT 0), domain b ids >= 32 (plus EOT)."""
    for x, _, dom in batches(make_dm(shards, [0.5, 0.5])):
        for row, d in zip(x, dom):
            toks = row[row != 0]
            assert bool((toks < 32).all()) if d == 0 else bool((toks >= 32).all())


def test_weight_zero_domain_is_never_sampled_or_opened(shards: list[DomainShard]) -> None:
    dm = make_dm(shards, [1.0, 0.0], steps=50)
    out = batches(dm)
    assert dm.sampled_sequences.tolist() == [50 * 8, 0]
    assert all(bool((dom == 0).all()) for _, _, dom in out)
    assert all(bool((x < 32).all()) for x, _, _ in out)
    assert 1 not in dm._train  # the train shard of the weight-0 domain was never opened


def test_weights_are_followed(shards: list[DomainShard]) -> None:
    dm = make_dm(shards, [0.2, 0.8], steps=100)
    batches(dm)
    frac = dm.sampled_sequences / dm.sampled_sequences.sum()
    assert frac[1] == pytest.approx(0.8, abs=0.05)


def test_set_weights_changes_the_mixture_during_iteration(shards: list[DomainShard]) -> None:
    dm = make_dm(shards, [1.0, 0.0], steps=10)
    doms = []
    for i, (_, _, dom) in enumerate(dm.train_dataloader()):
        doms.append(dom)
        if i == 4:
            dm.set_weights([0.0, 1.0])
    assert all(bool((d == 0).all()) for d in doms[:5])
    assert all(bool((d == 1).all()) for d in doms[5:])


@pytest.mark.parametrize("weights", [[1.0], [0.0, 0.0], [-0.1, 1.1], [float("nan"), 1.0]])
def test_bad_weights_are_rejected(shards: list[DomainShard], weights: list[float]) -> None:
    with pytest.raises(ValueError):
        make_dm(shards, weights)


def test_weights_are_normalised(shards: list[DomainShard]) -> None:
    assert make_dm(shards, [1.0, 3.0]).weights.tolist() == [0.25, 0.75]


def test_short_train_shard_with_positive_weight_is_an_error(
    shard_writer: Callable[..., DomainShard], shards: list[DomainShard]
) -> None:
    short = shard_writer("short", np.arange(1, 10), np.arange(1, 10))
    make_dm([shards[0], short], [1.0, 0.0])  # fine while never sampled
    with pytest.raises(ValueError, match="short"):
        make_dm([shards[0], short], [0.5, 0.5])


def test_val_batches_are_deterministic_evenly_spaced_and_capped(shards: list[DomainShard]) -> None:
    dm = make_dm(shards, [0.5, 0.5])
    a, b = dm.val_batches("a"), dm.val_batches(0)
    assert len(a) == 2 and all(x.shape == (8, 16) for x, _ in a)  # eval_batches * batch_size windows
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, b))
    val = np.fromfile(shards[0].val_path, dtype=np.uint16)
    x0, y0 = a[0]
    assert x0[0].tolist() == val[:16].tolist() and y0[0].tolist() == val[1:17].tolist()
    assert a[-1][1][-1].tolist() == val[-16:].tolist()  # the last window ends at the shard's end


def test_short_val_shard_gives_one_shorter_window(
    shard_writer: Callable[..., DomainShard], shards: list[DomainShard]
) -> None:
    short = shard_writer("tiny", np.arange(1, 40), np.array([5, 6, 7, 8, 9]))
    dm = make_dm([shards[0], short], [1.0, 0.0])
    ((x, y),) = dm.val_batches("tiny")
    assert x.tolist() == [[5, 6, 7, 8]] and y.tolist() == [[6, 7, 8, 9]]


def test_val_shard_with_fewer_than_two_tokens_is_an_error(
    shard_writer: Callable[..., DomainShard], shards: list[DomainShard]
) -> None:
    one = shard_writer("one", np.arange(1, 40), np.array([5]))
    dm = make_dm([shards[0], one], [1.0, 0.0])
    with pytest.raises(ValueError, match="at least 2"):
        dm.val_batches("one")
    with pytest.raises(KeyError):
        dm.val_batches("nope")


def test_shard_length_mismatch_is_an_error(shards: list[DomainShard]) -> None:
    bad = DomainShard(**{**shards[0].__dict__, "val_tokens": shards[0].val_tokens + 1})
    with pytest.raises(ValueError, match="metadata"):
        make_dm([bad, shards[1]], [0.5, 0.5]).val_batches(0)


def _shard(path, name: str, tokens: np.ndarray, dtype: str) -> DomainShard:
    train, val = path / f"{name}.train", path / f"{name}.val"
    tokens.astype(np.dtype(dtype).newbyteorder("<")).tofile(train)
    tokens[:200].astype(np.dtype(dtype).newbyteorder("<")).tofile(val)
    return DomainShard(name, str(train), str(val), len(tokens), 200, dtype=dtype)


def test_uint32_shards_are_read_as_uint32_and_eval_sets_by_name(tmp_path) -> None:
    """Ids above 65,535 come back intact; an eval set is measured, never drawn for training."""
    big = np.arange(70_000, 70_000 + 1000, dtype=np.int64)
    wide = _shard(tmp_path, "wide", big, "uint32")
    narrow = _shard(tmp_path, "narrow", np.arange(1000, dtype=np.int64) % 300, "uint16")
    held = _shard(tmp_path, "bench", np.arange(5000, 6000, dtype=np.int64), "uint32")
    dm = MixtureDataModule([wide, narrow], [1.0, 0.0], seq_len=16, batch_size=8, seed=0, total_steps=3,
                           eval_batches=2, eval_sets=[held])
    for x, _, dom in batches(dm):
        assert (x >= 70_000).all() and (dom == 0).all()
    assert dm.sampled_sequences.tolist() == [24, 0]
    x, y = dm.val_batches("bench")[0]
    assert x.min() >= 5000 and x.max() < 6000 and torch.equal(x[:, 1:], y[:, :-1])
    assert dm.val_batches("narrow")[0][0].max() < 300


def test_a_pooled_domain_draws_only_inside_its_chunks_and_a_whole_shard_draws_as_before(
        shard_writer: Callable[..., DomainShard]) -> None:
    """A shard whose token i is i % 60000 + 1 tells where each window started; windows stay inside the
    subsample's chunks, cover all of them, and the unpooled stream is unchanged by the subsampling code."""
    from dataclasses import replace

    from mixopt.mixtures.repetition import pool_chunks

    ids = np.arange(20_000) % 60_000 + 1
    whole = shard_writer("pos", ids, ids[:500])
    pooled = replace(whole, pool_tokens=2_000)
    starts, lengths = pool_chunks(20_000, 2_000, 17)
    dm = make_dm([pooled], [1.0], steps=200)
    first = np.concatenate([x[:, 0].numpy() - 1 for x, _, _ in batches(dm)])
    chunk = np.searchsorted(starts, first, side="right") - 1
    assert np.all(first + 17 <= starts[chunk] + lengths[chunk])  # the whole window inside one chunk
    assert set(chunk.tolist()) == set(range(len(starts)))
    plain = batches(make_dm([whole], [1.0], steps=20))
    again = batches(make_dm([replace(whole, pool_tokens=0)], [1.0], steps=20))
    assert all(torch.equal(p[0], q[0]) for p, q in zip(plain, again))
    assert make_dm([whole], [1.0])._chunks == {}


def test_a_pool_of_one_window_repeats_that_window(shard_writer: Callable[..., DomainShard]) -> None:
    """A domain whose matched subsample is a single window (smaller than one batch): every draw is it."""
    from dataclasses import replace

    ids = np.arange(1, 5_001) % 60 + 1
    d = replace(shard_writer("tiny", ids, ids[:100]), pool_tokens=17)
    x, y, _ = batches(make_dm([d], [1.0], steps=3))[0]
    assert all(torch.equal(row, x[0]) for row in x) and x[0].tolist() == ids[:16].tolist()
