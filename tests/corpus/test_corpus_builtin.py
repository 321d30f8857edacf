"""Built-in corpus: at least four real-text domains from the Python installation, deterministic."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from mixopt.corpus import builtin
from mixopt.corpus.readers import CorpusError, read_documents

CAP = 60_000


@pytest.fixture(scope="module")
def small_builtin(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("builtin")
    return folder, builtin.write_builtin_corpus(folder, max_bytes_per_domain=CAP)


def test_at_least_four_distinct_domains(small_builtin) -> None:
    folder, domains = small_builtin
    names = [d.name for d in domains]
    assert len(domains) >= 4 and len(set(names)) == len(names)
    for d in domains:
        docs = read_documents(d)
        size = sum(len(t.encode()) for t in docs)
        assert builtin.MIN_DOMAIN_BYTES <= size <= CAP, d.name
        assert len(docs) >= 2, d.name
        assert Path(d.paths[0]).parent == folder


def test_domains_look_like_what_they_claim(small_builtin) -> None:
    _, domains = small_builtin
    text = {d.name: "\n".join(read_documents(d)) for d in domains}
    if "python_stdlib" in text:
        assert "def " in text["python_stdlib"] and "import " in text["python_stdlib"]
    if "c_headers" in text:
        assert "#define" in text["c_headers"] or "#ifndef" in text["c_headers"]
    if "licenses" in text:
        assert "licen" in text["licenses"].lower()


def test_no_test_folders_or_site_packages(small_builtin) -> None:
    _, domains = small_builtin
    stdlib = [d for d in domains if d.name == "python_stdlib"]
    for d in stdlib:
        for line in Path(d.paths[0]).read_text(encoding="utf-8").splitlines():
            parts = json.loads(line)["source"].split("/")
            assert not {"test", "tests", "idle_test", "site-packages"} & set(parts)


def test_deterministic_and_mtime_stable(small_builtin) -> None:
    folder, domains = small_builtin
    before = {d.name: (Path(d.paths[0]).read_bytes(), Path(d.paths[0]).stat().st_mtime_ns) for d in domains}
    again = builtin.write_builtin_corpus(folder, max_bytes_per_domain=CAP)
    after = {d.name: (Path(d.paths[0]).read_bytes(), Path(d.paths[0]).stat().st_mtime_ns) for d in again}
    assert before == after


def _fake_sources(sizes: list[int]) -> dict:
    """Sources yielding `n` documents of 1 kB each."""
    return {f"dom{k}": (lambda n=n: iter([(f"d{i}", "x" * 1000) for i in range(n)])) for k, n in enumerate(sizes)}


def test_small_domains_are_skipped_with_a_warning(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(builtin, "SOURCES", _fake_sources([60, 60, 10, 60, 60]))
    with caplog.at_level(logging.WARNING, logger="mixopt.corpus.builtin"):
        domains = builtin.write_builtin_corpus(tmp_path, max_bytes_per_domain=100_000)
    assert [d.name for d in domains] == ["dom0", "dom1", "dom3", "dom4"]
    assert "skipping domain dom2" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dom0.jsonl", "dom1.jsonl", "dom3.jsonl", "dom4.jsonl"]


def test_fewer_than_four_domains_is_an_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(builtin, "SOURCES", _fake_sources([60, 60, 10, 60, 0]))
    with pytest.raises(CorpusError, match="at least 4 domains.*found 3"):
        builtin.write_builtin_corpus(tmp_path, max_bytes_per_domain=100_000)
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left behind
