"""Hashed n-gram features of the token shards, and the zero-proxy similarity prior built on them.

Each training domain's train shard, and the target's held-out text, become counts over `n_buckets`
hashed features: every token id (unigram) and every pair of adjacent ids (bigram) is hashed into one
of the buckets, as in DSIR (Xie et al. 2023), so the features cost one pass of numpy over the tokens
and need no tokenizer, embedding or model. A shard longer than `max_tokens` is read as `_WINDOWS`
contiguous windows at evenly spaced offsets (deterministic; a bigram never spans two windows).

The target's text is what it measures: for each term of the target (`mixopt.targets.effective_weights`)
a domain's validation split or an eval set's shard; each term's counts are normalised and weighted by
the term's weight, so `q` is the bucket distribution of the target as a weighted mean of per-token
losses sees it. The train splits never include that text, so the prior is honest about held-out data.

`similarity_prior(exp)` (an `Experiment`, or shards and target terms) returns a
`mixopt.mixtures.prior.PriorResult`: per-domain scores, the prior mixture (within `caps`) and a
`score_fn` for many mixtures at once; see `mixopt/mixtures/prior.py` for the two methods.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mixopt.corpus.readers import CorpusError
from mixopt.corpus.shards import read_tokens
from mixopt.mixtures.prior import DEFAULT_CONTRAST, DEFAULT_EPS, PriorResult, prior_from_counts
from mixopt.runspec import DomainShard

DEFAULT_BUCKETS = 1 << 14
"""Hashed feature buckets (DSIR's default is 10,000; a power of two keeps the modulo cheap)."""
DEFAULT_MAX_TOKENS = 1 << 20
"""Tokens read per shard at most (about 10 ms of hashing per million tokens)."""
_WINDOWS = 64  # contiguous windows a long shard is read as
_M1 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64's finaliser constants
_M2 = np.uint64(0x94D049BB133111EB)
_SHIFT32 = np.uint64(32)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective, well-spread hash of uint64 keys (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def hashed_ngrams(tokens: np.ndarray, n_buckets: int = DEFAULT_BUCKETS) -> np.ndarray:
    """Counts (float64, `n_buckets`) of the hashed unigrams and bigrams of `tokens`.

    `tokens` is 1-D, or 2-D with one window per row (bigrams stay within a row). A unigram's key is
    its id, a bigram's `(a + 1) << 32 | b`, so the two never share a key; ids must be < 2**32."""
    if n_buckets < 1:
        raise ValueError(f"n_buckets must be >= 1, got {n_buckets}")
    t = np.atleast_2d(np.asarray(tokens)).astype(np.uint64)
    keys = [t.ravel()]
    if t.shape[1] > 1:
        keys.append((((t[:, :-1] + np.uint64(1)) << _SHIFT32) | t[:, 1:]).ravel())
    k = np.concatenate(keys)
    with np.errstate(over="ignore"):
        buckets = _mix(k) % np.uint64(n_buckets)
    return np.bincount(buckets.astype(np.int64), minlength=n_buckets).astype(np.float64)


def sample_windows(tokens: np.ndarray, max_tokens: int = DEFAULT_MAX_TOKENS) -> np.ndarray:
    """All of `tokens` (one row) if it holds at most `max_tokens`, else `_WINDOWS` contiguous windows
    of `max_tokens // _WINDOWS` tokens at evenly spaced offsets (a 2-D array; deterministic)."""
    if max_tokens < 2:
        raise ValueError(f"max_tokens must be >= 2, got {max_tokens}")
    n = len(tokens)
    if n <= max_tokens:
        return np.asarray(tokens)[None, :]
    width = max(2, max_tokens // _WINDOWS)
    starts = np.unique(np.linspace(0, n - width, _WINDOWS).round().astype(np.int64))
    return np.stack([np.asarray(tokens[s: s + width]) for s in starts])


def shard_counts(path: str, dtype: str = "uint16", n_buckets: int = DEFAULT_BUCKETS,
                 max_tokens: int = DEFAULT_MAX_TOKENS, what: str = "shard") -> tuple[np.ndarray, int]:
    """Hashed n-gram counts of one token shard and the number of tokens read; CorpusError naming
    `what` and the file when it is missing or empty."""
    try:
        arr = read_tokens(path, dtype)
    except (OSError, ValueError) as e:
        raise CorpusError(f"{what}: cannot read {path} ({e.__class__.__name__}: {e})") from None
    if len(arr) == 0:
        raise CorpusError(f"{what}: {path} holds no tokens")
    windows = sample_windows(arr, max_tokens)
    return hashed_ngrams(windows, n_buckets), int(windows.size)


@dataclass
class NgramFeatures:
    """Hashed n-gram counts of the training domains (train splits) and the target's distribution."""

    names: list[str]
    """Domain names, in the order of the rows of `domains`."""
    domains: np.ndarray
    """(k, n_buckets) counts of each domain's train split (subsampled to `max_tokens`)."""
    target: np.ndarray
    """(n_buckets,) the target's bucket distribution (sums to 1)."""
    terms: dict[str, float]
    """The target's terms with weight > 0 (domain val splits and eval sets), normalised."""
    tokens_read: dict[str, int] = field(default_factory=dict)
    """Tokens hashed per shard: `name` for a train split, `name/val` for a held-out one."""


def ngram_features(domains: Sequence[DomainShard], target_terms: Mapping[str, float],
                   eval_sets: Sequence[DomainShard] = (), n_buckets: int = DEFAULT_BUCKETS,
                   max_tokens: int = DEFAULT_MAX_TOKENS) -> NgramFeatures:
    """Features of every domain's train split and of the target (each term: a domain's val split or
    an eval set, normalised, weighted). Unknown or unmeasurable terms are a CorpusError naming them."""
    if not domains:
        raise CorpusError("similarity prior: no domains")
    read: dict[str, int] = {}
    rows = []
    for d in domains:
        if not d.train_path:
            raise CorpusError(f"domain '{d.name}': no train shard for the similarity prior")
        counts, read[d.name] = shard_counts(d.train_path, d.dtype, n_buckets, max_tokens,
                                            f"domain '{d.name}' train split")
        rows.append(counts)
    held = {d.name: d for d in domains} | {e.name: e for e in eval_sets}
    terms = {n: float(w) for n, w in target_terms.items() if w > 0}
    unknown = sorted(set(terms) - set(held))
    if unknown:
        raise CorpusError(f"target: terms {unknown} are neither a domain nor an eval set; known: {sorted(held)}")
    total = sum(terms.values())
    if total <= 0:
        raise CorpusError("target: no term has a positive weight")
    terms = {n: w / total for n, w in terms.items()}
    q = np.zeros(n_buckets)
    for name, w in terms.items():
        s = held[name]
        counts, read[f"{name}/val"] = shard_counts(s.val_path, s.dtype, n_buckets, max_tokens,
                                                   f"target term '{name}' held-out split")
        q += w * counts / counts.sum()
    return NgramFeatures([d.name for d in domains], np.stack(rows), q / q.sum(), terms, read)


def corpus_shards(corpus_dir: str | Path) -> tuple[list[DomainShard], list[DomainShard]]:
    """The domains' and eval sets' shards recorded in `<corpus_dir>/manifest.json` (paths made absolute)."""
    folder = Path(corpus_dir)
    path = folder / "manifest.json"
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
        out = []
        for key in ("domains", "eval_sets"):
            shards = [DomainShard(**s) for s in m.get(key, [])]
            for s in shards:
                s.train_path = str((folder / s.train_path).resolve()) if s.train_path else ""
                s.val_path = str((folder / s.val_path).resolve())
            out.append(shards)
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise CorpusError(f"{path}: not a readable corpus manifest ({e.__class__.__name__}: {e})") from None
    return out[0], out[1]


def similarity_prior(source: Any = None, *, domains: Sequence[DomainShard] | None = None,
                     target_terms: Mapping[str, float] | None = None, eval_sets: Sequence[DomainShard] | None = None,
                     caps: Sequence[float] | np.ndarray | None = None, method: str = "xent",
                     n_buckets: int = DEFAULT_BUCKETS, max_tokens: int = DEFAULT_MAX_TOKENS,
                     eps: float = DEFAULT_EPS, contrast: float = DEFAULT_CONTRAST,
                     features: NgramFeatures | None = None) -> PriorResult:
    """The zero-proxy prior of an `Experiment` (`source`: its domains, eval sets and `target_terms()`),
    or of explicit `domains`, `target_terms` and `eval_sets`. `features` (from `ngram_features`)
    skips reading the shards again, e.g. to compare methods. Deterministic; `details` records the
    tokens read per shard."""
    if features is None:
        if source is not None:
            domains = domains if domains is not None else source.domains
            eval_sets = eval_sets if eval_sets is not None else source.eval_sets
            target_terms = target_terms if target_terms is not None else source.target_terms()
        if domains is None or target_terms is None:
            raise ValueError("similarity_prior needs an Experiment, or domains and target_terms")
        features = ngram_features(domains, target_terms, eval_sets or (), n_buckets, max_tokens)
    result = prior_from_counts(features.domains, features.target, features.names, method, caps, eps, contrast)
    result.details.update(terms=features.terms, tokens_read=features.tokens_read)
    return result
