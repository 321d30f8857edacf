"""End to end: a > 65,536-token vocabulary, pre-tokenized domains, an eval set and groups,
through the swarm (tiny proxies), the fit (from a config file) and the report."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from mixopt.flows.fit import fit_and_propose
from mixopt.flows.swarm import train_swarm
from mixopt.report import build_report
from mixopt.warehouse import Warehouse, read_only_query, reads
from tests.corpus.test_corpus_tokens import BIG, random_docs, write_docs
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow


def _config(tmp: Path):
    rng = np.random.default_rng(0)
    sep = BIG - 1
    domains = []
    for i, hi in enumerate((BIG, 2000, 300)):  # one domain uses ids above uint16
        write_docs(tmp / f"d{i}.npy", [[int(t) % sep for t in d] for d in random_docs(rng, 40, hi, sep)], sep)
        domains.append({"name": f"d{i}", "paths": [str(tmp / f"d{i}.npy")], "format": "tokens", "separator_id": sep})
    write_docs(tmp / "bench.npy", random_docs(rng, 20, 2000, sep), sep)
    target = {"eval_sets": [{"name": "bench", "paths": [str(tmp / "bench.npy")], "format": "tokens",
                             "separator_id": sep}],
              "groups": {"train_mix": {"d0": 1.0, "d1": 1.0}, "heldout": {"bench": 1.0}}}
    return tiny_config(tmp, corpus={"source": "files", "domains": domains}, target=target,
                       tokenizer={"kind": "none", "vocab_size": BIG}, swarm={"n_proxies": 4, "tokens": 2048},
                       regressor={"candidates": ["linear"], "cv_folds": 2},
                       final={"enabled": False})


def test_pretokenized_big_vocab_eval_sets_end_to_end(tmp_path: Path, prefect_harness):
    cfg = _config(tmp_path)
    summary = train_swarm(config=cfg)
    assert summary.ok == 4
    # the fit follows the experiment kept as a file (what a scheduled deployment does)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    outcome = fit_and_propose(config_file=str(path))
    assert len(outcome.weights) == 3
    wh = cfg.runtime.warehouse
    kinds = read_only_query(wh, "select kind, count(*) from evals group by kind order by kind")[1]
    assert kinds == [("domain", 12), ("eval", 4), ("group", 8)]
    rows = read_only_query(wh, "select r.target_loss, e.loss from proxy_runs r join evals e using (run_id) "
                               "where e.domain = 'heldout'")[1]
    targets = dict(read_only_query(wh, "select run_id, target_loss from proxy_runs")[1])
    # no target weights: the mean over the two groups; the groups are in `evals` as their own rows
    db = Warehouse(wh)
    wide = reads.eval_table(db, reads.latest_experiment(db), role="proxy")
    for r in wide.iter_rows(named=True):
        assert r["train_mix"] == pytest.approx((r["d0"] + r["d1"]) / 2)
        assert r["heldout"] == pytest.approx(r["bench"])
    for r in wide.iter_rows(named=True):
        assert targets[r["run_id"]] == pytest.approx((r["train_mix"] + r["heldout"]) / 2)
    assert len(rows) == 4
    dtypes = {d.dtype for d in outcome_domains(cfg)}
    assert dtypes == {"uint32"}
    rep = build_report(db, reads.latest_experiment(db), tmp_path / "report")
    assert "## Eval sets and groups" in rep.markdown and "`train_mix` (group)" in rep.markdown
    assert "`bench` (eval set)" in rep.markdown
    db.close()


def outcome_domains(cfg):
    import json

    m = json.loads((Path(cfg.runtime.out_dir) / "corpus" / "manifest.json").read_text())
    from mixopt.runspec import DomainShard

    return [DomainShard(**d) for d in m["domains"] + m["eval_sets"]]
