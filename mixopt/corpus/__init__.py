"""The corpus: read domains, split them, train a tokenizer and write token shards (uint16, or uint32 for
vocabularies over 65,536 tokens); pre-tokenized domains (`tokens.py`) and eval sets (`sets.py`).

Public entry points: `prepare_corpus` (the whole pipeline, with reuse), `verify_shards`, `count_tokens`
(a pre-tokenized domain's size from file sizes alone),
`iter_documents` (read one domain), `write_builtin_corpus`, `write_synthetic_corpus`,
`load_tokenizer` / `build_tokenizer`, and `CorpusError` for every bad-input failure.
"""

from mixopt.corpus.builtin import write_builtin_corpus
from mixopt.corpus.ingest import CorpusInfo, prepare_corpus
from mixopt.corpus.readers import CorpusError, iter_documents, read_documents
from mixopt.corpus.shards import read_tokens, verify_shards
from mixopt.corpus.synthetic import write_synthetic_corpus
from mixopt.corpus.tokenizer import EOT_TOKEN, TokenizerBundle, build_tokenizer, load_tokenizer
from mixopt.corpus.tokens import count_tokens

__all__ = [
    "EOT_TOKEN",
    "CorpusError",
    "CorpusInfo",
    "TokenizerBundle",
    "build_tokenizer",
    "count_tokens",
    "iter_documents",
    "load_tokenizer",
    "prepare_corpus",
    "read_documents",
    "read_tokens",
    "verify_shards",
    "write_builtin_corpus",
    "write_synthetic_corpus",
]
