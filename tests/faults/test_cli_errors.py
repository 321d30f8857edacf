"""`mixopt run BAD.yaml`: exit code 2, the message on stderr, no traceback, the warehouse unchanged.

A handful of bad configs go through typer's CliRunner; one bad config and one bad corpus go
through a real `python -m mixopt.cli` process (the corpus case starts the flow, on a throwaway
Prefect home, against a warehouse that already holds an experiment).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mixopt.cli import app
from mixopt.runspec import DomainShard
from mixopt.warehouse import Warehouse
from tests.faults.util import snapshot

BAD_CONFIGS = {
    "unknown_key.yaml": ("name: x\nswarm:\n  n_proxy: 3\n", "swarm.n_proxy: unknown key"),
    "wrong_type.yaml": ("swarm: {n_proxies: many}\n", "swarm.n_proxies: Input should be a valid integer"),
    "negative.yaml": ("target: {weights: {web: -1}}\n", "target weights must be >= 0"),
    "infinite.yaml": ("design: {proxy_max_epochs: .inf}\n", "design.proxy_max_epochs: Input should be a finite number"),
    "bad_yaml.yaml": ("name: x\nswarm: [unclosed\n", "bad_yaml.yaml:3: not valid YAML"),
    "duplicate.yaml": ("name: x\nname: y\n", "duplicate.yaml:2: not valid YAML (duplicate key 'name')"),
    "binary.yaml": (b"\x89PNG\r\n\x1a\n\x00\xff", "not UTF-8 text"),
    "empty_domains.yaml": ("corpus: {source: files}\n", "source is 'files' but no domains are listed"),
}


def _clean(text: str) -> str:
    """Whitespace collapsed (rich wraps long messages at the terminal width)."""
    return " ".join(text.split())


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_a_bad_config_exits_2_with_the_message(tmp_path, name):
    content, expected = BAD_CONFIGS[name]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    err = _clean(result.stderr)
    assert err.startswith(f"error: {path}") and _clean(expected) in err, err
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # rejected before anything was written


def test_a_missing_or_unreadable_config_exits_2(tmp_path):
    for target, expected in ((tmp_path / "nope.yaml", "config file not found"), (tmp_path, "cannot read the config")):
        result = CliRunner().invoke(app, ["run", str(target)])
        assert result.exit_code == 2 and expected in _clean(result.stderr), result.output


def _mixopt(args: list[str], cwd, timeout: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(cwd / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300", WANDB_MODE="disabled")
    return subprocess.run([sys.executable, "-m", "mixopt.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_the_real_command_exits_2_without_a_traceback(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: x\nswarm: {n_proxies: 1}\n")
    proc = _mixopt(["run", "bad.yaml"], tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "swarm.n_proxies: Input should be greater than or equal to 2" in _clean(proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.slow
def test_a_bad_corpus_stops_the_flow_with_file_and_line_and_leaves_the_warehouse(tmp_path):
    wh_path = tmp_path / "out" / "mixopt.duckdb"
    with Warehouse(wh_path) as wh:  # an earlier experiment
        wh.record_experiment("old", "old", "h", "fp", {}, [DomainShard("web", "a", "b", 10, 1)], [1.0])
        wh.record_mixture("m1", "old", "design", [1.0])
    before = snapshot(wh_path)
    (tmp_path / "web.jsonl").write_text('{"text": "fine"}\n{"text": "unterminated\n')
    (tmp_path / "bad.yaml").write_text(
        "name: badcorpus\ncorpus:\n  source: files\n  domains:\n    - {name: web, paths: [web.jsonl]}\n"
        "    - {name: code, paths: [web.jsonl]}\nfinal: {enabled: false}\n")
    proc = _mixopt(["run", "bad.yaml", "--out", "out", "--quiet"], tmp_path, timeout=600)
    assert proc.returncode == 2, proc.stderr[-3000:]
    err = _clean(proc.stderr)
    assert f"error: domain 'web': {tmp_path / 'web.jsonl'}:2: not valid JSON" in err, err
    assert "Traceback" not in proc.stderr + proc.stdout
    assert snapshot(wh_path) == before
    assert not (tmp_path / "out" / "corpus" / "manifest.json").exists()
