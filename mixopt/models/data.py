"""Training batches drawn from a mixture of token shards, and held-out windows per domain.

Each training sequence picks its domain by the current mixture weights and a uniformly random window
of `seq_len + 1` tokens in that domain's train shard (a repetition-matched proxy: in its fixed subsample,
`DomainShard.pool_tokens`, laid out by `mixtures.repetition.pool_chunks`). The random stream is a numpy
generator seeded by the run's seed, so the same seed and weights give the same batches. Sampling happens inside an
`IterableDataset` that reads the weights when each batch is drawn, so `set_weights` changes the
mixture during training (the DataLoader runs in the main process; with Lightning's one-batch
prefetch, a change takes effect from the next batch but one). Domains with weight 0 are never read.

Live mode (`live=True`, used by Aioli): the stream yields placeholders and each batch is
drawn in `on_before_batch_transfer`, i.e. when its training step starts, so a weight change made
after step s (in a callback's `on_train_batch_end`) already applies to step s + 1. Static runs keep
the prefetched stream, and hence exactly their batches.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from mixopt.mixtures.repetition import pool_chunks
from mixopt.runspec import DomainShard

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # inputs, targets, domain index per sequence


def open_tokens(path: str, expected: int, what: str, dtype: str | None = None) -> np.memmap:
    """Memory-map a flat token file of `dtype` (a `DomainShard.dtype`; None: uint16, or uint32 when the
    file holds 4 bytes per expected token) and check its length against the shard's metadata."""
    if expected < 2:
        raise ValueError(f"{what} ({path}) has {expected} tokens; at least 2 are needed")
    if dtype is None:
        dtype = "uint32" if os.path.getsize(path) == 4 * expected else "uint16"
    mm = np.memmap(path, dtype=np.dtype(dtype).newbyteorder("<"), mode="r")
    if len(mm) != expected:
        raise ValueError(f"{what} ({path}) holds {len(mm)} tokens but its metadata says {expected}")
    return mm


def check_weights(weights: Sequence[float], n_domains: int) -> np.ndarray:
    """Validate mixture weights (one per domain, finite, >= 0, not all 0) and normalise them."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_domains,):
        raise ValueError(f"expected {n_domains} mixture weights, got {w.shape[0] if w.ndim == 1 else w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"mixture weights must be finite and >= 0, got {w.tolist()}")
    if w.sum() <= 0:
        raise ValueError("mixture weights must not all be zero")
    return w / w.sum()


def choice_indices(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    """`rng.choice(len(p), size=size, p=p)` without its argument checks (a third of a batch's
    sampling time for K batched proxies): the same algorithm (inverse CDF of one uniform draw per
    sample), hence the same draws; a test pins the equality."""
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    return cdf.searchsorted(rng.random(size), side="right")


def _chunk_table(d: DomainShard, window: int) -> tuple[np.ndarray, np.ndarray, int] | None:
    """A subsampled domain's chunks as `(starts, windows in the chunks before, windows in all)`; None: the
    whole shard is drawn from."""
    layout = pool_chunks(d.train_tokens, d.pool_tokens, window)
    if layout is None:
        return None
    starts, lengths = layout
    counts = lengths - window + 1
    return starts, np.concatenate([[0], np.cumsum(counts)[:-1]]), int(counts.sum())


class MixtureStream(IterableDataset):
    """Yields `total_steps` batches `(x, y, domain)`; reads the owner's weights for every batch."""

    def __init__(self, owner: MixtureDataModule) -> None:
        super().__init__()
        self.owner = owner
        self.epoch = 0

    def __len__(self) -> int:
        return self.owner.total_steps

    def __iter__(self) -> Iterator[Batch]:
        # A re-iteration (a second epoch) continues with fresh, still reproducible randomness.
        rank = getattr(getattr(self.owner, "trainer", None), "global_rank", 0)  # DDP: a stream per rank
        rng = np.random.default_rng([self.owner.seed, self.epoch] + ([rank] if rank else []))
        self.epoch += 1
        if self.owner.live:  # --- Aioli: placeholders, drawn when consumed ---
            self.owner._live_rng = rng
            for step in range(self.owner.total_steps):
                yield torch.tensor(step)  # type: ignore[misc]
            return
        for _ in range(self.owner.total_steps):
            yield self.owner.sample_batch(rng)


class MixtureDataModule(pl.LightningDataModule):
    """Mixture-weighted training batches and deterministic per-domain validation windows."""

    def __init__(
        self,
        domains: list[DomainShard],
        weights: Sequence[float],
        seq_len: int,
        batch_size: int,
        seed: int,
        total_steps: int,
        eval_batches: int = 8,
        live: bool = False,
        eval_sets: Sequence[DomainShard] = (),
        eval_seed: int | None = None,
    ) -> None:
        super().__init__()
        if not domains:
            raise ValueError("no domains given")
        names = [d.name for d in domains]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate domain names: {names}")
        self.domains = list(domains)
        self.seq_len = int(seq_len)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.total_steps = int(total_steps)
        self.eval_batches = int(eval_batches)  # 0: every window of the held-out shard (`val_offsets`)
        if self.eval_batches < 0:
            raise ValueError(f"eval_batches must be >= 0 (0: the whole held-out set), got {eval_batches}")
        self.eval_seed = None if eval_seed is None else int(eval_seed)  # None: the fixed grid of windows
        self.live = bool(live)  # Aioli: draw each batch when its step starts
        self.eval_sets = list(eval_sets)  # evaluation-only held-out sets: `val_batches` by name
        self._live_rng: np.random.Generator | None = None
        self._train: dict[int, np.memmap] = {}  # opened lazily: weight-0 domains are never opened
        n = self.seq_len + 1
        self._chunks = {i: c for i, d in enumerate(self.domains)  # subsampled domains: (starts, windows before)
                        if d.train_tokens >= n and (c := _chunk_table(d, n)) is not None}
        self._windows = np.array([self._chunks[i][2] if i in self._chunks else d.train_tokens - n + 1
                                  for i, d in enumerate(self.domains)])  # window starts to draw from
        self.sampled_sequences = np.zeros(len(domains), dtype=np.int64)
        self.weights = np.zeros(len(domains))
        self.set_weights(weights)

    @property
    def names(self) -> list[str]:
        """Domain names, in the order of the weights."""
        return [d.name for d in self.domains]

    def set_weights(self, weights: Sequence[float]) -> None:
        """Change the mixture; batches drawn from now on use the new (normalised) weights."""
        w = check_weights(weights, len(self.domains))
        for i in np.flatnonzero(w > 0):
            d = self.domains[i]
            if d.train_tokens < self.seq_len + 1:
                raise ValueError(
                    f"domain {d.name!r} has weight {w[i]:.4g} but its train shard has only "
                    f"{d.train_tokens} tokens, fewer than seq_len + 1 = {self.seq_len + 1}"
                )
        self.weights = w

    def _train_tokens(self, i: int) -> np.memmap:
        if i not in self._train:
            d = self.domains[i]
            self._train[i] = open_tokens(d.train_path, d.train_tokens, f"train shard of {d.name!r}", d.dtype)
        return self._train[i]

    def sample_batch(self, rng: np.random.Generator) -> Batch:
        """Draw one batch with the current weights: a domain and a random window per sequence."""
        w = self.weights
        n = self.seq_len + 1
        live = np.flatnonzero(w > 0)  # weight-0 domains cannot be drawn, even by rounding
        dom = live[choice_indices(rng, w[live], self.batch_size)]
        offsets = rng.integers(0, self._windows[dom])
        for i, (starts, before, _) in self._chunks.items():  # a window of the subsample -> its shard offset
            rows = np.flatnonzero(dom == i)
            chunk = before.searchsorted(offsets[rows], side="right") - 1
            offsets[rows] += starts[chunk] - before[chunk]
        buf = np.empty((self.batch_size, n), dtype=np.int64)
        window = np.arange(n)
        counts = np.bincount(dom, minlength=len(self.domains))
        for i in np.flatnonzero(counts):  # one vectorised gather per domain drawn
            rows = np.flatnonzero(dom == i)
            buf[rows] = self._train_tokens(int(i))[offsets[rows, None] + window]
        self.sampled_sequences += counts
        t = torch.from_numpy(buf)
        return t[:, :-1], t[:, 1:], torch.from_numpy(dom.astype(np.int64))

    def train_dataloader(self) -> DataLoader:
        """Batches come ready-made from the stream, in the main process (weights live here)."""
        return DataLoader(MixtureStream(self), batch_size=None, num_workers=0)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Live mode (Aioli): replace the placeholder by a batch drawn now, with the
        weights in force at the start of this step; otherwise the batch passes unchanged."""
        if self.live and self._live_rng is not None and isinstance(batch, torch.Tensor) and batch.ndim == 0:
            return self.sample_batch(self._live_rng)
        return batch

    def _domain_index(self, domain: str | int) -> int:
        if isinstance(domain, int):
            if not 0 <= domain < len(self.domains):
                raise IndexError(f"domain index {domain} out of range")
            return domain
        try:
            return self.names.index(domain)
        except ValueError:
            raise KeyError(f"unknown domain {domain!r}; known: {self.names}") from None

    def val_offsets(self, n_tokens: int) -> tuple[np.ndarray, int]:
        """The start offsets and the length (at most `seq_len + 1`) of the held-out windows in a val shard
        of `n_tokens` tokens.

        `eval_batches` > 0: at most `eval_batches * batch_size` windows at evenly spaced offsets over the
        shard (the first at 0, the last at its end), the same for every run; with `eval_seed` set, the same
        number of windows at spacing `(last + 1) / count` from a random phase in `[0, spacing)` drawn from
        `eval_seed` (another systematic sample of the same size: the noise of the window choice).
        `eval_batches` == 0: the whole shard, in consecutive windows `seq_len` apart, so that every token
        but the first is predicted exactly once (the last `< seq_len` tokens, which fill no window, excepted).
        """
        n = min(self.seq_len + 1, n_tokens)
        last = n_tokens - n
        if self.eval_batches == 0:
            return np.arange(0, last + 1, max(1, n - 1), dtype=np.int64), n
        count = min(self.eval_batches * self.batch_size, last + 1)
        if self.eval_seed is None or count >= last + 1:
            return np.unique(np.linspace(0, last, count).round().astype(np.int64)), n
        spacing = (last + 1) / count
        phase = np.random.default_rng([self.eval_seed, 0x65]).uniform(0.0, spacing)
        offsets = np.floor(phase + spacing * np.arange(count)).astype(np.int64)
        return np.unique(np.minimum(offsets, last)), n

    def val_batches(self, domain: str | int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Deterministic held-out batches `(x, y)` of one domain (by name or index) or eval set (by name):
        the windows of `val_offsets`, `batch_size` per batch; a shard shorter than `seq_len + 1` tokens
        gives one shorter window."""
        sets = {e.name: e for e in self.eval_sets}
        d = sets[domain] if isinstance(domain, str) and domain in sets else self.domains[self._domain_index(domain)]
        tokens = open_tokens(d.val_path, d.val_tokens, f"val shard of {d.name!r}", d.dtype)
        offsets, n = self.val_offsets(len(tokens))
        windows = np.asarray(tokens[offsets[:, None] + np.arange(n)], dtype=np.int64)
        t = torch.from_numpy(windows)
        b = self.batch_size
        return [(t[i : i + b, :-1], t[i : i + b, 1:]) for i in range(0, len(t), b)]
