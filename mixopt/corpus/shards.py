"""Token shard files: flat little-endian uint16 arrays (uint32 when the vocabulary has more than
65,536 tokens), written with a running sha256, and checked.

A shard holds the tokens of many documents, each followed by the end-of-text id. `ShardWriter`
hashes while it writes, so a checksum never needs a second read; `verify_shards` re-reads and
compares, raising `CorpusError` naming the first file that does not match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mixopt.corpus.readers import CorpusError, _detail
from mixopt.runspec import DomainShard

TOKEN_DTYPE = np.dtype("<u2")
WIDE_DTYPE = np.dtype("<u4")
_CHUNK = 1 << 20


def shard_dtype(vocab_size: int) -> np.dtype:
    """The narrowest shard dtype that holds every id of a vocabulary: uint16 up to 65,536 tokens, else uint32."""
    return TOKEN_DTYPE if vocab_size <= 1 << 16 else WIDE_DTYPE


def dtype_name(dtype: np.dtype) -> str:
    """"uint16" / "uint32": how `DomainShard.dtype` names a shard dtype."""
    return np.dtype(dtype).newbyteorder("=").name


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class ShardWriter:
    """Append documents' token ids (each followed by EOT) to one shard file."""

    def __init__(self, path: Path, eot_id: int, dtype: np.dtype = TOKEN_DTYPE) -> None:
        """Create (truncate) `path`; `eot_id` is appended after every document; ids are stored as `dtype`."""
        self.path = path
        self.eot_id = eot_id
        self.dtype = np.dtype(dtype)
        self.tokens = 0
        self.docs = 0
        self._sha = hashlib.sha256()
        try:
            self._file = open(path, "wb")
        except OSError as e:
            raise CorpusError(f"{path}: cannot write ({_detail(e)})") from None

    def write_docs(self, docs: Sequence[Sequence[int]]) -> None:
        """Append several documents at once (one array conversion and one write)."""
        if not docs:
            return
        flat: list[int] = []
        for ids in docs:
            flat.extend(ids)
            flat.append(self.eot_id)
        self.write_tokens(np.asarray(flat, dtype=np.int64), len(docs))

    def write_tokens(self, arr: np.ndarray, docs: int) -> None:
        """Append a flat array of ids that already holds `docs` documents, each ending with EOT."""
        if arr.size and (arr.min() < 0 or arr.max() > np.iinfo(self.dtype).max):
            raise CorpusError(f"{self.path}: token id {int(arr.max())} does not fit in {dtype_name(self.dtype)}")
        data = arr.astype(self.dtype, copy=False).tobytes()
        try:
            self._file.write(data)
        except OSError as e:
            raise CorpusError(f"{self.path}: cannot write ({_detail(e)})") from None
        self._sha.update(data)
        self.tokens += int(arr.size)
        self.docs += docs

    def close(self) -> str:
        """Flush and close the file; return its sha256."""
        try:
            self._file.close()
        except OSError as e:
            raise CorpusError(f"{self.path}: cannot write ({_detail(e)})") from None
        return self._sha.hexdigest()


def _check_file(path: str, tokens: int, sha256: str, dtype: str = "uint16") -> None:
    """Raise `CorpusError` unless `path` holds `tokens` tokens of `dtype` with the given sha256."""
    p = Path(path)
    if not p.is_file():
        raise CorpusError(f"{path}: shard file is missing")
    size = p.stat().st_size
    width = np.dtype(dtype).itemsize
    if size != tokens * width:
        raise CorpusError(f"{path}: shard has {size} bytes, expected {tokens * width} ({tokens} {dtype} tokens)")
    try:
        actual = file_sha256(p)
    except OSError as e:
        raise CorpusError(f"{path}: cannot read shard ({_detail(e)})") from None
    if actual != sha256:
        raise CorpusError(f"{path}: checksum mismatch (expected sha256 {sha256[:12]}..., got {actual[:12]}...)")


def verify_shards(domains: Sequence[DomainShard]) -> None:
    """Check every shard's size and sha256; raise `CorpusError` naming the first bad file."""
    for d in domains:
        if d.train_path:  # an eval set has only a validation file
            _check_file(d.train_path, d.train_tokens, d.train_sha256, d.dtype)
        _check_file(d.val_path, d.val_tokens, d.val_sha256, d.dtype)


def read_tokens(path: str | Path, dtype: str = "uint16") -> np.ndarray:
    """A shard's tokens as a read-only memory map of `dtype` (a `DomainShard.dtype`)."""
    p = Path(path)
    dt = np.dtype(dtype).newbyteorder("<")
    if p.stat().st_size == 0:
        return np.zeros(0, dtype=dt)
    return np.memmap(p, dtype=dt, mode="r")
