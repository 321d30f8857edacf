"""Tokenizer: deterministic byte-level BPE, exact round trips, EOT handling, clear load errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixopt.config import TokenizerConfig
from mixopt.corpus.readers import CorpusError
from mixopt.corpus.synthetic import synthetic_documents
from mixopt.corpus.tokenizer import EOT_TOKEN, build_tokenizer, load_tokenizer, train_bpe

TEXTS = synthetic_documents(0, 30) + ["def f(x):\n    return x  # ünïcödé 😀\n"] * 3


def test_training_is_deterministic() -> None:
    assert train_bpe(TEXTS, 300).to_str() == train_bpe(TEXTS, 300).to_str()


@pytest.mark.parametrize(
    "text",
    ["plain words", "  leading spaces\r\n\ttabs", "ünïcödé 😀 中文", f"a literal {EOT_TOKEN} inside", "\x00\x7f"],
)
def test_round_trip_and_no_injected_eot(text: str) -> None:
    tok = train_bpe(TEXTS, 300)
    ids = tok.encode(text).ids
    assert tok.decode(ids) == text
    assert tok.token_to_id(EOT_TOKEN) not in ids


def test_build_saves_and_reloads(tmp_path: Path) -> None:
    bundle = build_tokenizer(TokenizerConfig(vocab_size=300), iter(TEXTS), tmp_path)
    assert bundle.vocab_size == 300 and bundle.tokenizer.id_to_token(bundle.eot_id) == EOT_TOKEN
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    assert (loaded.vocab_size, loaded.eot_id) == (bundle.vocab_size, bundle.eot_id)
    assert loaded.tokenizer.encode(TEXTS[0]).ids == bundle.tokenizer.encode(TEXTS[0]).ids
    copied = build_tokenizer(TokenizerConfig(kind="file", path=str(tmp_path / "tokenizer.json")), [], tmp_path / "c")
    assert (tmp_path / "c" / "tokenizer.json").is_file() and copied.vocab_size == 300


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="tokenizer file not found"):
        load_tokenizer(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json", encoding="utf-8")
    with pytest.raises(CorpusError, match="not a valid tokenizer.json"):
        load_tokenizer(bad)
    tok = train_bpe(TEXTS, 300)
    data = json.loads(tok.to_str())
    data["added_tokens"] = []
    del data["model"]["vocab"][EOT_TOKEN]
    no_eot = tmp_path / "no_eot.json"
    no_eot.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CorpusError, match="no '<\\|endoftext\\|>' token"):
        load_tokenizer(no_eot)
