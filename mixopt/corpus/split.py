"""The train/validation split and the tokenizer's training sample, decided in one streaming pass.

A document goes to validation when the first 8 bytes of the sha256 of its text, read as a fraction
of 2**64, fall below `val_fraction`: the split depends only on the text (identical documents land
on the same side) and never on file order. If that leaves a domain with no validation document,
the training document with the smallest hash moves to validation (and symmetrically for training).

The tokenizer sample is the training documents with the smallest *second* hash (bytes 8..16),
taken in that order while they fit in the byte budget: a uniform, order-independent sample.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field

from mixopt.config import DomainConfig
from mixopt.corpus.readers import CorpusError, iter_documents, truncate_utf8

_SCALE = float(2**64)


def doc_hashes(text: str) -> tuple[float, int]:
    """(split value in [0, 1), sample key) of a document."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE, int.from_bytes(digest[8:16], "big")


def is_validation(text: str, val_fraction: float) -> bool:
    """Whether the hash alone puts a document in the validation split."""
    return doc_hashes(text)[0] < val_fraction


@dataclass
class DomainPlan:
    """What the first pass learned about one domain."""

    config: DomainConfig
    is_val: bytearray = field(default_factory=bytearray)
    """One flag per document in reading order: 1 for validation, 0 for training."""
    text_bytes: int = 0
    """Bytes of UTF-8 text read."""
    sample: list[str] = field(default_factory=list)
    """The tokenizer-training sample (training documents only)."""

    @property
    def n_docs(self) -> int:
        """Number of documents read."""
        return len(self.is_val)

    @property
    def n_val(self) -> int:
        """Number of validation documents (after any forced move)."""
        return sum(self.is_val)


def scan_domain(
    domain: DomainConfig, val_fraction: float, max_bytes: int | None, sample_bytes: int
) -> DomainPlan:
    """Read a domain once: validate it, split it and pick its tokenizer sample."""
    plan = DomainPlan(config=domain)
    heap: list[tuple[int, int, str]] = []  # (-sample key, index, text): a max-heap on the key
    heap_bytes = 0
    best_train: tuple[float, int] | None = None  # smallest split value among training docs
    best_val: tuple[float, int, str] | None = None  # largest split value among validation docs
    for index, text in enumerate(iter_documents(domain, max_bytes)):
        plan.text_bytes += len(text.encode("utf-8"))
        value, key = doc_hashes(text)
        if value < val_fraction:
            plan.is_val.append(1)
            if best_val is None or value > best_val[0]:
                best_val = (value, index, text)
            continue
        plan.is_val.append(0)
        if best_train is None or value < best_train[0]:
            best_train = (value, index)
        piece = truncate_utf8(text, sample_bytes)
        heapq.heappush(heap, (-key, index, piece))
        heap_bytes += len(piece.encode("utf-8"))
        while heap_bytes > sample_bytes:
            heap_bytes -= len(heapq.heappop(heap)[2].encode("utf-8"))
    if plan.n_docs < 2:
        raise CorpusError(
            f"domain '{domain.name}' has only one document; at least two are needed (one for training, "
            "one for validation; a txt file is one document)"
        )
    if best_val is None and best_train is not None:  # everything hashed to training
        plan.is_val[best_train[1]] = 1
        heap = [item for item in heap if item[1] != best_train[1]]
    elif best_train is None and best_val is not None:  # everything hashed to validation
        plan.is_val[best_val[1]] = 0
        heap = [(0, best_val[1], truncate_utf8(best_val[2], sample_bytes))]
    plan.sample = [text for _, _, text in sorted((-neg, index, text) for neg, index, text in heap)]
    return plan
