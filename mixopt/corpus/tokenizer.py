"""The tokenizer: a byte-level BPE trained on a sample of the corpus, or a saved `tokenizer.json`.

Token ids are stored as uint16 up to 65,536 tokens and as uint32 above (`shards.shard_dtype`), so a
production vocabulary (Llama-3's 128k, Qwen's 151k) works as is. The end-of-text
token `<|endoftext|>` separates documents; inside a document the literal string `<|endoftext|>`
is encoded as ordinary text (`encode_special_tokens`), so a document can never inject an EOT.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from mixopt.config import TokenizerConfig
from mixopt.corpus.readers import CorpusError, _detail

EOT_TOKEN = "<|endoftext|>"
MAX_VOCAB = 2**32  # ids must fit in uint32 (shards of vocabularies up to 65,536 tokens stay uint16)


class TokenizerBundle(NamedTuple):
    """A ready tokenizer with its vocabulary size and end-of-text id."""

    tokenizer: Tokenizer
    vocab_size: int
    eot_id: int


def train_bpe(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Train a byte-level BPE (GPT-2 style pre-tokenisation) with `<|endoftext|>` as a special token.

    The result is deterministic for a given sequence of texts. Its vocabulary can be smaller than
    `vocab_size` when the sample has too few distinct merges.
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return _finish(tok, "trained tokenizer")


def _finish(tok: Tokenizer, source: str) -> Tokenizer:
    """Check the vocabulary fits uint32 and has the EOT token; encode EOT literals as text."""
    size = tok.get_vocab_size(with_added_tokens=True)
    if size > MAX_VOCAB:
        raise CorpusError(f"{source}: vocabulary has {size} tokens; at most {MAX_VOCAB} fit in uint32")
    if tok.token_to_id(EOT_TOKEN) is None:
        raise CorpusError(f"{source}: no '{EOT_TOKEN}' token in the vocabulary")
    tok.encode_special_tokens = True
    return tok


def load_tokenizer(path: str | Path) -> TokenizerBundle:
    """Load a `tokenizer.json`; a missing or invalid file is a `CorpusError`."""
    p = Path(path)
    if not p.is_file():
        raise CorpusError(f"{p}: tokenizer file not found")
    try:
        tok = Tokenizer.from_file(str(p))
    except Exception as e:  # the Rust side raises plain Exception for any parse failure
        raise CorpusError(f"{p}: not a valid tokenizer.json ({_detail(e)})") from None
    tok = _finish(tok, str(p))
    return _bundle(tok)


def _bundle(tok: Tokenizer) -> TokenizerBundle:
    """Wrap a checked tokenizer with its size and EOT id."""
    eot = tok.token_to_id(EOT_TOKEN)
    assert eot is not None
    return TokenizerBundle(tok, tok.get_vocab_size(with_added_tokens=True), eot)


def build_tokenizer(cfg: TokenizerConfig, samples: Iterable[str], out: str | Path) -> TokenizerBundle:
    """Train a BPE on `samples` (kind `bpe`) or load `cfg.path` (kind `file`); save `<out>/tokenizer.json`.

    `samples` is only consumed for kind `bpe`; the caller picks the deterministic per-domain sample
    of training documents (at most `cfg.sample_bytes_per_domain` bytes each).
    """
    if cfg.kind == "file":
        assert cfg.path is not None
        bundle = load_tokenizer(cfg.path)
    else:
        bundle = _bundle(train_bpe(samples, cfg.vocab_size))
    out_path = Path(out) / "tokenizer.json"
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        bundle.tokenizer.save(str(out_path))
    except OSError as e:
        raise CorpusError(f"{out_path}: cannot write ({_detail(e)})") from None
    return bundle
