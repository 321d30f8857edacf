"""Uint32 shards (a > 65,536-token vocabulary) and eval sets in the solo and batched trainers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mixopt.config import ModelConfig, TrainConfig
from mixopt.models.swarm_trainer import train_batch
from mixopt.models.train import train_run
from mixopt.runspec import DomainShard, RunSpec

VOCAB = 70_000


def _shard(folder: Path, name: str, rng: np.random.Generator, low: int, eval_only: bool = False) -> DomainShard:
    folder.mkdir(parents=True, exist_ok=True)
    train, val = rng.integers(low, low + 64, size=3000), rng.integers(low, low + 64, size=400)
    tp, vp = folder / f"{name}.train", folder / f"{name}.val"
    train.astype("<u4").tofile(tp)
    val.astype("<u4").tofile(vp)
    if eval_only:
        return DomainShard(name, "", str(vp), 0, 400, dtype="uint32")
    return DomainShard(name, str(tp), str(vp), 3000, 400, dtype="uint32")


def test_uint32_shards_and_eval_sets_train_solo_and_batched_alike(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    domains = [_shard(tmp_path, "hi", rng, 69_000), _shard(tmp_path, "lo", rng, 100)]
    bench = _shard(tmp_path, "bench", rng, 69_000, eval_only=True)
    train = TrainConfig(model=ModelConfig(n_layer=1, n_embd=16, n_head=2), tokens=16 * 4 * 4, seq_len=16,
                        batch_size=4, lr=1e-2, eval_batches=2).model_dump()
    specs = [RunSpec(run_id=f"p{k}", role="proxy", label="design", domains=domains, weights=w, train=train,
                     vocab_size=VOCAB, seed=k, out_dir=str(tmp_path / "out"), threads=1, eval_sets=[bench])
             for k, w in enumerate(([0.9, 0.1], [0.1, 0.9]))]
    batched = train_batch(specs)
    solo = train_run(specs[0])
    assert solo.status == batched[0].status == batched[1].status == "ok", (solo.error, batched[0].error)
    assert set(solo.val_losses) == set(batched[0].val_losses) == {"hi", "lo", "bench"}
    for name, loss in solo.val_losses.items():
        assert batched[0].val_losses[name] == pytest.approx(loss, rel=1e-4)
    # the proxy trained mostly on the high ids (the eval set's range) does better on the eval set
    assert batched[0].val_losses["bench"] < batched[1].val_losses["bench"]
