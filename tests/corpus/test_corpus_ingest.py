"""prepare_corpus: shards decode to the documents, the split is sound, reuse skips work, bad input is inert."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from mixopt.config import DomainConfig
from mixopt.corpus import ingest
from mixopt.corpus.ingest import prepare_corpus, verify_shards
from mixopt.corpus.readers import CorpusError, read_documents
from mixopt.corpus.shards import read_tokens
from mixopt.corpus.split import is_validation
from mixopt.corpus.tokenizer import load_tokenizer


def _decode_docs(path: str, tok, eot: int) -> list[str]:
    tokens = np.asarray(read_tokens(path))
    assert tokens.size and tokens[-1] == eot
    cuts = np.flatnonzero(tokens == eot)
    starts = np.concatenate([[0], cuts[:-1] + 1])
    return [tok.decode(tokens[s:e].tolist()) for s, e in zip(starts, cuts)]


def _snapshot(corpus: Path) -> dict[str, tuple[int, bytes]]:
    """mtime and bytes of every file under the corpus folder except the generated sources."""
    return {
        str(p.relative_to(corpus)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(corpus.rglob("*"))
        if p.is_file() and "source" not in p.parts
    }


def _write_jsonl(path: Path, docs: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")
    return path


def test_shards_decode_back_to_the_documents(prepared) -> None:
    cfg, out, info = prepared
    bundle = load_tokenizer(info.tokenizer_path)
    assert (bundle.vocab_size, bundle.eot_id) == (info.vocab_size, info.eot_id)
    source = out / "corpus" / "source"
    assert [d.name for d in info.domains] == ["synth_a", "synth_b", "synth_c"]
    for shard in info.domains:
        docs = read_documents(DomainConfig(name=shard.name, paths=[str(source / f"{shard.name}.jsonl")]))
        train = _decode_docs(shard.train_path, bundle.tokenizer, info.eot_id)
        val = _decode_docs(shard.val_path, bundle.tokenizer, info.eot_id)
        assert sorted(train + val) == sorted(docs)  # every document exactly once
        assert not set(train) & set(val)
        assert (shard.train_docs, shard.val_docs) == (len(train), len(val)) and val and train
        assert all(not is_validation(t, cfg.corpus.val_fraction) for t in train)
        assert sum(is_validation(t, cfg.corpus.val_fraction) for t in val) >= len(val) - 1  # one may be moved
        assert shard.train_tokens * 2 == os.path.getsize(shard.train_path)
        assert shard.val_tokens * 2 == os.path.getsize(shard.val_path)
    verify_shards(info.domains)


def test_split_and_shards_are_deterministic(prepared, tmp_path: Path, synthetic_cfg) -> None:
    _, _, info = prepared
    again = prepare_corpus(synthetic_cfg(), tmp_path)
    assert again.fingerprint != "" and again.vocab_size == info.vocab_size
    assert [(d.train_sha256, d.val_sha256) for d in again.domains] == [
        (d.train_sha256, d.val_sha256) for d in info.domains
    ]


def test_reuse_skips_work_and_keeps_files(tmp_path: Path, synthetic_cfg, monkeypatch) -> None:
    cfg = synthetic_cfg()
    first = prepare_corpus(cfg, tmp_path)
    corpus = tmp_path / "corpus"
    before = _snapshot(corpus)

    def boom(*args, **kwargs):
        raise AssertionError("re-tokenised on reuse")

    monkeypatch.setattr(ingest, "_tokenize_domain", boom)
    monkeypatch.setattr(ingest.sets, "scan", boom)
    second = prepare_corpus(cfg, tmp_path)
    assert second == first
    assert _snapshot(corpus) == before
    assert not [p for p in corpus.iterdir() if p.name.startswith(".")]


def test_corrupted_shard_is_detected_and_rebuilt(tmp_path: Path, synthetic_cfg) -> None:
    cfg = synthetic_cfg()
    info = prepare_corpus(cfg, tmp_path)
    target = Path(info.domains[1].val_path)
    data = bytearray(target.read_bytes())
    data[3] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(CorpusError, match=f"{target}: checksum mismatch"):
        verify_shards(info.domains)
    rebuilt = prepare_corpus(cfg, tmp_path)
    assert rebuilt == info
    verify_shards(rebuilt.domains)
    target.unlink()
    with pytest.raises(CorpusError, match=f"{target}: shard file is missing"):
        verify_shards(info.domains)


def test_bad_input_leaves_earlier_output_untouched(tmp_path: Path, files_cfg) -> None:
    data = tmp_path / "data"
    data.mkdir()
    a = _write_jsonl(data / "a.jsonl", [f"alpha document number {i}" for i in range(30)])
    _write_jsonl(data / "b.jsonl", [f"beta text {i} " * 3 for i in range(30)])
    domains = [{"name": "a", "paths": [str(a)]}, {"name": "b", "paths": [str(data / "b*.jsonl")]}]
    out = tmp_path / "out"
    prepare_corpus(files_cfg(domains), out)
    before = _snapshot(out / "corpus")
    with open(data / "b.jsonl", "a", encoding="utf-8") as f:
        f.write('{"text": "fine"}\n{"text": oops}\n')
    with pytest.raises(CorpusError, match=f"domain 'b': {data / 'b.jsonl'}:32: not valid JSON"):
        prepare_corpus(files_cfg(domains), out)
    assert _snapshot(out / "corpus") == before
    assert sorted(p.name for p in (out / "corpus").iterdir()) == ["a", "b", "manifest.json", "tokenizer.json"]


def test_changed_input_rebuilds_and_stale_domains_go(tmp_path: Path, files_cfg) -> None:
    a = _write_jsonl(tmp_path / "a.jsonl", [f"alpha {i}" for i in range(20)])
    b = _write_jsonl(tmp_path / "b.jsonl", [f"beta {i}" for i in range(20)])
    out = tmp_path / "out"
    both = [{"name": "a", "paths": [str(a)]}, {"name": "b", "paths": [str(b)]}]
    first = prepare_corpus(files_cfg(both), out)
    _write_jsonl(a, [f"alpha {i}" for i in range(25)])
    second = prepare_corpus(files_cfg(both), out)
    assert second.fingerprint != first.fingerprint
    assert second.domains[0].train_docs + second.domains[0].val_docs == 25
    only_a = prepare_corpus(files_cfg(both[:1]), out)
    assert [d.name for d in only_a.domains] == ["a"] and not (out / "corpus" / "b").exists()


def _texts(split_value_below: float | None, n: int) -> list[str]:
    """n texts that the hash puts in validation (below the value) or, with None, any texts."""
    found, i = [], 0
    while len(found) < n:
        text = f"candidate text {i}"
        if split_value_below is None or is_validation(text, split_value_below):
            found.append(text)
        i += 1
    return found


def test_every_domain_gets_train_and_validation(tmp_path: Path, files_cfg) -> None:
    all_train = _write_jsonl(tmp_path / "t.jsonl", [t for t in _texts(None, 60) if not is_validation(t, 0.2)][:3])
    all_val = _write_jsonl(tmp_path / "v.jsonl", _texts(0.2, 2))
    cfg = files_cfg([{"name": "t", "paths": [str(all_train)]}, {"name": "v", "paths": [str(all_val)]}])
    cfg.corpus.val_fraction = 0.2
    info = prepare_corpus(cfg, tmp_path / "out")
    assert [(d.train_docs, d.val_docs) for d in info.domains] == [(2, 1), (1, 1)]


def test_single_document_domain_is_an_error(tmp_path: Path, files_cfg) -> None:
    (tmp_path / "one.txt").write_text("just one document", encoding="utf-8")
    cfg = files_cfg([{"name": "solo", "paths": [str(tmp_path / "*.txt")], "format": "txt"}])
    with pytest.raises(CorpusError, match="domain 'solo' has only one document"):
        prepare_corpus(cfg, tmp_path / "out")
    assert not (tmp_path / "out" / "corpus").exists()


def test_reserved_name_and_missing_tokenizer(tmp_path: Path, files_cfg) -> None:
    path = _write_jsonl(tmp_path / "a.jsonl", ["one", "two", "three"])
    with pytest.raises(CorpusError, match="domain name 'source' is reserved"):
        prepare_corpus(files_cfg([{"name": "source", "paths": [str(path)]}]), tmp_path / "out")
    cfg = files_cfg([{"name": "a", "paths": [str(path)]}], kind="file", path=str(tmp_path / "missing.json"))
    with pytest.raises(CorpusError, match="missing.json: tokenizer file not found"):
        prepare_corpus(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_loaded_tokenizer_is_used(prepared, tmp_path: Path, files_cfg) -> None:
    _, _, info = prepared
    path = _write_jsonl(tmp_path / "a.jsonl", [f"some words {i}" for i in range(10)])
    cfg = files_cfg([{"name": "a", "paths": [str(path)]}], kind="file", path=info.tokenizer_path)
    got = prepare_corpus(cfg, tmp_path / "out")
    assert (got.vocab_size, got.eot_id) == (info.vocab_size, info.eot_id)
    assert Path(got.tokenizer_path).read_bytes() == Path(info.tokenizer_path).read_bytes()


def test_fingerprint_follows_content_not_folders(tmp_path: Path, synthetic_cfg, files_cfg) -> None:
    """Same data and settings in two output folders (and input files in two places): one fingerprint."""
    cfg = synthetic_cfg()
    one, two = prepare_corpus(cfg, tmp_path / "one"), prepare_corpus(cfg, tmp_path / "two")
    assert one.fingerprint == two.fingerprint and one.domain_checksums == two.domain_checksums
    assert list(one.domain_checksums) == ["synth_a", "synth_b", "synth_c"]

    def files_corpus(folder: Path) -> list[dict]:
        folder.mkdir()
        _write_jsonl(folder / "a1.jsonl", [f"alpha document {i}" for i in range(20)])
        _write_jsonl(folder / "a2.jsonl", [f"alpha again {i}" for i in range(20)])
        _write_jsonl(folder / "b.jsonl", [f"beta text {i}" for i in range(20)])
        return [{"name": "a", "paths": [str(folder / "a*.jsonl")]}, {"name": "b", "paths": [str(folder / "b.jsonl")]}]

    here, there = files_corpus(tmp_path / "data1"), files_corpus(tmp_path / "data2")
    os.utime(tmp_path / "data2" / "b.jsonl", ns=(1, 1))
    first = prepare_corpus(files_cfg(here), tmp_path / "out1")
    second = prepare_corpus(files_cfg(there), tmp_path / "out2")
    assert first.fingerprint == second.fingerprint
    assert first.domain_checksums == second.domain_checksums

    # One changed byte changes the fingerprint (even with size and mtime kept) ...
    target = tmp_path / "data2" / "a2.jsonl"
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[15] = ord("A") if data[15] != ord("A") else ord("B")
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert ingest.compute_fingerprint(files_cfg(there), [DomainConfig(**d) for d in there]) != first.fingerprint
    # ... and so does the order of the files within a domain.
    swapped = [{"name": "a", "paths": [str(tmp_path / "data1" / n) for n in ("a2.jsonl", "a1.jsonl")]}, here[1]]
    assert ingest.compute_fingerprint(files_cfg(swapped), [DomainConfig(**d) for d in swapped]) != first.fingerprint


def test_hash_cache_skips_unchanged_files(tmp_path: Path, files_cfg, monkeypatch) -> None:
    a = _write_jsonl(tmp_path / "a.jsonl", [f"alpha {i}" for i in range(20)])
    domains = [{"name": "a", "paths": [str(a)]}]
    cfg, configs = files_cfg(domains), [DomainConfig(**d) for d in domains]
    cache: dict = {}
    fp = ingest.compute_fingerprint(cfg, configs, cache)
    assert list(cache) == [str(a.resolve())]
    monkeypatch.setattr("mixopt.corpus.fingerprint.file_sha256", lambda p: pytest.fail(f"re-hashed {p}"))
    assert ingest.compute_fingerprint(cfg, configs, cache) == fp
    _write_jsonl(a, [f"alpha {i}" for i in range(21)])  # new size: the cache entry no longer applies
    with pytest.raises(pytest.fail.Exception, match="re-hashed"):
        ingest.compute_fingerprint(cfg, configs, cache)
