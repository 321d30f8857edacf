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


def _fake_distribution(root: Path, name: str, version: str, marker: str) -> None:
    """A minimal installed distribution (METADATA with a README body, a LICENSE, a RECORD)."""
    info = root / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    body = f"{marker} description. " * 400
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n{body}\n")
    (info / "LICENSE").write_text(f"{marker} licence: permission is granted. " * 200)
    (info / "RECORD").write_text(f"{info.name}/METADATA,,\n{info.name}/LICENSE,,\n{info.name}/RECORD,,\n")


def test_an_unrelated_package_does_not_change_the_corpus(tmp_path: Path, monkeypatch) -> None:
    """Two environments that differ by an extra installed package give the same domain checksums."""
    from mixopt.config import ExperimentConfig
    from mixopt.corpus.ingest import prepare_corpus

    cfg = ExperimentConfig.model_validate({
        "corpus": {"source": "builtin", "max_bytes_per_domain": CAP},
        "tokenizer": {"vocab_size": 300, "sample_bytes_per_domain": 20_000},
    })
    plain = prepare_corpus(cfg, tmp_path / "plain")
    # sorts first, so reading every installed distribution (the old behaviour) would take it in
    _fake_distribution(tmp_path / "site", "aaaa_unrelated", "1.0", "UNRELATED-MARKER")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    import importlib.metadata as md

    assert md.distribution("aaaa_unrelated").version == "1.0"
    extra = prepare_corpus(cfg, tmp_path / "extra")
    assert extra.domain_checksums == plain.domain_checksums
    assert set(plain.domain_checksums) == {d.name for d in plain.domains} and len(plain.domains) >= 4
    assert extra.fingerprint == plain.fingerprint
    for f in (tmp_path / "extra" / "corpus" / "source").glob("*.jsonl"):
        assert "UNRELATED-MARKER" not in f.read_text(encoding="utf-8")


def test_only_exact_pins_at_their_version_are_read(tmp_path: Path, monkeypatch) -> None:
    _fake_distribution(tmp_path / "site", "aaaa_pinned", "1.0", "PINNED-MARKER")
    _fake_distribution(tmp_path / "site", "aaab_wrong_version", "1.0", "WRONG-MARKER")
    _fake_distribution(tmp_path / "site", "aaac_extra_only", "1.0", "EXTRA-MARKER")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    requires = ["aaaa-pinned==1.0", "aaab_wrong_version==2.0", 'aaac-extra-only==1.0; extra == "test"', "numpy>=1"]
    monkeypatch.setattr(builtin.md, "requires", lambda name: requires)
    assert builtin.pinned_requirements() == [("aaaa-pinned", "1.0"), ("aaab-wrong-version", "2.0")]
    assert [name for name, _, _ in builtin._distributions()] == ["aaaa_pinned"]
    descriptions = "".join(text for _, text in builtin.description_docs())
    licences = "".join(text for _, text in builtin.license_docs())
    assert "PINNED-MARKER" in descriptions and "PINNED-MARKER" in licences
    assert "WRONG-MARKER" not in descriptions + licences and "EXTRA-MARKER" not in descriptions + licences


def test_the_builtin_eval_set_is_library_code_no_domain_holds(small_builtin, tmp_path: Path) -> None:
    _, domains = small_builtin
    ev = builtin.write_builtin_eval_set(tmp_path, "scientific_python", "sci", CAP)
    docs = [json.loads(line) for line in Path(ev.paths[0]).read_text().splitlines()]
    assert ev.name == "sci" and ev.format == "jsonl" and len(docs) >= 2
    assert {d["source"].split("/")[0] for d in docs} <= {"numpy", "scipy", "scikit-learn"}
    assert all("/tests/" not in d["source"] and "/test_" not in d["source"] for d in docs)
    assert "def " in "".join(d["text"] for d in docs)
    trained = {t for d in domains for t in read_documents(d)}
    assert not trained & {d["text"] for d in docs}  # nothing trains on it
    again = builtin.write_builtin_eval_set(tmp_path / "again", "scientific_python", "sci", CAP)
    assert Path(again.paths[0]).read_bytes() == Path(ev.paths[0]).read_bytes()


def test_an_unknown_builtin_eval_set_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="unknown built-in eval set 'nope'"):
        builtin.write_builtin_eval_set(tmp_path, "nope", "x", CAP)


def test_format_builtin_is_for_eval_sets_only() -> None:
    from mixopt.config import ConfigError, parse_config

    ok = parse_config({"target": {"eval_sets": [{"name": "sci", "format": "builtin", "paths": ["scientific_python"]}],
                                  "weights": {"sci": 1.0}}}, base_dir=Path("/somewhere"))
    assert ok.target.eval_sets[0].paths == ["scientific_python"]  # a name, not resolved as a path
    with pytest.raises(ConfigError, match="applies to target.eval_sets only"):
        parse_config({"corpus": {"source": "files", "domains": [
            {"name": "a", "format": "builtin", "paths": ["scientific_python"]},
            {"name": "b", "paths": ["x.jsonl"]}]}})
