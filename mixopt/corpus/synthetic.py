"""A small synthetic multi-domain corpus for fast tests.

Domain `i` has its own vocabulary of made-up words (built from its own syllable inventory) and its
own first-order Markov chain over those words: each word has `branching` possible successors with
random probabilities. The branching factor grows with the domain index (2, 4, 8, 16, 2, ...), so
domains are easy or hard to predict: a small model's loss drops far below the unigram entropy, and
the per-domain losses differ visibly. Everything is drawn from `numpy.random.default_rng([seed, i])`,
so the same seed always writes the same bytes.
"""

from __future__ import annotations

import bisect
import json
import os
import string
from pathlib import Path

import numpy as np

from mixopt.config import DomainConfig
from mixopt.corpus.builtin import replace_if_changed

_ONSETS = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "qu", "r", "s", "t", "v", "w", "z",
           "br", "ch", "dr", "gl", "kr", "ph", "sh", "st", "th", "tr", "zh"]
_VOWELS = ["a", "e", "i", "o", "u", "y", "ai", "ou", "ee", "oa", "ie", "au"]
_CODAS = ["", "", "n", "r", "s", "l", "x", "k", "m", "sh", "nd", "rt"]


class _Chain:
    """One domain's generative model: a vocabulary and a sparse word-to-word Markov chain."""

    def __init__(self, rng: np.random.Generator, vocab_size: int, branching: int, end_prob: float) -> None:
        """Draw `vocab_size` distinct words and, for each, `branching` weighted successors."""
        onsets = list(rng.choice(_ONSETS, size=8, replace=False))
        vowels = list(rng.choice(_VOWELS, size=4, replace=False))
        codas = list(rng.choice(_CODAS, size=4, replace=False))
        words: list[str] = []
        seen: set[str] = set()
        while len(words) < vocab_size:
            n_syll = int(rng.integers(1, 4))
            w = "".join(
                str(rng.choice(onsets)) + str(rng.choice(vowels)) + str(rng.choice(codas)) for _ in range(n_syll)
            )
            if w not in seen:
                seen.add(w)
                words.append(w)
        self.words = words
        self.end_prob = end_prob
        self.successors: list[list[int]] = []
        self.cumprobs: list[list[float]] = []
        for _ in range(vocab_size):
            succ = rng.choice(vocab_size, size=branching, replace=False)
            probs = np.cumsum(rng.dirichlet(np.ones(branching)))
            self.successors.append([int(s) for s in succ])
            self.cumprobs.append([float(p) for p in probs])

    def document(self, rng: np.random.Generator, n_words: int) -> str:
        """One document of `n_words` words, split into sentences ending with a full stop."""
        u = rng.random(2 * n_words + 1)
        word = int(rng.integers(len(self.words)))
        out: list[str] = []
        capital = True
        for k in range(n_words):
            w = self.words[word]
            out.append(w.capitalize() if capital else w)
            capital = bool(u[2 * k] < self.end_prob)
            if capital or k == n_words - 1:
                out[-1] += "."
            nxt = bisect.bisect_left(self.cumprobs[word], u[2 * k + 1])
            word = self.successors[word][min(nxt, len(self.successors[word]) - 1)]
        return " ".join(out)


def domain_names(n_domains: int) -> list[str]:
    """Names of the synthetic domains: `synth_a`, `synth_b`, ..."""
    return [f"synth_{string.ascii_lowercase[i]}" for i in range(n_domains)]


def synthetic_documents(index: int, n_docs: int, seed: int = 0) -> list[str]:
    """The documents of synthetic domain `index` (deterministic per `seed`)."""
    rng = np.random.default_rng([seed, index])
    branching = 2 ** (1 + index % 4)
    vocab = int(rng.integers(96, 256))
    chain = _Chain(rng, vocab, branching, end_prob=0.05 + 0.05 * (index % 3))
    lengths = rng.integers(40, 200, size=n_docs)
    return [chain.document(rng, int(n)) for n in lengths]


def write_synthetic_corpus(
    folder: str | Path, n_domains: int = 4, n_docs: int = 300, seed: int = 0
) -> list[DomainConfig]:
    """Write `n_domains` (at most 26) synthetic domains as `<folder>/<name>.jsonl`; return their configs.

    Files whose bytes are unchanged are not rewritten, so their mtimes (and the shards) are kept.
    """
    if not 1 <= n_domains <= len(string.ascii_lowercase):
        raise ValueError(f"n_domains must be between 1 and 26, got {n_domains}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    configs = []
    for i, name in enumerate(domain_names(n_domains)):
        dest = folder / f"{name}.jsonl"
        tmp = folder / f".{name}.jsonl.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for doc in synthetic_documents(i, n_docs, seed):
                f.write(json.dumps({"text": doc}) + "\n")
        replace_if_changed(tmp, dest)
        configs.append(DomainConfig(name=name, paths=[str(dest)], format="jsonl"))
    return configs
