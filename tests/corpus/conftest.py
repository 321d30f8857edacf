"""Shared fixtures of the corpus tests: tiny configs and a synthetic corpus prepared once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mixopt.config import ExperimentConfig

_SMALL_TOKENIZER = {"vocab_size": 300, "sample_bytes_per_domain": 20_000}


def _synthetic(**corpus: object) -> ExperimentConfig:
    data = {
        "corpus": {"source": "synthetic", "synthetic_domains": 3, "synthetic_docs": 40, **corpus},
        "tokenizer": dict(_SMALL_TOKENIZER),
    }
    return ExperimentConfig.model_validate(data)


def _files(domains: list[dict], **tokenizer: object) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"corpus": {"source": "files", "domains": domains}, "tokenizer": {**_SMALL_TOKENIZER, **tokenizer}}
    )


@pytest.fixture
def synthetic_cfg() -> Callable[..., ExperimentConfig]:
    """Factory of a tiny synthetic experiment (3 domains x 40 docs, 300-token BPE)."""
    return _synthetic


@pytest.fixture
def files_cfg() -> Callable[..., ExperimentConfig]:
    """Factory of an experiment that reads the given user domains with a small BPE."""
    return _files


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory):
    """A synthetic corpus prepared once per test module: (config, out_dir, CorpusInfo)."""
    from mixopt.corpus.ingest import prepare_corpus

    out: Path = tmp_path_factory.mktemp("prepared")
    cfg = _synthetic()
    return cfg, out, prepare_corpus(cfg, out)
