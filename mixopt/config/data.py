"""What the experiment reads and aims at: the domains, the corpus, the tokenizer and the target."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from mixopt.config.base import _Strict


class DomainConfig(_Strict):
    """One data domain: a set of files read with one format."""

    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$", max_length=64)
    """Domain name, used as a column label and in the warehouse (letters, digits, `_ . -`); `source:topic`
    makes it a topic of a source (hierarchical domains, see `design.hierarchy`)."""
    paths: list[str] = Field(min_length=1)
    """File globs (relative paths resolve against the config file's folder); `**` recurses."""
    format: Literal["jsonl", "jsonl.gz", "parquet", "txt", "tokens", "builtin"] = "jsonl"
    """File format: one JSON object per line (optionally gzipped), Parquet, plain text (one document per
    file), or `tokens`: flat token files already tokenized (`.npy`, or raw `.bin` with `dtype`), documents
    separated by `separator_id` (as OLMo and olmix store them). `builtin` (eval sets only): text that ships
with the pinned installation, `paths: [<name>]` naming one of `mixopt.corpus.builtin.EVAL_SOURCES`
(`scientific_python`: the pinned numpy, scipy and scikit-learn source)."""
    text_field: str = "text"
    """Name of the field (JSON key or Parquet column) that holds the document text."""
    dtype: Literal["uint16", "uint32", "int32", "int64"] | None = None
    """`format: tokens`: the token ids' type (little-endian). Required for raw `.bin` files; for `.npy`
    files, if given, the file's own dtype must match it."""
    separator_id: int | None = Field(None, ge=0)
    """`format: tokens`: the id that ends each document (the tokenizer's EOS/EOT); required there."""
    held_out: list[str] = Field(default_factory=list)
    """`format: tokens`: globs of files (among `paths`' matches) used whole for validation; empty: the
    documents are split by a hash of their tokens, like text domains."""

    @model_validator(mode="after")
    def _check_tokens(self) -> "DomainConfig":
        if self.format == "builtin" and len(self.paths) != 1:
            raise ValueError(f"'{self.name}': format 'builtin' takes one path, the built-in set's name")
        if self.format == "tokens":
            if self.separator_id is None:
                raise ValueError(f"domain '{self.name}': format 'tokens' needs separator_id (the id ending a document)")
        elif self.dtype is not None or self.separator_id is not None or self.held_out:
            raise ValueError(f"domain '{self.name}': dtype, separator_id and held_out apply to format 'tokens' only")
        return self


class CorpusConfig(_Strict):
    """Where the documents come from and how they are split."""

    source: Literal["builtin", "synthetic", "files"] = "builtin"
    """`builtin`: real text found in the Python installation (code, C headers, docs, licences, READMEs);
    `synthetic`: a small generated multi-domain corpus for fast tests; `files`: the `domains` below."""
    domains: list[DomainConfig] = Field(default_factory=list)
    """The user's domains (required when `source` is `files`)."""
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    """Fraction of each domain's documents held out for validation (chosen by a hash of the text)."""
    max_bytes_per_domain: int = Field(4_000_000, gt=0)
    """Read at most this many bytes of text per domain (keeps the demo fast)."""
    synthetic_domains: int = Field(4, ge=2, le=16)
    """Number of domains the synthetic generator makes."""
    synthetic_docs: int = Field(300, ge=10)
    """Documents per synthetic domain."""

    @model_validator(mode="after")
    def _check(self) -> "CorpusConfig":
        if self.source == "files" and not self.domains:
            raise ValueError("source is 'files' but no domains are listed")
        names = [d.name for d in self.domains]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate domain names: {sorted(dup)}")
        return self


class TokenizerConfig(_Strict):
    """Byte-level BPE trained on a sample of the corpus, or a saved `tokenizer.json`."""

    kind: Literal["bpe", "file", "none"] = "bpe"
    """`bpe` trains a byte-level BPE on a sample of the corpus; `file` loads `path`; `none`: every domain
    is pre-tokenized (`format: tokens`) and `vocab_size` must be given."""
    vocab_size: int = Field(2048, ge=260, le=16_777_216)
    """Vocabulary size of the trained BPE, or of the pre-tokenized data (`kind: none`). Shards are uint16
    up to 65,536 tokens, uint32 above."""
    sample_bytes_per_domain: int = Field(500_000, gt=0)
    """Bytes of training text per domain used to train the BPE."""
    path: str | None = None
    """Path to a `tokenizer.json` (for `kind: file`); relative paths resolve against the config file's folder."""

    @model_validator(mode="after")
    def _check(self) -> "TokenizerConfig":
        if self.kind == "file" and not self.path:
            raise ValueError("kind is 'file' but no path is given")
        if self.kind == "none" and "vocab_size" not in self.model_fields_set:
            raise ValueError("kind is 'none' but no vocab_size is given (the pre-tokenized data's vocabulary)")
        return self


class TargetConfig(_Strict):
    """What to minimise: a weighted combination of per-domain held-out losses (and of eval sets and groups)."""

    weights: dict[str, float] | None = None
    """Weight per domain, eval set or group name; omitted names get 0. Default (null): the mean over the
    groups when `groups` is given, else the mean over all domains."""

    @field_validator("weights")
    @classmethod
    def _nonneg(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return v
        bad = {k: w for k, w in v.items() if not (w >= 0)}
        if bad:
            raise ValueError(f"target weights must be >= 0, got {bad}")
        if sum(v.values()) <= 0:
            raise ValueError("target weights must not all be zero")
        return v

    eval_sets: list[DomainConfig] = Field(default_factory=list)
    """Named held-out sets, in the same formats as domains: every proxy and final run is measured on
    them, nothing trains on them (their files must not be a training domain's)."""
    groups: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Group name -> weights over domain and eval-set names; a group's loss is the weighted mean of its
    members' losses (like olmix's task families), stored in `evals` with kind 'group'."""

    @model_validator(mode="after")
    def _check_sets_and_groups(self) -> "TargetConfig":
        from mixopt.targets import check_target_names

        check_target_names(self)
        return self
