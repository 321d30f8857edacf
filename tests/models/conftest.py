"""Fixtures: tiny token shards on disk and RunSpecs that train in well under a second."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mixopt.config import ModelConfig, TrainConfig
from mixopt.runspec import DomainShard, RunSpec

VOCAB = 64
EOT = 0


def write_shard(folder: Path, name: str, train: np.ndarray, val: np.ndarray) -> DomainShard:
    """Write two uint16 token files and describe them as a DomainShard."""
    folder.mkdir(parents=True, exist_ok=True)
    tp, vp = folder / f"{name}.train.bin", folder / f"{name}.val.bin"
    train.astype(np.uint16).tofile(tp)
    val.astype(np.uint16).tofile(vp)
    return DomainShard(name, str(tp), str(vp), int(train.size), int(val.size))


def random_tokens(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """Random ids in [low, high) with an EOT token every ~50 tokens."""
    t = rng.integers(low, high, size=n)
    t[rng.random(n) < 0.02] = EOT
    return t


@pytest.fixture
def shard_writer(tmp_path: Path) -> Callable[..., DomainShard]:
    """`shard_writer(name, train_ids, val_ids)` writes a domain under tmp_path."""

    def write(name: str, train: np.ndarray, val: np.ndarray) -> DomainShard:
        return write_shard(tmp_path / "extra", name, np.asarray(train), np.asarray(val))

    return write


@pytest.fixture
def shards(tmp_path: Path) -> list[DomainShard]:
    """Two random domains with disjoint token ranges (1..31 and 32..63), so a window's
    tokens tell which domain it came from."""
    rng = np.random.default_rng(0)
    return [
        write_shard(tmp_path / "shards", "a", random_tokens(rng, 5000, 1, 32), random_tokens(rng, 800, 1, 32)),
        write_shard(tmp_path / "shards", "b", random_tokens(rng, 3000, 32, 64), random_tokens(rng, 600, 32, 64)),
    ]


@pytest.fixture
def repetitive_shard(tmp_path: Path) -> list[DomainShard]:
    """One domain repeating a short pattern: easy to learn."""
    pattern = np.arange(1, 17)
    return [write_shard(tmp_path / "rep", "rep", np.tile(pattern, 400), np.tile(pattern, 40))]


@pytest.fixture
def make_spec(tmp_path: Path, shards: list[DomainShard]) -> Callable[..., RunSpec]:
    """Build a tiny RunSpec; keyword arguments override RunSpec fields, `tokens` the budget."""

    def make(tokens: int = 16 * 4 * 8, **overrides: object) -> RunSpec:
        train = TrainConfig(
            model=ModelConfig(n_layer=1, n_embd=16, n_head=2),
            tokens=tokens,
            seq_len=16,
            batch_size=4,
            lr=1e-2,
            eval_batches=2,
        ).model_dump()
        fields: dict[str, object] = dict(
            run_id="r0",
            role="proxy",
            label="design",
            domains=shards,
            weights=[0.5, 0.5],
            train=train,
            vocab_size=VOCAB,
            seed=0,
            out_dir=str(tmp_path / "out"),
            threads=1,
        )
        fields.update(overrides)
        return RunSpec(**fields)  # type: ignore[arg-type]

    return make
