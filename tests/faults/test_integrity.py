"""Integrity: a corrupted token shard is caught at the corpus stage, before any proxy trains on it.

Between two flow runs a byte of a train shard is flipped. The second run's corpus stage sees the
checksum mismatch and rebuilds the shard (the build is deterministic, so it is identical to the
first), and the one new proxy trains on verified data. If the rebuilt shards differed from those the
experiment recorded (simulated by rewriting the manifest too), the corpus stage refuses to go on.
`verify_shards` itself: tests/corpus/test_corpus_ingest.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixopt.corpus.readers import CorpusError
from mixopt.corpus.shards import file_sha256, verify_shards
from mixopt.flows.swarm import train_swarm
from mixopt.tasks import swarm as swarm_stage
from mixopt.tasks.corpus import prepare_experiment
from mixopt.warehouse import Warehouse, read_only_query
from tests.faults.util import snapshot
from tests.helpers import tiny_config


def _flip(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.slow
def test_a_shard_corrupted_between_runs_is_rebuilt_before_training(tmp_path, prefect_harness, monkeypatch):
    cfg = tiny_config(tmp_path, final={"enabled": False}, swarm={"n_proxies": 2, "tokens": 2048})
    first = train_swarm(config=cfg)
    assert first.ok == 2
    shard = next((tmp_path / "out" / "corpus").glob("*/train.bin"))
    good = file_sha256(shard)
    _flip(shard)

    trained_on: list[str] = []
    original = swarm_stage.train_and_spool

    def verified(exp, spec):
        verify_shards(spec.domains)  # raises if the proxy were about to read a damaged shard
        trained_on.append(file_sha256(shard))
        return original(exp, spec)

    monkeypatch.setattr(swarm_stage, "train_and_spool", verified)
    cfg.swarm.n_proxies = 3
    second = train_swarm(config=cfg)
    assert second.trained == 1 and second.reused == 2 and second.ok == 1
    assert file_sha256(shard) == good and trained_on == [good]
    recorded = read_only_query(cfg.runtime.warehouse, "select domain, train_sha256 from domains")[1]
    assert dict(recorded)[shard.parent.name] == good


def test_shards_that_differ_from_the_recorded_ones_stop_the_corpus_stage(tmp_path):
    cfg = tiny_config(tmp_path)
    with Warehouse(cfg.runtime.warehouse) as wh:
        exp = prepare_experiment(cfg, wh)
        before = snapshot(wh)
        # a rebuild that produced other tokens: shard and manifest agree, the warehouse does not
        shard = Path(exp.domains[1].train_path)
        _flip(shard)
        manifest_path = tmp_path / "out" / "corpus" / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["domains"][1]["train_sha256"] = file_sha256(shard)
        manifest_path.write_text(json.dumps(manifest))
        with pytest.raises(CorpusError, match=rf"{shard}: train shard of domain '{exp.domains[1].name}' has sha256"):
            prepare_experiment(cfg, wh)
        assert snapshot(wh) == before
