"""Read the documents of one domain: JSONL, gzipped JSONL, Parquet or plain-text files.

`iter_documents(domain)` expands the domain's globs and yields its non-empty documents in a fixed
order (globs in the order given, each glob's matches sorted). Every problem with the input becomes a
`CorpusError` whose one-line message names the domain, the file and, for line-based formats, the
line: a malformed corpus never produces a traceback.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

from mixopt.config import DomainConfig
from mixopt.errors import MixoptError

_MAX_DETAIL = 160


class CorpusError(MixoptError, ValueError):
    """Input data that cannot be used; the message names the domain, the file and the line."""


def _detail(err: BaseException) -> str:
    """One line, at most `_MAX_DETAIL` characters, describing an underlying exception."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


def _one_line(message: str) -> str:
    """Escape line breaks (a file name may contain one) so a message stays on one line."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


def truncate_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` whose UTF-8 encoding has at most `max_bytes` bytes."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", errors="ignore")


def expand_globs(domain: DomainConfig) -> list[Path]:
    """The files matched by the domain's globs: each glob sorted, first occurrence kept.

    Folders matched by a glob are ignored; a glob that matches no file is a `CorpusError`.
    """
    seen: set[str] = set()
    files: list[Path] = []
    for pattern in domain.paths:
        expanded = os.path.expanduser(pattern)
        matches = [m for m in sorted(glob.glob(expanded, recursive=True)) if os.path.isfile(m)]
        if not matches:
            raise CorpusError(_one_line(f"domain '{domain.name}': no files match '{pattern}'"))
        for m in matches:
            key = os.path.abspath(m)
            if key not in seen:
                seen.add(key)
                files.append(Path(m))
    return files


def _decode_line(raw: bytes, where: str, offset: int) -> str:
    """Decode one line as UTF-8; `offset` is the line's byte offset in the (decompressed) file."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{where}: not UTF-8 (byte offset {offset + e.start})") from None


def _text_of_json_line(line: str, where: str, field: str) -> str:
    """The text field of one JSONL line (which must be a JSON object with a string there)."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        reason = e.msg.removesuffix(" at")  # json says "Invalid control character at"
        raise CorpusError(f"{where}: not valid JSON ({reason} at column {e.colno})") from None
    except (ValueError, RecursionError) as e:  # e.g. nesting too deep, integer too long
        raise CorpusError(f"{where}: not valid JSON ({_detail(e)})") from None
    if not isinstance(obj, dict):
        raise CorpusError(f"{where}: expected a JSON object, got {_json_type(obj)}")
    if field not in obj:
        keys = ", ".join(json.dumps(k[:30]) for k in sorted(obj)[:8]) or "none"
        raise CorpusError(f"{where}: no '{field}' field (keys: {keys})")
    text = obj[field]
    if not isinstance(text, str):
        raise CorpusError(f"{where}: field '{field}' is {_json_type(text)}, expected a string")
    return text


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a string"


def _check_encodable(text: str, where: str) -> bytes:
    """The UTF-8 bytes of `text`; lone surrogates (possible via JSON escapes) are an error."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise CorpusError(f"{where}: text contains an unpaired surrogate at character {e.start}") from None


def _iter_jsonl(path: Path, label: str, field: str, compressed: bool) -> Iterator[tuple[str, str]]:
    """Yield (location, text) for each non-blank line of a JSONL file."""
    lineno = 0
    offset = 0
    try:
        opener = gzip.open if compressed else open
        with opener(path, "rb") as f:
            for raw in f:
                lineno += 1
                where = f"{label}:{lineno}"
                line = _decode_line(raw, where, offset)
                if lineno == 1 and line.startswith("\ufeff"):
                    line = line[1:]  # a UTF-8 byte-order mark
                offset += len(raw)
                if not line.strip():
                    continue
                yield where, _text_of_json_line(line, where, field)
    except CorpusError:
        raise
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise CorpusError(f"{label}:{lineno + 1}: corrupt or truncated gzip ({_detail(e)})") from None
    except OSError as e:
        raise CorpusError(f"{label}: cannot read ({_detail(e)})") from None


def _iter_txt(path: Path, label: str, limit: int | None) -> Iterator[tuple[str, str]]:
    """Yield the whole file as one document, reading at most about `limit` bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read() if limit is None else f.read(limit + 4)
    except OSError as e:
        raise CorpusError(f"{label}: cannot read ({_detail(e)})") from None
    if limit is not None and len(data) > limit:
        cut = limit
        while cut > 0 and (data[cut] & 0xC0) == 0x80:  # do not split a multi-byte character
            cut -= 1
        data = data[:cut]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise CorpusError(f"{label}:{line}: not UTF-8 (byte offset {e.start})") from None
    yield label, text


def _iter_parquet(path: Path, label: str, field: str) -> Iterator[tuple[str, str]]:
    """Yield (location, text) for each row of a Parquet file's text column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError, ValueError) as e:
        raise CorpusError(f"{label}: not a readable Parquet file ({_detail(e)})") from None
    if field not in schema.names:
        cols = ", ".join(schema.names[:8]) or "none"
        raise CorpusError(f"{label}: no column '{field}' (columns: {cols})")
    ftype = schema.field(field).type
    if pa.types.is_dictionary(ftype):
        ftype = ftype.value_type
    if not (pa.types.is_string(ftype) or pa.types.is_large_string(ftype) or str(ftype) == "string_view"):
        raise CorpusError(f"{label}: column '{field}' has type {ftype}, expected string")
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=1024, columns=[field]):
            for text in batch.column(0).to_pylist():
                row += 1
                if text is None:
                    raise CorpusError(f"{label}: row {row}: '{field}' is null")
                yield f"{label}: row {row}", text
    except CorpusError:
        raise
    except (pa.ArrowException, OSError, ValueError) as e:
        raise CorpusError(f"{label}: not a readable Parquet file (after row {row}: {_detail(e)})") from None


def _iter_file(domain: DomainConfig, path: Path, remaining: int | None) -> Iterator[tuple[str, str]]:
    """Dispatch on the domain's format; yields (location, text)."""
    label = str(path)
    fmt = domain.format
    if fmt == "jsonl":
        return _iter_jsonl(path, label, domain.text_field, compressed=False)
    if fmt == "jsonl.gz":
        return _iter_jsonl(path, label, domain.text_field, compressed=True)
    if fmt == "parquet":
        return _iter_parquet(path, label, domain.text_field)
    return _iter_txt(path, label, remaining)


def iter_documents(domain: DomainConfig, max_bytes: int | None = None) -> Iterator[str]:
    """Yield the domain's non-empty documents in a fixed order.

    Whitespace-only documents are skipped. Once `max_bytes` bytes of UTF-8 text have been yielded,
    reading stops (the last document is cut at a character boundary so the total is exactly the cap);
    files beyond that point are not opened. Raises `CorpusError` on any bad input, and if the domain
    has no non-empty document.
    """
    files = expand_globs(domain)
    total = 0
    count = 0
    for path in files:
        if max_bytes is not None and total >= max_bytes:
            break
        remaining = None if max_bytes is None else max_bytes - total
        try:
            for where, text in _iter_file(domain, path, remaining):
                data = _check_encodable(text, where)
                if not text.strip():
                    continue
                if max_bytes is not None and total + len(data) >= max_bytes:
                    text = truncate_utf8(text, max_bytes - total)
                    total = max_bytes
                    if text.strip():
                        count += 1
                        yield text
                    break
                total += len(data)
                count += 1
                yield text
        except CorpusError as e:
            raise CorpusError(_one_line(f"domain '{domain.name}': {e}")) from None
    if count == 0:
        shown = ", ".join(domain.paths[:3])
        raise CorpusError(_one_line(f"domain '{domain.name}' is empty: no non-empty documents in {shown}"))


def read_documents(domain: DomainConfig, max_bytes: int | None = None) -> list[str]:
    """All documents of a domain as a list (see `iter_documents`)."""
    return list(iter_documents(domain, max_bytes))
