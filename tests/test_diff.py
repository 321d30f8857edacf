"""`mixopt diff`: two recorded experiments' domains compared by content checksum and tokenizer, not name."""

from typer.testing import CliRunner

from mixopt.cli import app
from mixopt.runspec import DomainShard
from mixopt.warehouse import Warehouse


def _record(wh: Warehouse, exp_id: str, domains: dict[str, str], tokenizer: dict | None = None,
            shards: dict[str, tuple[str, str]] | None = None) -> None:
    config = {"tokenizer": tokenizer or {"kind": "bpe", "vocab_size": 512}}
    rows = [DomainShard(n, "x", "y", 1000, 100, train_sha256=(shards or {}).get(n, ("t", "v"))[0],
                        val_sha256=(shards or {}).get(n, ("t", "v"))[1], text_sha256=sha)
            for n, sha in domains.items()]
    wh.record_experiment(exp_id, exp_id.split("-")[0], "h", "fp", config, rows, [1 / len(rows)] * len(rows))


def _lines(result) -> dict[str, list[str]]:
    """status -> the table rows (as text) that carry it."""
    out: dict[str, list[str]] = {}
    for line in result.output.splitlines():
        cells = [c.strip() for c in line.strip("│┃|").split("│")]
        if cells and cells[0] in ("unchanged", "renamed", "changed", "added", "removed"):
            out.setdefault(cells[0], []).append(" ".join(c for c in cells[1:] if c))
    return out


def test_diff_names_renamed_changed_added_and_removed_domains(tmp_path):
    path = tmp_path / "w.duckdb"
    with Warehouse(path) as wh:
        _record(wh, "old-1", {"web": "s1", "code": "s2", "books": "s3", "wiki": "s4"})
        _record(wh, "new-2", {"webtext": "s1", "code": "s2", "books": "s3-refiltered", "papers": "s5"})
    result = CliRunner().invoke(app, ["diff", "old-1", "new-2", "--warehouse", str(path)])
    assert result.exit_code == 0, result.output
    rows = _lines(result)
    assert rows == {"renamed": ["web webtext"], "unchanged": ["code code"], "changed": ["books books"],
                    "added": ["papers"], "removed": ["wiki"]}
    assert "2 unchanged (1 renamed), 1 changed, 1 added, 1 removed" in result.output


def test_diff_another_tokenizer_changes_every_domain_and_shards_identify_pre_tokenized_ones(tmp_path):
    path = tmp_path / "w.duckdb"
    with Warehouse(path) as wh:
        _record(wh, "a-1", {"web": "s1"})
        _record(wh, "b-2", {"web": "s1"}, tokenizer={"kind": "bpe", "vocab_size": 1024})
        _record(wh, "t-3", {"tok": ""}, shards={"tok": ("t1", "v1")})
        _record(wh, "t-4", {"tokens": ""}, shards={"tokens": ("t1", "v1")})
    result = CliRunner().invoke(app, ["diff", "a-1", "b-2", "--warehouse", str(path)])
    assert _lines(result) == {"changed": ["web web"]}
    result = CliRunner().invoke(app, ["diff", "t-3", "t-4", "--warehouse", str(path)])
    assert _lines(result) == {"renamed": ["tok tokens"]}


def test_diff_of_an_unknown_experiment_is_one_line(tmp_path):
    path = tmp_path / "w.duckdb"
    with Warehouse(path) as wh:
        _record(wh, "old-1", {"web": "s1"})
    result = CliRunner().invoke(app, ["diff", "old-1", "nope-9", "--warehouse", str(path)])
    assert result.exit_code == 2
    assert "no experiment 'nope-9' recorded (known: old-1)" in result.output
    assert len(result.output.strip().splitlines()) == 1
