"""Property: whatever bytes a `.jsonl` / `.jsonl.gz` file holds, reading it parses or raises CorpusError."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixopt.config import DomainConfig
from mixopt.corpus.readers import CorpusError, read_documents

_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=10,
)
_objects = st.dictionaries(st.sampled_from(["text", "body", "id", ""]), _json_values, max_size=3)
_fragments = st.sampled_from(['{"text": ', '"', "}", "{", "[", "]", ",", ":", "\\u", "\\ud83d", "null", "\n", " "])


def _json_line(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return json.dumps(draw(_objects), ensure_ascii=draw(st.booleans())).encode()
    if kind == 1:
        return json.dumps(draw(_json_values)).encode()
    if kind == 2:
        return "".join(draw(st.lists(_fragments, max_size=8))).encode()
    return draw(st.binary(max_size=40))


@st.composite
def _jsonish_files(draw: st.DrawFn) -> bytes:
    return b"\n".join(_json_line(draw) for _ in range(draw(st.integers(0, 6))))


def _read(data: bytes, fmt: str, max_bytes: int | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x.{fmt}"
        path.write_bytes(data)
        try:
            docs = read_documents(DomainConfig(name="prop", paths=[str(path)], format=fmt), max_bytes)
        except CorpusError as e:
            assert "\n" not in str(e) and str(path) in str(e)
            return
        assert docs and all(isinstance(d, str) and d.strip() for d in docs)
        if max_bytes is not None:
            assert sum(len(d.encode()) for d in docs) <= max_bytes


_fast = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fast
@given(data=st.one_of(st.binary(max_size=200), _jsonish_files()), cap=st.one_of(st.none(), st.integers(1, 64)))
def test_jsonl_parses_or_raises_corpus_error(data: bytes, cap: int | None) -> None:
    _read(data, "jsonl", cap)


@settings(max_examples=100, deadline=None)
@given(data=_jsonish_files(), cut=st.integers(0, 200))
def test_gzip_parses_or_raises_corpus_error(data: bytes, cut: int) -> None:
    blob = gzip.compress(data)
    _read(blob[: max(0, len(blob) - cut)], "jsonl.gz", None)
