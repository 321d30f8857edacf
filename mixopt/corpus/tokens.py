"""Pre-tokenized domains (`format: tokens`): flat token files as OLMo and olmix store them.

A domain's globs match `.npy` files (1-D integer arrays; the dtype is read from the header) or raw
files (`.bin` or any other name) of the declared `dtype`, little-endian. Documents are the runs of
tokens between `separator_id`s; empty runs are dropped, and a last document without a separator gets
one in the shard. Token counts (the prior) come from file sizes and `.npy` headers, without reading
the tokens (`count_tokens`).

The split is by document (a document goes to validation when the sha256 of its ids, as uint32
little-endian, falls below `val_fraction`, like a text document's) or, with `held_out`, by file.
Every id is checked against the vocabulary while the files are scanned, so a bad file is refused
before any shard is written. The shards are the same flat files as for text domains (`shards.py`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixopt.config import DomainConfig
from mixopt.corpus.readers import CorpusError, _detail, _one_line, expand_globs
from mixopt.corpus.shards import ShardWriter

_CHUNK = 1 << 23  # tokens per read while scanning (64 MiB of int64 at most)
_FLUSH = 1 << 22  # tokens buffered per shard before a write
_SCALE = float(2**64)


@dataclass(frozen=True)
class TokenFile:
    """One token file: its path, dtype (little-endian), header bytes before the tokens, token count."""

    path: Path
    dtype: np.dtype
    offset: int
    n_tokens: int


def _where(domain: DomainConfig, kind: str) -> str:
    return f"{kind} '{domain.name}'"


def inspect_token_file(path: Path, domain: DomainConfig, kind: str = "domain") -> TokenFile:
    """The file's dtype, header size and token count, from its size (and `.npy` header) alone."""
    where = _where(domain, kind)
    try:
        size = path.stat().st_size
        if path.suffix == ".npy":
            shape, dt, offset = _npy_header(path, where)
            if len(shape) != 1 or dt.kind not in "iu":
                raise CorpusError(_one_line(f"{path}: {where}: expected a 1-D integer array, got shape {shape} {dt}"))
            dt = dt.newbyteorder("<") if dt.byteorder in "=|" or dt.itemsize == 1 else dt
            if domain.dtype is not None and np.dtype(domain.dtype) != dt.newbyteorder("="):
                raise CorpusError(_one_line(f"{path}: {where}: dtype mismatch: the file holds {dt.name}, "
                                            f"the domain declares dtype {domain.dtype}"))
            if dt.byteorder == ">":
                raise CorpusError(_one_line(f"{path}: {where}: big-endian .npy files are not supported"))
            if size - offset != shape[0] * dt.itemsize:
                raise CorpusError(_one_line(f"{path}: {where}: truncated .npy ({size - offset} bytes of data, "
                                            f"header says {shape[0]} x {dt.itemsize})"))
            return TokenFile(path, dt, offset, int(shape[0]))
    except (OSError, ValueError) as e:
        if isinstance(e, CorpusError):
            raise
        raise CorpusError(_one_line(f"{path}: {where}: not a readable .npy token file ({_detail(e)})")) from None
    if domain.dtype is None:
        raise CorpusError(_one_line(f"{path}: {where}: raw token files need the domain's dtype "
                                    "(uint16, uint32, int32 or int64)"))
    dt = np.dtype(domain.dtype).newbyteorder("<")
    if size % dt.itemsize:
        raise CorpusError(_one_line(f"{path}: {where}: dtype mismatch: {size} bytes is not a whole number of "
                                    f"{domain.dtype} tokens ({dt.itemsize} bytes each)"))
    return TokenFile(path, dt, 0, size // dt.itemsize)


def _npy_header(path: Path, where: str) -> tuple[tuple, np.dtype, int]:
    """(shape, dtype, data offset) of a `.npy` file; a header numpy cannot parse is a one-line `CorpusError`
    (numpy's parser lets a tokenizer or syntax error through for some broken headers)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dt = read(f)
            return shape, dt, f.tell()
    except OSError:
        raise
    except Exception as e:  # ValueError, SyntaxError, tokenize.TokenError, ...
        raise CorpusError(_one_line(f"{path}: {where}: not a readable .npy token file ({_detail(e)})")) from None


def token_files(domain: DomainConfig, kind: str = "domain") -> list[TokenFile]:
    """The domain's token files in reading order, each inspected (no token is read)."""
    return [inspect_token_file(p, domain, kind) for p in expand_globs(domain)]


def count_tokens(domain: DomainConfig) -> int:
    """Tokens in a pre-tokenized domain, from file sizes and `.npy` headers alone: the prior."""
    return sum(f.n_tokens for f in token_files(domain))


def open_token_file(tf: TokenFile) -> np.ndarray:
    """A read-only memory map of the file's tokens."""
    if tf.n_tokens == 0:
        return np.zeros(0, dtype=tf.dtype)
    return np.memmap(tf.path, dtype=tf.dtype, mode="r", offset=tf.offset, shape=(tf.n_tokens,))


@dataclass
class TokenPlan:
    """What the scan learned about one pre-tokenized domain: its documents and their split."""

    config: DomainConfig
    files: list[TokenFile]
    docs: list[np.ndarray] = field(default_factory=list)
    """Per file: (n, 2) array of [start, end) of each non-empty document (the separator excluded)."""
    is_val: list[np.ndarray] = field(default_factory=list)
    """Per file: one bool per document, True for validation."""

    @property
    def n_docs(self) -> int:
        return sum(len(d) for d in self.docs)

    @property
    def n_val(self) -> int:
        return int(sum(v.sum() for v in self.is_val))

    @property
    def tokens(self) -> int:
        return sum(f.n_tokens for f in self.files)


def _documents(tf: TokenFile, sep: int, vocab_size: int, where: str) -> np.ndarray:
    """Check every id of a file against the vocabulary and return its documents' [start, end)."""
    arr = open_token_file(tf)
    seps = []
    try:
        for lo in range(0, len(arr), _CHUNK):
            chunk = np.asarray(arr[lo : lo + _CHUNK])
            bad = np.flatnonzero((chunk < 0) | (chunk >= vocab_size)) if chunk.dtype.kind == "i" else \
                np.flatnonzero(chunk >= vocab_size)
            if bad.size:
                i = int(bad[0])
                raise CorpusError(_one_line(f"{tf.path}: {where}: token id {int(chunk[i])} at position {lo + i} "
                                            f"is outside the vocabulary (vocab_size {vocab_size})"))
            seps.append(np.flatnonzero(chunk == sep) + lo)
    except OSError as e:
        raise CorpusError(_one_line(f"{tf.path}: {where}: cannot read ({_detail(e)})")) from None
    s = np.concatenate(seps) if seps else np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[0], s + 1]).astype(np.int64)
    ends = np.concatenate([s, [len(arr)]]).astype(np.int64)
    keep = ends > starts
    return np.stack([starts[keep], ends[keep]], axis=1) if keep.any() else np.zeros((0, 2), dtype=np.int64)


def _split_values(arr: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """Each document's split value in [0, 1): the first 8 bytes of the sha256 of its ids as uint32 LE."""
    out = np.empty(len(docs))
    for i, (a, b) in enumerate(docs):
        digest = hashlib.sha256(np.asarray(arr[a:b]).astype("<u4").tobytes()).digest()
        out[i] = int.from_bytes(digest[:8], "big") / _SCALE
    return out


def scan_token_domain(domain: DomainConfig, vocab_size: int, val_fraction: float,
                      kind: str = "domain") -> TokenPlan:
    """Inspect, check and split a pre-tokenized domain (`kind` "eval set": every document is held out)."""
    where = _where(domain, kind)
    sep = int(domain.separator_id)  # type: ignore[arg-type]  (required by the config for format tokens)
    if sep >= vocab_size:
        raise CorpusError(f"{where}: separator_id {sep} is outside the vocabulary (vocab_size {vocab_size})")
    plan = TokenPlan(domain, token_files(domain, kind))
    held = _held_out_files(domain, plan.files) if kind == "domain" else set()
    values = []
    for tf in plan.files:
        docs = _documents(tf, sep, vocab_size, where)
        plan.docs.append(docs)
        if kind != "domain":
            plan.is_val.append(np.ones(len(docs), dtype=bool))
        elif domain.held_out:
            plan.is_val.append(np.full(len(docs), str(tf.path.resolve()) in held))
        else:
            v = _split_values(open_token_file(tf), docs)
            values.append(v)
            plan.is_val.append(v < val_fraction)
    if kind != "domain":
        if plan.n_docs == 0:
            raise CorpusError(f"{where}: no documents (every file is empty)")
        return plan
    if plan.n_docs < 2:
        raise CorpusError(f"{where}: has {plan.n_docs} documents; at least two are needed (one for training, "
                          "one for validation)")
    if domain.held_out:
        if plan.n_val == 0 or plan.n_val == plan.n_docs:
            side = "validation" if plan.n_val == 0 else "training"
            raise CorpusError(f"{where}: held_out leaves no document for {side}")
        return plan
    _force_both_sides(plan, values)
    return plan


def _held_out_files(domain: DomainConfig, files: list[TokenFile]) -> set[str]:
    """Resolved paths of the held-out files; each must be one of the domain's files."""
    if not domain.held_out:
        return set()
    held = DomainConfig(name=domain.name, paths=domain.held_out)
    mine = {str(f.path.resolve()) for f in files}
    out = set()
    for p in expand_globs(held):
        key = str(p.resolve())
        if key not in mine:
            raise CorpusError(_one_line(f"{p}: domain '{domain.name}': held_out file is not among the domain's paths"))
        out.add(key)
    return out


def _force_both_sides(plan: TokenPlan, values: list[np.ndarray]) -> None:
    """As for text: if no document hashed to one side, move the nearest one there."""
    flat = np.concatenate(values)
    owner = np.concatenate([np.full(len(v), i) for i, v in enumerate(values)])
    index = np.concatenate([np.arange(len(v)) for v in values])
    val = np.concatenate(plan.is_val)
    if not val.any():
        j = int(np.argmin(flat))
        plan.is_val[owner[j]][index[j]] = True
    elif val.all():
        j = int(np.argmax(flat))
        plan.is_val[owner[j]][index[j]] = False


def write_token_shards(plan: TokenPlan, writers: tuple[ShardWriter | None, ShardWriter]) -> None:
    """Copy each document, followed by the writer's EOT (the domain's separator), to its split's shard."""
    sep = np.array([plan.config.separator_id], dtype=np.int64)
    pending: list[list[np.ndarray]] = [[], []]
    counts = [[0, 0], [0, 0]]  # per split: tokens, documents pending

    def flush(split: int) -> None:
        w = writers[split]
        if pending[split] and w is not None:
            w.write_tokens(np.concatenate(pending[split]), counts[split][1])
        pending[split].clear()
        counts[split] = [0, 0]

    for tf, docs, flags in zip(plan.files, plan.docs, plan.is_val):
        arr = open_token_file(tf)
        for (a, b), v in zip(docs, flags):
            split = int(v)
            pending[split] += [np.asarray(arr[a:b], dtype=np.int64), sep]
            counts[split][0] += int(b - a) + 1
            counts[split][1] += 1
            if counts[split][0] >= _FLUSH:
                flush(split)
        del arr
    flush(0)
    flush(1)


def file_keys(paths: list[Path]) -> dict[str, Path]:
    """Resolved path -> path (to compare the files of eval sets and domains)."""
    return {os.path.realpath(p): p for p in paths}
