"""Readers: every format round-trips, caps are exact, and every bad input is a one-line CorpusError."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mixopt.config import DomainConfig
from mixopt.corpus.readers import CorpusError, expand_globs, read_documents, truncate_utf8

DOCS = ["first document", "zweites Dokument: äöü ß", "third 📄 with emoji", "multi\nline\ntext"]


def _dom(paths: list[str] | str, fmt: str = "jsonl", **kw: object) -> DomainConfig:
    return DomainConfig(name="web", paths=[paths] if isinstance(paths, str) else paths, format=fmt, **kw)


def _jsonl(docs: list[str], field: str = "text") -> bytes:
    return "".join(json.dumps({field: d, "id": i}) + "\n" for i, d in enumerate(docs)).encode()


def _error(domain: DomainConfig) -> str:
    with pytest.raises(CorpusError) as info:
        read_documents(domain)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("domain 'web'")
    return msg


# --- round trips ---------------------------------------------------------------------------------


def test_jsonl_round_trip_skips_blank_lines(tmp_path: Path) -> None:
    data = _jsonl(DOCS[:2]) + b"\n   \n\r\n" + _jsonl(DOCS[2:])
    (tmp_path / "a.jsonl").write_bytes(data)
    assert read_documents(_dom(str(tmp_path / "a.jsonl"))) == DOCS


def test_jsonl_gz_round_trip(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(_jsonl(DOCS)))
    assert read_documents(_dom(str(tmp_path / "a.jsonl.gz"), "jsonl.gz")) == DOCS


def test_parquet_round_trip(tmp_path: Path) -> None:
    table = pa.table({"body": DOCS, "n": list(range(len(DOCS)))})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=2)
    assert read_documents(_dom(str(tmp_path / "a.parquet"), "parquet", text_field="body")) == DOCS


def test_txt_round_trip_one_document_per_file(tmp_path: Path) -> None:
    for i, doc in enumerate(DOCS):
        (tmp_path / f"{i}.txt").write_text(doc, encoding="utf-8")
    (tmp_path / "blank.txt").write_text("  \n", encoding="utf-8")
    assert read_documents(_dom(str(tmp_path / "*.txt"), "txt")) == DOCS


def test_custom_field_bom_and_crlf(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + _jsonl(DOCS, field="content").replace(b"\n", b"\r\n")
    (tmp_path / "a.jsonl").write_bytes(data)
    assert read_documents(_dom(str(tmp_path / "a.jsonl"), text_field="content")) == DOCS


def test_globs_sorted_recursive_and_deduplicated(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / "b.jsonl").write_bytes(_jsonl(["b"]))
    (tmp_path / "a.jsonl").write_bytes(_jsonl(["a"]))
    (tmp_path / "sub" / "deep" / "c.jsonl").write_bytes(_jsonl(["c"]))
    dom = _dom([str(tmp_path / "**" / "*.jsonl"), str(tmp_path / "a.jsonl")])
    assert [p.name for p in expand_globs(dom)] == ["a.jsonl", "b.jsonl", "c.jsonl"]
    assert read_documents(dom) == ["a", "b", "c"]


# --- byte cap ------------------------------------------------------------------------------------


def test_max_bytes_is_exact_and_deterministic(tmp_path: Path) -> None:
    docs = [f"document {i} é" * 5 for i in range(100)]
    (tmp_path / "a.jsonl").write_bytes(_jsonl(docs))
    dom = _dom(str(tmp_path / "a.jsonl"))
    first = read_documents(dom, max_bytes=1000)
    assert sum(len(d.encode()) for d in first) <= 1000
    assert sum(len(d.encode()) for d in first) >= 998  # cut only at a character boundary
    assert first == read_documents(dom, max_bytes=1000)
    assert first[:-1] == docs[: len(first) - 1]


def test_max_bytes_stops_before_later_files(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(_jsonl(["x" * 100]))
    (tmp_path / "b.jsonl").write_bytes(b"not json at all\n")  # never opened
    assert read_documents(_dom(str(tmp_path / "*.jsonl")), max_bytes=50) == ["x" * 50]


def test_txt_cap_does_not_split_a_character(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("ab" + "é" * 100, encoding="utf-8")
    assert read_documents(_dom(str(tmp_path / "a.txt"), "txt"), max_bytes=5) == ["abé"]


def test_truncate_utf8() -> None:
    assert truncate_utf8("aé😀", 1) == "a"
    assert truncate_utf8("aé😀", 2) == "a"
    assert truncate_utf8("aé😀", 3) == "aé"
    assert truncate_utf8("aé😀", 7) == "aé😀"


# --- bad input -----------------------------------------------------------------------------------


def test_glob_matching_nothing_names_the_glob(tmp_path: Path) -> None:
    msg = _error(_dom(str(tmp_path / "missing*.jsonl")))
    assert f"no files match '{tmp_path / 'missing*.jsonl'}'" in msg


@pytest.mark.parametrize(
    ("lines", "line", "fragment"),
    [
        ([b'{"text": "ok"}', b"", b'{"text": "broken"'], 3, "not valid JSON ("),
        ([b'{"text": "ok"}', b"[1, 2]"], 2, "expected a JSON object, got an array"),
        ([b'"a string"'], 1, "expected a JSON object, got a string"),
        ([b'{"text": "ok"}', b'{"body": "x"}'], 2, "no 'text' field (keys: \"body\")"),
        ([b'{"text": "ok"}', b'{"text": 12}'], 2, "field 'text' is a number, expected a string"),
        ([b'{"text": null}'], 1, "field 'text' is null, expected a string"),
        ([b'{"text": "ok"}', b'{"text": "\\ud800"}'], 2, "unpaired surrogate"),
        ([b"[" * 50_000], 1, "not valid JSON"),
        ([b'{"text": "ok"}', b'{"text": "ok"} {"text": "again"}'], 2, "not valid JSON (Extra data"),
    ],
)
def test_bad_jsonl_names_file_and_line(tmp_path: Path, lines: list[bytes], line: int, fragment: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    msg = _error(_dom(str(path)))
    assert f"{path}:{line}: " in msg
    assert fragment in msg


def test_non_utf8_names_line_and_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    msg = _error(_dom(str(path)))
    assert f"{path}:2: not UTF-8 (byte offset {15 + 13})" in msg


def test_non_utf8_txt(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"line one\nline \xff two\n")
    assert f"{path}:2: not UTF-8 (byte offset 14)" in _error(_dom(str(path), "txt"))


def test_truncated_gzip(tmp_path: Path) -> None:
    blob = gzip.compress(_jsonl([f"document {i} " * 20 for i in range(2000)]))
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(blob[: len(blob) // 2])
    msg = _error(_dom(str(path), "jsonl.gz"))
    assert str(path) in msg and "corrupt or truncated gzip" in msg


def test_corrupt_gzip_header(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(_jsonl(DOCS))  # plain text with a .gz format
    assert f"{path}:1: corrupt or truncated gzip" in _error(_dom(str(path), "jsonl.gz"))


def test_corrupt_gzip_checksum(tmp_path: Path) -> None:
    blob = bytearray(gzip.compress(_jsonl(DOCS)))
    blob[-8] ^= 0xFF  # CRC32 of the trailer
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(bytes(blob))
    assert "corrupt or truncated gzip" in _error(_dom(str(path), "jsonl.gz"))


def test_unreadable_parquet(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 definitely not parquet PAR1")
    assert f"{path}: not a readable Parquet file" in _error(_dom(str(path), "parquet"))


def test_parquet_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"body": DOCS}), path)
    assert f"{path}: no column 'text' (columns: body)" in _error(_dom(str(path), "parquet"))


def test_parquet_non_string_column_and_null(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": [1, 2]}), path)
    assert "column 'text' has type int64, expected string" in _error(_dom(str(path), "parquet"))
    pq.write_table(pa.table({"text": ["a", None]}), path)
    assert f"{path}: row 2: 'text' is null" in _error(_dom(str(path), "parquet"))


@pytest.mark.parametrize("content", [b"", b"\n\n", b'{"text": ""}\n{"text": "  \\n "}\n'])
def test_empty_domain(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    msg = _error(_dom(str(path)))
    assert msg.startswith("domain 'web' is empty: ") and str(path) in msg


def test_a_folder_only_glob_matches_no_files(tmp_path: Path) -> None:
    (tmp_path / "dir.jsonl").mkdir()
    assert "no files match" in _error(_dom(str(tmp_path / "*.jsonl")))
