"""Turn the configured corpus into token shards: `prepare_corpus(cfg, out_dir) -> CorpusInfo`.

Layout under `<out_dir>/corpus/`:

    source/<domain>.jsonl        generated text of the builtin / synthetic corpus
    tokenizer.json               the tokenizer (trained or copied)
    <domain>/train.bin, val.bin  flat uint16 tokens (uint32 above 65,536 tokens), EOT after each document
    .eval/<name>/val.bin         the eval sets (`target.eval_sets`): held out whole, never trained on
    manifest.json                fingerprint, shard sizes and checksums, text checksum per domain,
                                 input-file hash cache (written last)

Two passes over each domain: the first validates every input, splits it and picks the tokenizer
sample (`split.scan_domain`); only then are the tokenizer and the shards built, in a staging folder
that is renamed into place at the end, so bad input never touches earlier output. A later call whose
fingerprint (corpus + tokenizer settings and the sha256 of every input file's bytes; no path or
mtime) matches the manifest, and whose shards still match their checksums, reuses them without
tokenising again. The manifest also keeps each input file's sha256 keyed by its path, size and
mtime, so an unchanged file is not re-hashed, and a checksum of each domain's text.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mixopt.config import DomainConfig, ExperimentConfig
from mixopt.corpus import sets
from mixopt.corpus.builtin import write_builtin_corpus, write_builtin_eval_set
from mixopt.corpus.fingerprint import FORMAT_VERSION, TextChecksum, compute_fingerprint, text_checksum
from mixopt.corpus.readers import CorpusError, _detail, iter_documents
from mixopt.corpus.shards import TOKEN_DTYPE, ShardWriter, dtype_name, file_sha256, shard_dtype, verify_shards
from mixopt.corpus.split import DomainPlan
from mixopt.corpus.synthetic import write_synthetic_corpus
from mixopt.corpus.tokenizer import TokenizerBundle, build_tokenizer, load_tokenizer
from mixopt.runspec import DomainShard, atomic_write_text

__all__ = ["CorpusInfo", "compute_fingerprint", "prepare_corpus", "text_checksum", "verify_shards", "resolve_domains",
           "FORMAT_VERSION"]

log = logging.getLogger(__name__)

SYNTHETIC_SEED = 0
RESERVED_NAMES = frozenset({"source", "tokenizer.json", "manifest.json"})
_BATCH_DOCS = 512
_BATCH_BYTES = 2_000_000
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


@dataclass
class CorpusInfo:
    """The prepared corpus: tokenizer, vocabulary, EOT id, per-domain shards and a fingerprint."""

    tokenizer_path: str
    vocab_size: int
    eot_id: int
    domains: list[DomainShard]
    fingerprint: str
    domain_checksums: dict[str, str] = field(default_factory=dict)
    """Per domain: sha256 of the text that went into it (see `text_checksum`), in domain order."""
    eval_sets: list[DomainShard] = field(default_factory=list)
    """The eval sets' shards (`target.eval_sets`; validation file only)."""


def _say(progress: bool, message: str) -> None:
    """Log a progress message, and print it to stderr when `progress` is on."""
    log.info(message)
    if progress:
        print(f"corpus: {message}", file=sys.stderr, flush=True)


def resolve_domains(cfg: ExperimentConfig, corpus_dir: Path) -> list[DomainConfig]:
    """The domains to read: the built-in or synthetic ones (written under `source/`) or the user's."""
    source = corpus_dir / "source"
    c = cfg.corpus
    if c.source == "builtin":
        domains = write_builtin_corpus(source, c.max_bytes_per_domain)
    elif c.source == "synthetic":
        domains = write_synthetic_corpus(source, c.synthetic_domains, c.synthetic_docs, SYNTHETIC_SEED)
    else:
        domains = list(c.domains)
    for d in domains:
        if d.name in RESERVED_NAMES:
            raise CorpusError(f"domain name '{d.name}' is reserved (it is a file or folder in the corpus output)")
    return domains


def resolve_eval_sets(cfg: ExperimentConfig, corpus_dir: Path) -> list[DomainConfig]:
    """The eval sets to read: built-in ones (`format: builtin`) written under `source/`, the rest as given."""
    out = []
    for e in cfg.target.eval_sets:
        if e.format == "builtin":
            e = write_builtin_eval_set(corpus_dir / "source", e.paths[0], e.name, cfg.corpus.max_bytes_per_domain)
        out.append(e)
    return out


def _absolute(corpus_dir: Path, shard: dict) -> DomainShard:
    """A DomainShard from a manifest entry, with paths made absolute."""
    d = DomainShard(**shard)
    d.train_path = str((corpus_dir / d.train_path).resolve()) if d.train_path else ""
    d.val_path = str((corpus_dir / d.val_path).resolve())
    return d


def _read_manifest(corpus_dir: Path) -> dict | None:
    """The manifest's contents, or None if there is none or it is unreadable."""
    try:
        data = json.loads((corpus_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _try_reuse(corpus_dir: Path, fingerprint: str, progress: bool) -> CorpusInfo | None:
    """The existing corpus if its manifest matches `fingerprint` and every checksum still matches."""
    m = _read_manifest(corpus_dir)
    if m is None or m.get("fingerprint") != fingerprint or m.get("format_version") != FORMAT_VERSION:
        return None
    try:
        tok_path = corpus_dir / m["tokenizer"]["path"] if m["tokenizer"] else None  # None: kind 'none'
        if tok_path is not None and (not tok_path.is_file() or file_sha256(tok_path) != m["tokenizer"]["sha256"]):
            raise CorpusError(f"{tok_path}: missing or changed")
        domains = [_absolute(corpus_dir, s) for s in m["domains"]]
        evals = [_absolute(corpus_dir, s) for s in m.get("eval_sets", [])]
        verify_shards(domains + evals)
        checksums = {str(k): str(v) for k, v in m["domain_checksums"].items()}
        info = CorpusInfo(str(tok_path.resolve()) if tok_path else "", int(m["vocab_size"]), int(m["eot_id"]),
                          domains, fingerprint, checksums, evals)
    except (CorpusError, KeyError, TypeError, AttributeError, OSError) as e:
        log.warning("corpus manifest matches but the output is damaged (%s); rebuilding", e)
        return None
    _say(progress, f"reusing {len(domains)} domains from {corpus_dir} (fingerprint {fingerprint[:12]})")
    return info


def _tokenize_domain(plan: DomainPlan, bundle: TokenizerBundle, max_bytes: int,
                     dest: Path, dtype: np.dtype = TOKEN_DTYPE) -> tuple[DomainShard, str]:
    """Second pass over one domain: encode in batches and write its train and val shards.

    Returns the shard and the checksum of the domain's text (`TextChecksum` over its documents).
    """
    dest.mkdir(parents=True, exist_ok=True)
    writers = tuple(ShardWriter(dest / f"{split}.bin", bundle.eot_id, dtype) for split in ("train", "val"))
    encode = getattr(bundle.tokenizer, "encode_batch_fast", bundle.tokenizer.encode_batch)
    batch: list[str] = []
    flags: list[int] = []
    batch_bytes = 0
    count = 0
    checksum = TextChecksum()

    def flush() -> None:
        """Encode the pending batch and append each document to its split's shard."""
        encodings = encode(batch, add_special_tokens=False)
        for split, writer in enumerate(writers):
            writer.write_docs([e.ids for e, f in zip(encodings, flags) if f == split])
        batch.clear()
        flags.clear()

    name = plan.config.name
    try:
        for text in iter_documents(plan.config, max_bytes):
            if count >= plan.n_docs:
                raise CorpusError(f"domain '{name}': the input files changed while reading")
            checksum.add(text)
            batch.append(text)
            flags.append(plan.is_val[count])
            count += 1
            batch_bytes += len(text)
            if len(batch) >= _BATCH_DOCS or batch_bytes >= _BATCH_BYTES:
                flush()
                batch_bytes = 0
        if batch:
            flush()
        if count != plan.n_docs:
            raise CorpusError(f"domain '{name}': the input files changed while reading")
    finally:
        train_sha, val_sha = (w.close() for w in writers)
    train, val = writers
    shard = DomainShard(
        name=name,
        train_path=str(dest / "train.bin"),
        val_path=str(dest / "val.bin"),
        train_tokens=train.tokens,
        val_tokens=val.tokens,
        train_docs=train.docs,
        val_docs=val.docs,
        train_sha256=train_sha,
        val_sha256=val_sha,
        dtype=dtype_name(dtype),
    )
    return shard, checksum.hexdigest()


def _install(staging: Path, corpus_dir: Path, names: list[str], old: dict | None) -> None:
    """Move the staged domains and tokenizer into place (old ones go to a trash folder, then away)."""
    (corpus_dir / "manifest.json").unlink(missing_ok=True)
    trash = corpus_dir / f".trash-{uuid.uuid4().hex[:8]}"
    trash.mkdir()
    stale: set[str] = set()
    if old and isinstance(old.get("domains"), list):
        listed = {s.get("name") for s in old["domains"] if isinstance(s, dict)}
        stale = {n for n in listed if isinstance(n, str) and _NAME.fullmatch(n)} - set(names) - RESERVED_NAMES
    try:
        for name in [*names, *sorted(stale)]:
            target = corpus_dir / name
            if target.exists():
                os.replace(target, trash / name)
            if name in names:
                os.replace(staging / name, target)
        if (corpus_dir / sets.EVAL_DIR).exists():  # eval sets: replaced as one folder, or removed
            os.replace(corpus_dir / sets.EVAL_DIR, trash / sets.EVAL_DIR)
        if (staging / sets.EVAL_DIR).exists():
            os.replace(staging / sets.EVAL_DIR, corpus_dir / sets.EVAL_DIR)
        if (staging / "tokenizer.json").exists():  # none with tokenizer kind 'none'
            os.replace(staging / "tokenizer.json", corpus_dir / "tokenizer.json")
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def _manifest_entry(shard: DomainShard, folder: str = "") -> dict:
    """A shard as stored in the manifest: paths relative to the corpus folder (an eval set's in `folder`)."""
    d = asdict(shard)
    d["train_path"] = f"{folder}{shard.name}/train.bin" if shard.train_path else ""
    d["val_path"] = f"{folder}{shard.name}/val.bin"
    return d


def prepare_corpus(cfg: ExperimentConfig, out_dir: str | Path, progress: bool = False) -> CorpusInfo:
    """Read, split, tokenise and shard the configured corpus (and eval sets) under `<out_dir>/corpus/`.

    Reuses the existing shards when the fingerprint matches and their checksums verify. Raises
    `CorpusError` (a `ValueError`) with a one-line message on any bad input; earlier output is then
    left as it was. Shards are uint16, or uint32 when the vocabulary has more than 65,536 tokens.
    """
    t0 = time.perf_counter()
    corpus_dir = Path(out_dir) / "corpus"
    try:
        domains = resolve_domains(cfg, corpus_dir)
        eval_sets = resolve_eval_sets(cfg, corpus_dir)
    except OSError as e:
        raise CorpusError(f"cannot write the corpus sources under {corpus_dir} ({_detail(e)})") from None
    sets.check_eval_overlap(domains, eval_sets)
    hash_cache = (_read_manifest(corpus_dir) or {}).get("input_hashes")
    hash_cache = dict(hash_cache) if isinstance(hash_cache, dict) else {}
    fingerprint = compute_fingerprint(cfg, domains, hash_cache, eval_sets)
    reused = _try_reuse(corpus_dir, fingerprint, progress)
    if reused is not None:
        return reused
    tok = cfg.tokenizer
    vocab: int | None = tok.vocab_size if tok.kind == "none" else None
    if tok.kind == "file":
        assert tok.path is not None
        vocab = load_tokenizer(tok.path).vocab_size  # fail before the long read
    c = cfg.corpus
    plans = []
    for d in domains:
        plan = sets.scan(d, vocab, c.val_fraction, c.max_bytes_per_domain, tok.sample_bytes_per_domain)
        what = f"{plan.tokens:,} tokens" if d.format == "tokens" else f"{plan.text_bytes:,} bytes"
        _say(progress, f"read {d.name}: {plan.n_docs} documents, {what}, {plan.n_val} held out")
        plans.append(plan)
    eval_plans = [sets.scan(e, vocab, c.val_fraction, c.max_bytes_per_domain, 0, eval_set=True) for e in eval_sets]
    staging = corpus_dir / f".staging-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir(parents=True)
        if tok.kind == "none":
            bundle = None
            eot = int(next(d.separator_id for d in [*domains, *eval_sets] if d.separator_id is not None))
        else:
            samples = (text for plan in plans if isinstance(plan, DomainPlan) for text in plan.sample)
            bundle = build_tokenizer(tok, samples, staging)
            vocab, eot = bundle.vocab_size, bundle.eot_id
        assert vocab is not None
        dtype = shard_dtype(vocab)
        _say(progress, f"tokenizer: {vocab} tokens, EOT id {eot}, {dtype_name(dtype)} shards")
        def tokenize(plan: DomainPlan, dest: Path, dtype: np.dtype) -> tuple[DomainShard, str]:
            assert bundle is not None  # text needs a tokenizer (the config refuses text with kind 'none')
            return _tokenize_domain(plan, bundle, c.max_bytes_per_domain, dest, dtype)

        shards, checksums = sets.write_all(plans, tokenize, staging, dtype, False)
        evals, eval_sums = sets.write_all(eval_plans, tokenize, staging / sets.EVAL_DIR, dtype, True)
        sets.too_short(evals)
        for s in evals:
            s.text_sha256 = eval_sums.get(s.name, "")
        tok_sha = file_sha256(staging / "tokenizer.json") if bundle is not None else None
        _install(staging, corpus_dir, [s.name for s in shards], _read_manifest(corpus_dir))
        for s in shards:
            s.train_path = str((corpus_dir / s.name / "train.bin").resolve())
            s.val_path = str((corpus_dir / s.name / "val.bin").resolve())
        for s in evals:
            s.val_path = str((corpus_dir / sets.EVAL_DIR / s.name / "val.bin").resolve())
        manifest = {
            "format_version": FORMAT_VERSION,
            "fingerprint": fingerprint,
            "tokenizer": {"path": "tokenizer.json", "sha256": tok_sha} if tok_sha else None,
            "vocab_size": vocab,
            "eot_id": eot,
            "domains": [_manifest_entry(s) for s in shards],
            "domain_checksums": checksums,
            "input_hashes": hash_cache,
        }
        if evals:
            manifest["eval_sets"] = [_manifest_entry(s, f"{sets.EVAL_DIR}/") for s in evals]
        atomic_write_text(corpus_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    except OSError as e:
        raise CorpusError(f"cannot write the corpus under {corpus_dir} ({_detail(e)})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _say(progress, f"prepared {len(shards)} domains and {len(evals)} eval sets in {time.perf_counter() - t0:.1f} s")
    tok_path = str((corpus_dir / "tokenizer.json").resolve()) if bundle is not None else ""
    return CorpusInfo(tok_path, vocab, eot, shards, fingerprint, checksums, evals)

