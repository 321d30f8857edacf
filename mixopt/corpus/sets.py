"""Scanning and writing what is not a plain text domain: pre-tokenized domains and eval sets.

`prepare_corpus` (ingest.py) calls these: `scan(...)` reads and checks one domain or eval set in the
first pass (nothing written), `write_tokens_shard(...)` copies a pre-tokenized plan into shards in
the second. Eval sets are written under `<corpus>/.eval/<name>/val.bin` (a domain name never starts
with a dot, so they cannot collide) and have no train file. An eval set must share no file with a
training domain (`check_eval_overlap`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mixopt.config import DomainConfig
from mixopt.corpus.readers import CorpusError, _one_line, expand_globs, iter_documents
from mixopt.corpus.shards import ShardWriter, dtype_name
from mixopt.corpus.split import DomainPlan, scan_domain
from mixopt.corpus.tokens import TokenPlan, scan_token_domain, write_token_shards
from mixopt.runspec import DomainShard

EVAL_DIR = ".eval"


def check_eval_overlap(domains: list[DomainConfig], eval_sets: list[DomainConfig]) -> None:
    """Refuse an eval set that reads a file a training domain reads (same file after resolving links)."""
    if not eval_sets:
        return
    owner: dict[str, str] = {}
    for d in domains:
        for p in expand_globs(d):
            owner.setdefault(os.path.realpath(p), d.name)
    for e in eval_sets:
        try:
            files = expand_globs(e)
        except CorpusError as err:  # say eval set, not domain
            raise CorpusError(str(err).replace(f"domain '{e.name}':", f"target.eval_sets '{e.name}':", 1)) from None
        for p in files:
            hit = owner.get(os.path.realpath(p))
            if hit is not None:
                raise CorpusError(_one_line(f"target.eval_sets '{e.name}': file {p} is also read by training "
                                            f"domain '{hit}'; an eval set must be held out from training"))


def scan(d: DomainConfig, vocab_size: int | None, val_fraction: float, max_bytes: int, sample_bytes: int,
         eval_set: bool = False) -> DomainPlan | TokenPlan:
    """First pass over a domain or eval set: validate, split (an eval set: all held out), sample."""
    if d.format == "tokens":
        assert vocab_size is not None  # the config refuses token domains with a BPE trained here
        return scan_token_domain(d, vocab_size, val_fraction, "eval set" if eval_set else "domain")
    if not eval_set:
        return scan_domain(d, val_fraction, max_bytes, sample_bytes)
    plan = DomainPlan(config=d)  # an eval set: every document held out, none in the tokenizer's sample
    for text in iter_documents(d, max_bytes):
        plan.is_val.append(1)
        plan.text_bytes += len(text.encode("utf-8"))
    if not plan.n_docs:
        raise CorpusError(f"target.eval_sets '{d.name}': no documents")
    return plan


def write_all(plans: list, tokenize: Callable[..., tuple[DomainShard, str]], folder: Path, dtype: np.dtype,
              eval_set: bool) -> tuple[list[DomainShard], dict[str, str]]:
    """Second pass: the shards of every plan (text: `tokenize(plan, dest, dtype)`; tokens: copied) and
    the text checksums (empty for token files)."""
    shards, checksums = [], {}
    for plan in plans:
        dest = folder / plan.config.name
        if isinstance(plan, DomainPlan):
            shard, checksums[plan.config.name] = tokenize(plan, dest, dtype)
            if eval_set:
                shard = as_eval_shard(shard)
        else:
            shard = write_tokens_shard(plan, dest, dtype, eval_set)
            checksums[plan.config.name] = ""
        shards.append(shard)
    return shards, checksums


def write_tokens_shard(plan: TokenPlan, dest: Path, dtype: np.dtype, eval_set: bool = False) -> DomainShard:
    """Second pass over a pre-tokenized plan: its train and val shards (an eval set: val only)."""
    dest.mkdir(parents=True, exist_ok=True)
    sep = int(plan.config.separator_id)  # type: ignore[arg-type]
    train = None if eval_set else ShardWriter(dest / "train.bin", sep, dtype)
    val = ShardWriter(dest / "val.bin", sep, dtype)
    try:
        write_token_shards(plan, (train, val))
    finally:
        train_sha = train.close() if train is not None else ""
        val_sha = val.close()
    return DomainShard(
        name=plan.config.name,
        train_path=str(dest / "train.bin") if train is not None else "",
        val_path=str(dest / "val.bin"),
        train_tokens=train.tokens if train is not None else 0,
        val_tokens=val.tokens,
        train_docs=train.docs if train is not None else 0,
        val_docs=val.docs,
        train_sha256=train_sha,
        val_sha256=val_sha,
        dtype=dtype_name(dtype),
    )


def as_eval_shard(shard: DomainShard) -> DomainShard:
    """A text eval set's shard without its (empty) train file."""
    if shard.train_path:
        Path(shard.train_path).unlink(missing_ok=True)
    shard.train_path, shard.train_sha256, shard.train_tokens, shard.train_docs = "", "", 0, 0
    return shard


def too_short(shards: list[DomainShard]) -> None:
    """An eval set needs at least 2 tokens to be measured."""
    for s in shards:
        if s.val_tokens < 2:
            raise CorpusError(f"target.eval_sets '{s.name}': only {s.val_tokens} tokens; at least 2 are needed")
