"""The built-in corpus: real text found in any Python installation, no network needed.

Five domains, each written as one JSONL file (`{"text": ..., "source": ...}` per line):

- `python_stdlib`: `.py` files of the standard library (no site-packages, no test folders), in the
  order of a hash of their relative path, so a byte cap keeps a representative sample rather than
  the alphabetically first packages;
- `c_headers`: the C headers of the Python installation;
- `python_docs`: the reference-manual topics shipped in `pydoc_data.topics`, one per topic;
- `licenses`: Python's own LICENSE.txt and the LICENSE / LICENCE / COPYING / NOTICE files of the
  pinned distributions (exact duplicates dropped);
- `package_descriptions`: the long description (README) in each pinned distribution's METADATA.

One built-in eval set, never trained on (`target.eval_sets` with `format: builtin`):

- `scientific_python`: the `.py` files of the pinned numpy, scipy and scikit-learn (no test folders).

Only files fixed by pinned versions are read, so the corpus is the same wherever mixopt is
installed with the same Python: the standard library of the running Python, and the metadata of
the distributions that mixopt itself pins (`name==version` in its own requirements, outside any
extra or marker), each only when the installed version is the pinned one (a local label such as
`+cpu` aside, as PEP 440's `==` has it). Other installed packages are never read.
Everything is sorted, so the same installation always gives the same bytes. A domain with less
than `MIN_DOMAIN_BYTES` of text is skipped with a warning; fewer than `MIN_DOMAINS` domains is an
error. A file whose bytes are unchanged is not rewritten (its mtime stays, so shards are reused).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata as md
import json
import logging
import os
import re
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path

from mixopt.config import DomainConfig
from mixopt.corpus.readers import CorpusError, truncate_utf8

log = logging.getLogger(__name__)

PINNING_PACKAGE = "mixopt"
"""The distribution whose exact pins decide which packages' metadata the corpus reads."""
MIN_DOMAIN_BYTES = 50_000
MIN_DOMAINS = 4
_TEST_DIRS = {"test", "tests", "idle_test", "testing"}
_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__"} | _TEST_DIRS
_LICENSE_NAME = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE)([-_. ].*)?$", re.IGNORECASE)
_LICENSE_HINT = re.compile(r"licen[cs]e|copying|notice", re.IGNORECASE)
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)\s*$")
_NOT_TEXT = {".py", ".pyc", ".pyi", ".so", ".pyd", ".dll", ".json", ".js", ".html", ".h", ".c"}

Doc = tuple[str, str]  # (source label, text)


def _read_text(path: Path) -> str | None:
    """A file's UTF-8 text, or None if it cannot be read or decoded."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _path_hash(rel: str) -> str:
    """Hex sha256 of a relative path: the (deterministic, well-mixed) order of stdlib files."""
    return hashlib.sha256(rel.encode("utf-8")).hexdigest()


def stdlib_docs() -> Iterator[Doc]:
    """Standard-library `.py` files, ordered by a hash of their relative path."""
    root = sysconfig.get_paths().get("stdlib")
    if not root or not os.path.isdir(root):
        return
    rels: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in filenames:
            if name.endswith(".py") and not name.startswith("test_"):
                rels.append(Path(os.path.relpath(os.path.join(dirpath, name), root)).as_posix())
    for rel in sorted(rels, key=lambda r: (_path_hash(r), r)):
        text = _read_text(Path(root) / rel)
        if text:
            yield f"stdlib/{rel}", text


def header_docs() -> Iterator[Doc]:
    """C headers (`**/*.h`) under the installation's include folder, sorted by path."""
    root = sysconfig.get_paths().get("include")
    if not root or not os.path.isdir(root):
        return
    for path in sorted(Path(root).rglob("*.h")):
        text = _read_text(path)
        if text:
            yield f"include/{path.relative_to(root).as_posix()}", text


def pydoc_docs() -> Iterator[Doc]:
    """The reference-manual topics of `pydoc_data.topics`, one document per topic."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        return
    for key in sorted(topics):
        text = topics[key]
        if isinstance(text, str) and text.strip():
            yield f"pydoc/{key}", text


def _normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them (lower case, runs of `-_.` as one `-`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_requirements(package: str = PINNING_PACKAGE) -> list[tuple[str, str]]:
    """(normalised name, version) of `package`'s own `name==version` requirements, sorted by name.

    Only requirements that hold in every installation count: any with an environment marker
    (an extra such as `test`, a platform, a Python version) or without an exact pin is left out.
    If `package` is not installed, a warning, and none.
    """
    try:
        requires = md.requires(package) or []
    except md.PackageNotFoundError:
        log.warning("built-in corpus: %s is not installed, so no pinned distributions are read", package)
        return []
    pins = {}
    for req in requires:
        m = _PIN.match(req)
        if m:
            pins[_normalise(m.group(1))] = m.group(2)
    return sorted(pins.items())


def _public_version(version: str) -> str:
    """The version without its local label (`2.13.0+cpu` -> `2.13.0`), as `==` compares it."""
    return version.split("+", 1)[0].strip()


def _distributions() -> list[tuple[str, md.Distribution, md.PackageMetadata]]:
    """(name, distribution, metadata) of the pinned distributions installed at their pinned version.

    Sorted by normalised name. `importlib.metadata.distribution` finds the first one on `sys.path`
    (the one Python imports); a pin that is missing or installed at another version is skipped
    with a warning, since its text could differ from the pinned one's.
    """
    out = []
    for key, version in pinned_requirements():
        try:
            dist = md.distribution(key)
            meta = dist.metadata
            name = (meta["Name"] or "").strip()
            installed = dist.version or ""
        except Exception:  # not installed, or a broken METADATA file
            log.warning("built-in corpus: pinned distribution %s==%s is not installed; left out", key, version)
            continue
        if _normalise(name) != key or _public_version(installed) != _public_version(version):
            log.warning("built-in corpus: %s is installed at %s, not the pinned %s; left out", key, installed, version)
            continue
        out.append((name, dist, meta))
    return out


def _license_files(dist: md.Distribution) -> list[str]:
    """Relative paths of a distribution's licence files, from RECORD (fast) or `dist.files`."""
    record = dist.read_text("RECORD")
    if record is not None:
        hits = [line for line in record.splitlines() if _LICENSE_HINT.search(line)]
        rels = [row[0] for row in csv.reader(hits) if row]
    else:
        rels = [str(f) for f in (dist.files or [])]
    out = []
    for rel in sorted(set(rels)):
        base = rel.rsplit("/", 1)[-1]
        if _LICENSE_NAME.match(base) and os.path.splitext(base)[1].lower() not in _NOT_TEXT:
            out.append(rel)
    return out


def license_docs() -> Iterator[Doc]:
    """Python's own LICENSE.txt plus the pinned distributions' licence texts, duplicates dropped."""
    seen: set[str] = set()

    def fresh(text: str) -> bool:
        """True the first time a (stripped) text is seen."""
        digest = hashlib.sha256(text.strip().encode("utf-8", "replace")).hexdigest()
        if digest in seen:
            return False
        seen.add(digest)
        return True

    stdlib = sysconfig.get_paths().get("stdlib")
    if stdlib:
        text = _read_text(Path(stdlib) / "LICENSE.txt")
        if text and text.strip() and fresh(text):
            yield "python/LICENSE.txt", text
    for name, dist, _ in _distributions():
        for rel in _license_files(dist):
            path = Path(str(dist.locate_file(rel)))
            text = _read_text(path) if path.is_file() else None
            if text and text.strip() and fresh(text):
                yield f"{name}/{rel}", text


def _description(meta: md.PackageMetadata) -> str:
    """The long description: the METADATA body, else the (indented) Description header."""
    body = meta.get_payload() if hasattr(meta, "get_payload") else None  # type: ignore[attr-defined]
    if isinstance(body, str) and body.strip():
        return body
    desc = meta.get("Description") or ""
    return re.sub(r"\n {7,8}\|?", "\n", desc) if desc.strip() not in ("", "UNKNOWN") else ""


def description_docs() -> Iterator[Doc]:
    """Package descriptions (READMEs) from the pinned distributions' METADATA."""
    for name, _, meta in _distributions():
        try:
            text = _description(meta)
        except Exception:  # a malformed METADATA file is just skipped
            continue
        if text.strip():
            yield f"{name}/METADATA", text


SCIENTIFIC_PACKAGES = ("numpy", "scipy", "scikit-learn")
"""The pinned distributions whose Python source is the `scientific_python` eval set."""


def _package_code(names: tuple[str, ...]) -> Iterator[Doc]:
    """The `.py` files (outside test folders) of the pinned distributions `names`, ordered by a hash of
    their path, so a byte cap keeps a sample from every subpackage."""
    wanted = {_normalise(n) for n in names}
    files: list[tuple[str, Path]] = []
    for name, dist, _ in _distributions():
        if _normalise(name) not in wanted:
            continue
        for f in dist.files or []:
            rel = str(f)
            parts = set(Path(rel).parts[:-1])
            if rel.endswith(".py") and not parts & _SKIP_DIRS and not Path(rel).name.startswith("test_"):
                files.append((f"{name}/{rel}", Path(str(f.locate()))))
    for label, path in sorted(files, key=lambda x: (_path_hash(x[0]), x[0])):
        text = _read_text(path)
        if text and text.strip():
            yield label, text


def scientific_python_docs() -> Iterator[Doc]:
    """Python source of the pinned numpy, scipy and scikit-learn (library code with numpydoc docstrings)."""
    return _package_code(SCIENTIFIC_PACKAGES)


EVAL_SOURCES: dict[str, Callable[[], Iterator[Doc]]] = {
    "scientific_python": scientific_python_docs,
}
"""Built-in eval sets (`target.eval_sets` entries with `format: builtin`): text of the pinned
installation that no built-in domain holds, so nothing ever trains on it."""

SOURCES: dict[str, Callable[[], Iterator[Doc]]] = {
    "python_stdlib": stdlib_docs,
    "c_headers": header_docs,
    "python_docs": pydoc_docs,
    "licenses": license_docs,
    "package_descriptions": description_docs,
}


def _write_domain(docs: Iterator[Doc], tmp: Path, max_bytes: int) -> int:
    """Write documents as JSONL until `max_bytes` bytes of text; return the bytes of text written."""
    total = 0
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for source, text in docs:
            room = max_bytes - total
            if room <= 0:
                break
            text = truncate_utf8(text, room)
            if not text.strip():
                continue
            total += len(text.encode("utf-8"))
            f.write(json.dumps({"text": text, "source": source}, ensure_ascii=False) + "\n")
    return total


def replace_if_changed(tmp: Path, dest: Path) -> None:
    """Move `tmp` onto `dest` unless `dest` already holds the same bytes (then keep its mtime)."""
    if dest.is_file() and dest.stat().st_size == tmp.stat().st_size and dest.read_bytes() == tmp.read_bytes():
        tmp.unlink()
    else:
        os.replace(tmp, dest)


def write_builtin_corpus(folder: str | Path, max_bytes_per_domain: int = 4_000_000) -> list[DomainConfig]:
    """Write the built-in domains as `<folder>/<name>.jsonl` and return their configs.

    Domains with less than `min(MIN_DOMAIN_BYTES, max_bytes_per_domain)` bytes of text are skipped
    with a warning; fewer than `MIN_DOMAINS` usable domains raise `CorpusError`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    threshold = min(MIN_DOMAIN_BYTES, max_bytes_per_domain)
    written: list[tuple[str, Path, Path]] = []
    skipped: list[str] = []
    tmp = folder / ".unused"
    try:
        for name, source in SOURCES.items():
            tmp = folder / f".{name}.jsonl.{os.getpid()}.tmp"
            size = _write_domain(source(), tmp, max_bytes_per_domain)
            if size < threshold:
                tmp.unlink()
                log.warning("built-in corpus: skipping domain %s (%d bytes of text, need %d)", name, size, threshold)
                skipped.append(f"{name} ({size} bytes)")
                continue
            written.append((name, tmp, folder / f"{name}.jsonl"))
        if len(written) < MIN_DOMAINS:
            raise CorpusError(
                f"the built-in corpus needs at least {MIN_DOMAINS} domains with >= {threshold} bytes of text, "
                f"found {len(written)}; too small: {', '.join(skipped)}. Use corpus.source 'files' or 'synthetic'."
            )
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        for _, done, _ in written:
            done.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise CorpusError(f"built-in corpus: cannot write under {folder} ({e})") from None
        raise
    for _, done, dest in written:
        replace_if_changed(done, dest)
    return [DomainConfig(name=name, paths=[str(dest)], format="jsonl") for name, _, dest in written]


def write_builtin_eval_set(folder: str | Path, source: str, name: str, max_bytes: int) -> DomainConfig:
    """Write the built-in eval set `source` (a key of `EVAL_SOURCES`) as `<folder>/eval_<name>.jsonl`
    and return it as a JSONL eval-set config named `name`."""
    if source not in EVAL_SOURCES:
        raise CorpusError(f"target.eval_sets '{name}': unknown built-in eval set {source!r}; "
                          f"built in: {sorted(EVAL_SOURCES)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".eval_{name}.jsonl.{os.getpid()}.tmp"
    try:
        size = _write_domain(EVAL_SOURCES[source](), tmp, max_bytes)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if size == 0:
        tmp.unlink()
        raise CorpusError(f"target.eval_sets '{name}': the built-in eval set {source!r} found no text in this "
                          "installation (its pinned packages are missing or at other versions)")
    dest = folder / f"eval_{name}.jsonl"
    replace_if_changed(tmp, dest)
    return DomainConfig(name=name, paths=[str(dest)], format="jsonl")
