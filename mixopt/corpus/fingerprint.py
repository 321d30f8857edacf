"""The corpus fingerprint and text checksums: what identifies a corpus, from content alone.

`compute_fingerprint` hashes the corpus and tokenizer settings and the bytes of every input file
(no path, size or mtime), so the same data gives the same experiment ids in any folder;
`TextChecksum` / `text_checksum` hash a domain's documents (`domains.text_sha256`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from mixopt.config import DomainConfig, ExperimentConfig
from mixopt.corpus.readers import CorpusError, _detail, expand_globs
from mixopt.corpus.shards import file_sha256
from mixopt.targets import NEW_DOMAIN_FIELDS

FORMAT_VERSION = 2
"""Bump when the shard format or the split / sampling rules change (invalidates old manifests)."""


class TextChecksum:
    """Running sha256 of a sequence of documents: each is hashed as its UTF-8 byte length (8 bytes,
    little-endian) followed by its UTF-8 bytes, so document boundaries count and no separator can
    collide with the text."""

    def __init__(self) -> None:
        """Start an empty checksum."""
        self._sha = hashlib.sha256()

    def add(self, text: str) -> None:
        """Add one document."""
        data = text.encode("utf-8")
        self._sha.update(len(data).to_bytes(8, "little"))
        self._sha.update(data)

    def hexdigest(self) -> str:
        """Hex sha256 of the documents added so far."""
        return self._sha.hexdigest()


def text_checksum(docs: Iterable[str]) -> str:
    """Hex sha256 of documents as `TextChecksum` hashes them (the domain checksum of the corpus)."""
    h = TextChecksum()
    for text in docs:
        h.add(text)
    return h.hexdigest()


def _file_digest(path: Path, known: dict, seen: dict) -> str:
    """sha256 of a file's bytes, streamed; taken from `known` when its size and mtime still match.

    `known` and `seen` map the resolved path to `[size, mtime_ns, sha256]`: the path and the stat
    only key this cache, they never enter the fingerprint. Every file hashed or reused is put in `seen`.
    """
    st = path.stat()
    key = str(path.resolve())
    hit = known.get(key)
    if isinstance(hit, list) and len(hit) == 3 and hit[:2] == [st.st_size, st.st_mtime_ns]:
        digest = str(hit[2])
    else:
        digest = file_sha256(path)
    seen[key] = [st.st_size, st.st_mtime_ns, digest]
    return digest


def _domain_inputs(d: DomainConfig, known: dict, seen: dict) -> dict:
    """A domain's (or eval set's) settings and the sha256 of each file, for the fingerprint."""
    try:
        paths = expand_globs(d)
        files = [_file_digest(p, known, seen) for p in paths]
    except OSError as e:
        raise CorpusError(f"domain '{d.name}': cannot read input ({_detail(e)})") from None
    settings = d.model_dump(mode="json", exclude={"paths", "held_out"})
    for key, default in NEW_DOMAIN_FIELDS.items():  # fields added later: absent at their defaults
        if settings.get(key, default) == default:
            settings.pop(key, None)
    out = {"domain": settings, "files": files}
    if d.held_out:  # which files are held out, by position (no path enters)
        held = {os.path.realpath(p) for p in expand_globs(DomainConfig(name=d.name, paths=d.held_out))}
        out["held_out"] = [i for i, p in enumerate(paths) if os.path.realpath(p) in held]
    return out


def compute_fingerprint(cfg: ExperimentConfig, domains: list[DomainConfig], cache: dict | None = None,
                        eval_sets: list[DomainConfig] | None = None) -> str:
    """Hash of the corpus and tokenizer settings and of the bytes of every input file.

    Per domain it covers the name, format and text field and the sha256 of each matched file in
    reading order (the globs in the order given, each glob's matches sorted): the order decides
    the documents' order, but no path, size or mtime enters. So the same data and settings give
    the same fingerprint in any output folder (the builtin and synthetic sources are written
    there) and wherever the input files lie.

    `cache` (optional) maps resolved paths to `[size, mtime_ns, sha256]` from an earlier call: a
    file whose size and mtime match is not re-read. It is replaced in place by the entries of the
    files read now, ready to be stored.
    """
    known = dict(cache or {})
    seen: dict = {}
    inputs = [_domain_inputs(d, known, seen) for d in domains]
    tok = cfg.tokenizer
    tok_file = None
    if tok.kind == "file" and tok.path and Path(tok.path).is_file():
        tok_file = _file_digest(Path(tok.path), known, seen)
    payload = {
        "format_version": FORMAT_VERSION,
        "corpus": cfg.corpus.model_dump(mode="json", exclude={"domains"}),
        "tokenizer": tok.model_dump(mode="json", exclude={"path"}),
        "tokenizer_file": tok_file,
        "inputs": inputs,
    }
    if eval_sets:  # only then, so corpora without eval sets keep their fingerprint
        payload["eval_sets"] = [_domain_inputs(d, known, seen) for d in eval_sets]
    if cache is not None:
        cache.clear()
        cache.update(seen)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
