"""One noise source at a time (`RunSpec.init_seed` / `data_seed` / `eval_seed`) and whole-set scoring
(`eval_batches` 0): unset, nothing changes; set, each changes only its own source."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mixopt.models.data import MixtureDataModule
from mixopt.models.module import GPTModule
from mixopt.models.swarm_trainer import train_batch
from mixopt.models.train import train_config, train_run
from mixopt.runspec import DomainShard, RunSpec

MakeSpec = Callable[..., RunSpec]
TOKENS = 64 * 12


def losses(r) -> list[float]:
    return [row[2] for row in r.curve]


def test_unset_overrides_are_the_seed_and_old_specs_still_load(make_spec: MakeSpec) -> None:
    spec = make_spec(seed=3)
    assert (spec.init_seed, spec.data_seed, spec.eval_seed) == (None, None, None)
    assert spec.seeds() == (3, 3, None)
    old = {k: v for k, v in asdict(spec).items() if k not in ("init_seed", "data_seed", "eval_seed")}
    assert RunSpec.from_json(json.dumps(old)) == spec  # a spec written before the fields existed


def test_overrides_equal_to_the_seed_are_bit_identical(make_spec: MakeSpec) -> None:
    base = train_run(make_spec(tokens=TOKENS))
    same = train_run(make_spec(tokens=TOKENS, init_seed=0, data_seed=0))
    assert base.status == same.status == "ok", base.error
    assert base.curve == same.curve and base.val_losses == same.val_losses
    assert base.domain_tokens == same.domain_tokens


def test_the_seed_acts_only_through_initialisation_and_data(make_spec: MakeSpec) -> None:
    """Another seed with both overrides pinned to 0 is exactly the seed-0 run: nothing else reads the seed."""
    base = train_run(make_spec(tokens=TOKENS))
    pinned = train_run(make_spec(tokens=TOKENS, seed=7, init_seed=0, data_seed=0))
    assert pinned.curve == base.curve and pinned.val_losses == base.val_losses


def test_init_seed_changes_the_model_not_the_data(make_spec: MakeSpec) -> None:
    base = train_run(make_spec(tokens=TOKENS, weights=[0.7, 0.3]))
    other = train_run(make_spec(tokens=TOKENS, weights=[0.7, 0.3], init_seed=1))
    assert losses(other) != losses(base)
    assert other.domain_tokens == base.domain_tokens  # the same batches were drawn
    data_only = train_run(make_spec(tokens=TOKENS, weights=[0.7, 0.3], seed=1, init_seed=0))
    assert data_only.domain_tokens != base.domain_tokens
    assert losses(data_only) != losses(base)


def test_data_seed_changes_the_stream_not_the_initialisation(make_spec: MakeSpec) -> None:
    base = train_run(make_spec(tokens=TOKENS, weights=[0.7, 0.3]))
    other = train_run(make_spec(tokens=TOKENS, weights=[0.7, 0.3], data_seed=1))
    assert other.domain_tokens != base.domain_tokens
    init_only = train_run(make_spec(tokens=TOKENS, weights=[0.7, 0.3], seed=1, data_seed=0))
    assert init_only.domain_tokens == base.domain_tokens and losses(init_only) != losses(base)


def test_eval_seed_changes_only_the_held_out_windows(make_spec: MakeSpec) -> None:
    base = train_run(make_spec(tokens=TOKENS))
    other = train_run(make_spec(tokens=TOKENS, eval_seed=5))
    again = train_run(make_spec(tokens=TOKENS, eval_seed=5))
    assert other.curve == base.curve and other.domain_tokens == base.domain_tokens  # the same training
    assert other.val_losses.keys() == base.val_losses.keys()
    assert all(other.val_losses[k] != base.val_losses[k] for k in base.val_losses)
    assert again.val_losses == other.val_losses


def test_batched_proxies_honour_the_overrides(make_spec: MakeSpec) -> None:
    specs = [make_spec(tokens=TOKENS, run_id="p0", init_seed=4, data_seed=2, eval_seed=1),
             make_spec(tokens=TOKENS, run_id="p1", seed=3, weights=[0.9, 0.1])]
    for spec, batched in zip(specs, train_batch(specs)):
        solo = train_run(spec)
        np.testing.assert_allclose(losses(batched), losses(solo), rtol=1e-4)
        assert batched.domain_tokens == solo.domain_tokens
        for name, value in solo.val_losses.items():
            assert batched.val_losses[name] == pytest.approx(value, rel=1e-4)


def dm(shards: list[DomainShard], eval_batches: int = 2, eval_seed: int | None = None) -> MixtureDataModule:
    return MixtureDataModule(shards, [0.5, 0.5], seq_len=16, batch_size=8, seed=0, total_steps=1,
                             eval_batches=eval_batches, eval_seed=eval_seed)


def test_random_phase_grid_keeps_the_count_and_spacing(shards: list[DomainShard]) -> None:
    n_tokens = shards[0].val_tokens  # 800: last offset 783, 16 windows ~49 apart
    grid, _ = dm(shards).val_offsets(n_tokens)
    a, n = dm(shards, eval_seed=1).val_offsets(n_tokens)
    b, _ = dm(shards, eval_seed=2).val_offsets(n_tokens)
    assert n == 17 and len(a) == len(b) == len(grid) == 16
    assert not np.array_equal(a, b) and not np.array_equal(a, grid)
    assert np.array_equal(a, dm(shards, eval_seed=1).val_offsets(n_tokens)[0])  # reproducible
    assert a.min() >= 0 and a.max() <= n_tokens - n
    assert np.ptp(np.diff(a)) <= 1  # evenly spaced: 784 / 16 = 49 apart
    x, y = dm(shards, eval_seed=1).val_batches("a")[0]
    val = np.fromfile(shards[0].val_path, dtype=np.uint16)
    assert x[0].tolist() == val[a[0]:a[0] + 16].tolist() and y[0].tolist() == val[a[0] + 1:a[0] + 17].tolist()


def test_whole_set_windows_predict_every_token_once(shards: list[DomainShard]) -> None:
    offsets, n = dm(shards, eval_batches=0, eval_seed=3).val_offsets(800)  # the seed plays no part
    assert n == 17 and offsets.tolist() == list(range(0, 784, 16))  # 49 windows, 16 apart
    batches = dm(shards, eval_batches=0).val_batches("a")
    y = torch.cat([b[1] for b in batches]).reshape(-1)
    val = np.fromfile(shards[0].val_path, dtype=np.uint16)
    assert y.tolist() == val[1:1 + 49 * 16].tolist()  # tokens 1..784, each once (the last 15 fill no window)
    with pytest.raises(ValueError, match="eval_batches"):
        dm(shards, eval_batches=-1)


def test_whole_set_score_is_the_mean_over_all_windows(make_spec: MakeSpec, tmp_path) -> None:
    spec = make_spec(tokens=TOKENS, save_checkpoint=True, run_id="full")
    spec.train["eval_batches"] = 0
    assert train_config(spec).eval_batches == 0
    r = train_run(spec)
    assert r.status == "ok", r.error
    module = GPTModule.load_from_checkpoint(r.checkpoint, map_location="cpu").eval()
    for d in spec.domains:
        val = torch.from_numpy(np.fromfile(d.val_path, dtype=np.uint16).astype(np.int64))
        per_window = []
        with torch.no_grad():
            for o in range(0, len(val) - 16, 16):  # every window of 17 tokens, 16 apart, one at a time
                logits = module.model(val[o:o + 16][None])
                per_window.append(F.cross_entropy(logits[0].float(), val[o + 1:o + 17]).item())
        assert len(per_window) == (len(val) - 1) // 16
        assert r.val_losses[d.name] == pytest.approx(float(np.mean(per_window)), rel=1e-5)
    grid = train_run(make_spec(tokens=TOKENS, run_id="grid"))
    assert grid.curve == r.curve and grid.val_losses != r.val_losses  # same training, another score
