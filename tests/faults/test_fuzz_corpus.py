"""Bad corpus files, fuzzed, against a warehouse that already holds a good experiment.

Each example writes one malformed domain file (binary, truncated or fake gzip, malformed JSON at a
known line, huge lines, empty or whitespace-only documents, a missing text field, a glob matching
nothing) next to a good domain and runs the corpus stage (`prepare_experiment`) with the warehouse
of an earlier, good experiment. Every one must fail with a `CorpusError` naming the file (and the
line, for line-based formats); the warehouse's content and the good experiment's corpus output must
stay exactly as they were. About 300 examples.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mixopt.config import ExperimentConfig
from mixopt.corpus.readers import CorpusError
from mixopt.tasks.corpus import prepare_experiment
from mixopt.warehouse import Warehouse
from tests.faults.util import file_digest, snapshot

GOOD_DOCS = [{"text": f"document {i}: " + "the quick brown fox jumps over the lazy dog " * (1 + i % 4)}
             for i in range(40)]
_BAD_LINES = ['{"text": "unterminated', "[1, 2]", '"just a string"', "42", "null", '{"body": "no text field"}',
              '{"text": 5}', '{"text": null}', '{"text": ["a"]}', '{"text": "bad escape \\x"}', '{"text": "\\ud800"}',
              '{"text": "a"} trailing', '{"text": NaN}', "{'text': 'single quotes'}", "{", '{"text": "a",}']


def _config(root: Path, out: Path, bad: dict | None) -> ExperimentConfig:
    domains = [{"name": "good", "paths": [str(root / "good.jsonl")]}]
    if bad is not None:
        domains.append(bad)
    return ExperimentConfig.model_validate({
        "name": "fuzz", "corpus": {"source": "files", "domains": domains},
        "tokenizer": {"vocab_size": 300, "sample_bytes_per_domain": 20_000},
        "runtime": {"out_dir": str(out), "warehouse": str(root / "wh.duckdb"), "progress": False}})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A warehouse holding a prepared good experiment; yields (root, out, warehouse, state)."""
    root = tmp_path_factory.mktemp("corpus_fuzz")
    (root / "good.jsonl").write_text("".join(json.dumps(d) + "\n" for d in GOOD_DOCS))
    out = root / "out"
    with Warehouse(root / "wh.duckdb") as wh:
        prepare_experiment(_config(root, out, None), wh)
        state = (snapshot(wh), file_digest(out / "corpus" / "manifest.json"))
        yield root, out, wh, state
    assert snapshot(root / "wh.duckdb") == state[0]  # also as the file on disk, after closing


def _lines(docs: list[str]) -> bytes:
    return "".join(json.dumps({"text": d}) + "\n" for d in docs).encode()


@st.composite
def bad_files(draw) -> tuple[str, bytes, int | None]:
    """(format, file bytes, the 1-based line the error must name, or None)."""
    kind = draw(st.sampled_from(["binary_jsonl", "binary_txt", "binary_parquet", "truncated_gzip", "not_gzip",
                                 "bad_json_line", "huge_bad_line", "empty", "binary_gzip"]))
    event(kind)
    good = draw(st.lists(st.text(min_size=1, max_size=40).filter(str.strip), max_size=8))
    if kind in ("binary_jsonl", "binary_txt", "binary_parquet"):
        data = draw(st.binary(max_size=200)) + b"\xff\xfe" + draw(st.binary(max_size=200))
        fmt = {"binary_jsonl": "jsonl", "binary_txt": "txt", "binary_parquet": "parquet"}[kind]
        return fmt, data, None
    if kind == "truncated_gzip":
        blob = gzip.compress(_lines(good or ["x"]))
        return "jsonl.gz", blob[: draw(st.integers(0, len(blob) - 1))], None
    if kind == "not_gzip":
        return "jsonl.gz", _lines(good or ["x"]), 1
    if kind == "binary_gzip":
        return "jsonl.gz", gzip.compress(draw(st.binary(max_size=100)) + b"\xff\xfe\n"), None
    if kind in ("bad_json_line", "huge_bad_line"):
        if kind == "bad_json_line":
            bad = draw(st.sampled_from(_BAD_LINES))
        else:
            bad = '{"text": "' + "x" * draw(st.integers(10_000, 300_000))  # a huge, unterminated line
        at = draw(st.integers(0, len(good)))
        lines = _lines(good).splitlines(keepends=True)
        data = b"".join(lines[:at]) + bad.encode() + b"\n" + b"".join(lines[at:])
        return ("jsonl.gz", gzip.compress(data), at + 1) if draw(st.booleans()) else ("jsonl", data, at + 1)
    blank = draw(st.lists(st.sampled_from(["", "   ", "\t", json.dumps({"text": "  \n "})]), max_size=5))
    return "jsonl", "\n".join(blank).encode(), None


@settings(max_examples=280, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=bad_files())
def test_a_bad_domain_file_is_rejected_and_changes_nothing(world, case):
    root, out, wh, (before, manifest) = world
    fmt, data, line = case
    path = root / "bad" / f"bad.{fmt}"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    with pytest.raises(CorpusError) as info:
        prepare_experiment(_config(root, out, {"name": "bad", "paths": [str(path)], "format": fmt}), wh)
    msg = str(info.value)
    assert msg.startswith("domain 'bad'") and str(path) in msg and "\n" not in msg and len(msg) < 500, msg
    if line is not None:
        assert re.search(rf"{re.escape(str(path))}:{line}: ", msg), msg
    assert snapshot(wh) == before
    assert file_digest(out / "corpus" / "manifest.json") == manifest


@pytest.mark.parametrize("bad, expected", [
    ({"name": "bad", "paths": ["{root}/nothing-here/*.jsonl"]},
     "domain 'bad': no files match '{root}/nothing-here/*.jsonl'"),
    ({"name": "source", "paths": ["{root}/good.jsonl"]}, "domain name 'source' is reserved"),
    ({"name": "bad", "paths": ["{root}/good.jsonl"], "text_field": "body"}, "{root}/good.jsonl:1: no 'body' field"),
])
def test_other_bad_domains_are_rejected_and_change_nothing(world, bad, expected):
    root, out, wh, (before, manifest) = world
    bad = {**bad, "paths": [p.format(root=root) for p in bad["paths"]]}
    with pytest.raises(CorpusError, match=re.escape(expected.format(root=root))):
        prepare_experiment(_config(root, out, bad), wh)
    assert snapshot(wh) == before
    assert file_digest(out / "corpus" / "manifest.json") == manifest
