"""Uint32 shards for large vocabularies, pre-tokenized domains (`format: tokens`) and eval sets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from mixopt.config import ConfigError, ExperimentConfig, parse_config
from mixopt.corpus.ingest import prepare_corpus
from mixopt.corpus.readers import CorpusError
from mixopt.corpus.shards import read_tokens, verify_shards
from mixopt.corpus.tokenizer import EOT_TOKEN
from mixopt.corpus.tokens import count_tokens

BIG = 70_000  # > 65,536: needs uint32


def big_tokenizer(path: Path, n: int = BIG) -> Path:
    """A WordLevel tokenizer with `n` tokens (`w0` ... ), `<|endoftext|>` last: built in code, in milliseconds."""
    vocab = {f"w{i}": i for i in range(n - 2)}
    vocab["[UNK]"], vocab[EOT_TOKEN] = n - 2, n - 1
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(str(path))
    return path


def write_docs(path: Path, docs: list[list[int]], sep: int, dtype: str = "uint32", npy: bool = True) -> Path:
    """Documents as one flat token file, each followed by `sep`."""
    flat = np.array([t for d in docs for t in [*d, sep]], dtype=dtype)
    if npy:
        np.save(path, flat)
    else:
        flat.astype(np.dtype(dtype).newbyteorder("<")).tofile(path)
    return path


def random_docs(rng: np.random.Generator, n: int, vocab: int, sep: int) -> list[list[int]]:
    out = []
    for _ in range(n):
        d = rng.integers(0, vocab, size=int(rng.integers(5, 40)))
        d[d == sep] = 1
        out.append(d.tolist())
    return out


def _cfg(domains: list[dict], tokenizer: dict, **target) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"corpus": {"source": "files", "domains": domains},
                                            "tokenizer": tokenizer, "target": target})


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_text_with_a_vocabulary_over_65536_gives_uint32_shards(tmp_path: Path) -> None:
    tok_path = big_tokenizer(tmp_path / "big.json")
    rng = np.random.default_rng(0)
    docs = [" ".join(f"w{i}" for i in rng.integers(60_000, BIG - 2, size=12)) for _ in range(30)]
    src = tmp_path / "a.jsonl"
    src.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    info = prepare_corpus(_cfg([{"name": "a", "paths": [str(src)]}], {"kind": "file", "path": str(tok_path)}),
                          tmp_path / "out")
    assert info.vocab_size == BIG and info.eot_id == BIG - 1
    shard = info.domains[0]
    assert shard.dtype == "uint32"
    assert Path(shard.train_path).stat().st_size == 4 * shard.train_tokens
    tokens = np.concatenate([read_tokens(shard.train_path, "uint32"), read_tokens(shard.val_path, "uint32")])
    assert tokens.max() == BIG - 1 and (tokens[tokens != BIG - 1] >= 60_000).all()  # ids above uint16 survive
    assert sorted(tokens[tokens != BIG - 1].tolist()) == sorted(int(w[1:]) for d in docs for w in d.split())
    verify_shards(info.domains)  # the checksum follows the dtype
    again = prepare_corpus(_cfg([{"name": "a", "paths": [str(src)]}], {"kind": "file", "path": str(tok_path)}),
                           tmp_path / "out")
    assert again == info  # reused from the manifest, dtype included


def test_small_vocabulary_keeps_uint16(prepared) -> None:
    _, _, info = prepared
    assert {d.dtype for d in info.domains} == {"uint16"}
    for d in info.domains:
        assert Path(d.train_path).stat().st_size == 2 * d.train_tokens


def test_token_domains_npy_and_bin_with_tokenizer_none(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    sep = 3
    a_docs, b_docs = random_docs(rng, 40, BIG, sep), random_docs(rng, 30, BIG, sep)
    write_docs(tmp_path / "a0.npy", a_docs[:20], sep)
    write_docs(tmp_path / "a1.npy", a_docs[20:], sep, dtype="int64")  # any integer .npy, one dtype per file
    write_docs(tmp_path / "b.bin", b_docs, sep, npy=False)
    domains = [{"name": "a", "paths": [str(tmp_path / "a*.npy")], "format": "tokens", "separator_id": sep},
               {"name": "b", "paths": [str(tmp_path / "b.bin")], "format": "tokens", "dtype": "uint32",
                "separator_id": sep}]
    cfg = _cfg(domains, {"kind": "none", "vocab_size": BIG})
    # the prior from file sizes and .npy headers alone
    assert count_tokens(cfg.corpus.domains[0]) == sum(len(d) + 1 for d in a_docs)
    assert count_tokens(cfg.corpus.domains[1]) == sum(len(d) + 1 for d in b_docs)
    info = prepare_corpus(cfg, tmp_path / "out")
    assert info.tokenizer_path == "" and info.vocab_size == BIG and info.eot_id == sep
    a, b = info.domains
    assert (a.dtype, a.train_docs + a.val_docs, a.train_tokens + a.val_tokens) == \
        ("uint32", 40, count_tokens(cfg.corpus.domains[0]))
    assert b.train_docs + b.val_docs == 30 and a.val_docs >= 1 and b.val_docs >= 1
    # every document lands whole on one side
    got = []
    for path in (a.train_path, a.val_path):
        flat = read_tokens(path, "uint32")
        cuts = np.flatnonzero(flat == sep)
        got += [flat[s + 1:e].tolist() for s, e in zip(np.r_[-1, cuts[:-1]], cuts)]
    assert sorted(got) == sorted(a_docs)
    again = prepare_corpus(cfg, tmp_path / "out")
    assert again == info


def test_held_out_files_are_the_validation_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    docs = [random_docs(rng, 10, 500, 0) for _ in range(3)]
    for i, d in enumerate(docs):
        write_docs(tmp_path / f"part{i}.npy", d, 0, dtype="uint16")
    dom = {"name": "a", "paths": [str(tmp_path / "part*.npy")], "format": "tokens", "separator_id": 0,
           "dtype": "uint16", "held_out": [str(tmp_path / "part2.npy")]}
    info = prepare_corpus(_cfg([dom], {"kind": "none", "vocab_size": 500}), tmp_path / "out")
    shard = info.domains[0]
    assert shard.dtype == "uint16" and (shard.train_docs, shard.val_docs) == (20, 10)
    np.testing.assert_array_equal(read_tokens(shard.val_path), np.load(tmp_path / "part2.npy"))


def test_eval_sets_are_held_out_whole_and_never_trained_on(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    write_docs(tmp_path / "train.npy", random_docs(rng, 20, 900, 0), 0)
    eval_docs = random_docs(rng, 7, 900, 0)
    write_docs(tmp_path / "eval.npy", eval_docs, 0)
    dom = {"name": "a", "paths": [str(tmp_path / "train.npy")], "format": "tokens", "separator_id": 0}
    ev = {"name": "bench", "paths": [str(tmp_path / "eval.npy")], "format": "tokens", "separator_id": 0}
    cfg = _cfg([dom], {"kind": "none", "vocab_size": 900}, eval_sets=[ev], weights={"bench": 1.0})
    info = prepare_corpus(cfg, tmp_path / "out")
    (e,) = info.eval_sets
    assert e.train_path == "" and e.val_docs == 7 and e.val_tokens == sum(len(d) + 1 for d in eval_docs)
    assert Path(e.val_path).parent.parent.name == ".eval"
    assert [d.name for d in info.domains] == ["a"]
    assert prepare_corpus(cfg, tmp_path / "out") == info
    # the fingerprint covers the eval set's content
    write_docs(tmp_path / "eval.npy", eval_docs[:-1], 0)
    assert prepare_corpus(cfg, tmp_path / "out").fingerprint != info.fingerprint


@pytest.mark.parametrize("case, message", [
    ("id_too_big", r"big\.npy: domain 'a': token id 1000 at position 2 is outside the vocabulary \(vocab_size 1000\)"),
    ("bin_size", r"odd\.bin: domain 'a': dtype mismatch: 7 bytes is not a whole number of uint16 tokens"),
    ("npy_dtype", r"wide\.npy: domain 'a': dtype mismatch: the file holds int64, the domain declares dtype uint32"),
    ("raw_no_dtype", r"raw\.bin: domain 'a': raw token files need the domain's dtype"),
    ("overlap", r"target\.eval_sets 'bench': file .*good\.npy is also read by training domain 'a'"),
])
def test_bad_token_input_is_one_line_and_leaves_the_corpus(tmp_path: Path, case: str, message: str) -> None:
    write_docs(tmp_path / "good.npy", [[1, 2], [4, 5, 6]], 0)
    good = {"name": "a", "paths": [str(tmp_path / "good.npy")], "format": "tokens", "separator_id": 0}
    out = tmp_path / "out"
    prepare_corpus(_cfg([good], {"kind": "none", "vocab_size": 1000}), out)
    before = _snapshot(out)
    dom, target = dict(good), {}
    if case == "id_too_big":
        np.save(tmp_path / "big.npy", np.array([1, 2, 1000, 0], dtype=np.uint32))
        dom["paths"] = [str(tmp_path / "big.npy")]
    elif case == "bin_size":
        (tmp_path / "odd.bin").write_bytes(b"\x01" * 7)
        dom.update(paths=[str(tmp_path / "odd.bin")], dtype="uint16")
    elif case == "npy_dtype":
        np.save(tmp_path / "wide.npy", np.array([1, 2, 0], dtype=np.int64))
        dom.update(paths=[str(tmp_path / "wide.npy")], dtype="uint32")
    elif case == "raw_no_dtype":
        (tmp_path / "raw.bin").write_bytes(b"\x01" * 8)
        dom["paths"] = [str(tmp_path / "raw.bin")]
    else:
        target = {"eval_sets": [{**good, "name": "bench"}]}
    with pytest.raises(CorpusError, match=message) as err:
        prepare_corpus(_cfg([dom], {"kind": "none", "vocab_size": 1000}, **target), out)
    assert "\n" not in str(err.value)
    assert _snapshot(out) == before


@pytest.mark.parametrize("data, message", [
    ({"tokenizer": {"kind": "none"}}, "kind is 'none' but no vocab_size is given"),
    ({"corpus": {"source": "files", "domains": [{"name": "a", "paths": ["x"], "format": "tokens"}]}},
     "format 'tokens' needs separator_id"),
    ({"corpus": {"source": "files", "domains": [{"name": "a", "paths": ["x"], "format": "tokens", "separator_id": 0}]}},
     "set tokenizer.kind to 'file'"),
    ({"corpus": {"source": "files", "domains": [{"name": "a", "paths": ["x"]}]},
      "tokenizer": {"kind": "none", "vocab_size": 70000}}, "needs every domain and eval set in format 'tokens'"),
    ({"corpus": {"source": "files", "domains": [{"name": "a", "paths": ["x"]}]},
      "target": {"eval_sets": [{"name": "a", "paths": ["y"]}]}}, "are also domain names"),
    ({"corpus": {"source": "files", "domains": [{"name": "a", "paths": ["x"]}]},
      "target": {"groups": {"g": {"nope": 1.0}}}}, r"target.groups.g names unknown domains or eval sets \['nope'\]"),
    ({"corpus": {"source": "files", "domains": [{"name": "a", "paths": ["x"]}]},
      "target": {"weights": {"zz": 1.0}}}, "target.weights names unknown domains"),
    ({"tokenizer": {"kind": "none", "vocab_size": 999}, "corpus": {"source": "files", "domains": [
        {"name": "a", "paths": ["x"], "format": "tokens", "separator_id": 0}]}, "target": {"eval_sets": [
            {"name": "e", "paths": ["y"], "format": "tokens", "separator_id": 0, "held_out": ["y"]}]}},
     "target.eval_sets 'e': held_out does not apply"),
    ({"target": {"groups": {"g": {"a": 0.0}}}}, r"target.groups.g: weights must not all be zero"),
    ({"corpus": {"source": "files", "domains": [{"name": "a", "paths": ["x"], "dtype": "uint16"}]}},
     "apply to format 'tokens' only"),
])
def test_config_errors_name_the_field(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data, source="exp.yaml")


def test_relative_token_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    cfg = parse_config({"corpus": {"source": "files", "domains": [
        {"name": "a", "paths": ["t/*.npy"], "format": "tokens", "separator_id": 0, "held_out": ["t/9.npy"]}]},
        "tokenizer": {"kind": "none", "vocab_size": 1000},
        "target": {"eval_sets": [{"name": "e", "paths": ["e.npy"], "format": "tokens", "separator_id": 0}]}},
        base_dir=tmp_path)
    assert cfg.corpus.domains[0].held_out == [str(tmp_path / "t/9.npy")]
    assert cfg.target.eval_sets[0].paths == [str(tmp_path / "e.npy")]


def test_a_text_eval_set_is_tokenised_whole_with_the_corpus_tokenizer(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    words = [f"w{i}" for i in range(50)]
    for name in ("a", "e"):
        lines = [json.dumps({"text": " ".join(rng.choice(words, 8))}) for _ in range(25)]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    cfg = ExperimentConfig.model_validate({
        "corpus": {"source": "files", "domains": [{"name": "a", "paths": [str(tmp_path / "a.jsonl")]}]},
        "tokenizer": {"vocab_size": 300, "sample_bytes_per_domain": 20_000},
        "target": {"eval_sets": [{"name": "held", "paths": [str(tmp_path / "e.jsonl")]}]}})
    info = prepare_corpus(cfg, tmp_path / "out")
    (e,) = info.eval_sets
    assert (e.train_path, e.val_docs, e.dtype) == ("", 25, "uint16") and len(e.text_sha256) == 64
    assert not (Path(e.val_path).parent / "train.bin").exists()
    tok = Tokenizer.from_file(info.tokenizer_path)
    flat = read_tokens(e.val_path)
    assert (flat == info.eot_id).sum() == 25
    assert tok.decode(flat[: np.flatnonzero(flat == info.eot_id)[0]].tolist()).split()[0] in words
    assert prepare_corpus(cfg, tmp_path / "out") == info
