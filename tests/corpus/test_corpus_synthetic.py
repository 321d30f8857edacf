"""Synthetic corpus: deterministic per seed, learnable, and clearly different across domains."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from mixopt.corpus.readers import read_documents
from mixopt.corpus.synthetic import synthetic_documents, write_synthetic_corpus


def _words(docs: list[str]) -> list[str]:
    return " ".join(docs).lower().replace(".", "").split()


def _entropies(words: list[str]) -> tuple[float, float]:
    """(unigram entropy, bigram conditional entropy) in bits per word, from counts."""
    uni = Counter(words)
    n = len(words)
    h1 = -sum(c / n * math.log2(c / n) for c in uni.values())
    first = Counter(words[:-1])
    bi = Counter(zip(words, words[1:]))
    h2 = -sum(c / (n - 1) * math.log2(c / first[a]) for (a, _), c in bi.items())
    return h1, h2


def test_deterministic_per_seed(tmp_path: Path) -> None:
    a = write_synthetic_corpus(tmp_path / "a", n_domains=3, n_docs=20, seed=7)
    b = write_synthetic_corpus(tmp_path / "b", n_domains=3, n_docs=20, seed=7)
    c = write_synthetic_corpus(tmp_path / "c", n_domains=3, n_docs=20, seed=8)
    for da, db, dc in zip(a, b, c):
        assert da.name == db.name == dc.name
        bytes_a = Path(da.paths[0]).read_bytes()
        assert bytes_a == Path(db.paths[0]).read_bytes()
        assert bytes_a != Path(dc.paths[0]).read_bytes()


def test_rewrite_keeps_unchanged_files(tmp_path: Path) -> None:
    first = write_synthetic_corpus(tmp_path, n_domains=2, n_docs=10)
    mtimes = [Path(d.paths[0]).stat().st_mtime_ns for d in first]
    again = write_synthetic_corpus(tmp_path, n_domains=2, n_docs=10)
    assert [Path(d.paths[0]).stat().st_mtime_ns for d in again] == mtimes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth_a.jsonl", "synth_b.jsonl"]


def test_domains_readable_and_distinct(tmp_path: Path) -> None:
    domains = write_synthetic_corpus(tmp_path, n_domains=4, n_docs=30)
    assert [d.name for d in domains] == ["synth_a", "synth_b", "synth_c", "synth_d"]
    vocabs = [set(_words(read_documents(d))) for d in domains]
    for i in range(4):
        for j in range(i + 1, 4):
            overlap = len(vocabs[i] & vocabs[j]) / min(len(vocabs[i]), len(vocabs[j]))
            assert overlap < 0.2


def test_learnable_with_visibly_different_difficulty() -> None:
    conditional = []
    for i in range(4):
        h1, h2 = _entropies(_words(synthetic_documents(i, 300)))
        assert h2 < 0.6 * h1  # a bigram model is far better than the unigram entropy
        conditional.append(h2)
    assert conditional == sorted(conditional)  # branching 2, 4, 8, 16
    assert conditional[-1] - conditional[0] > 1.5
