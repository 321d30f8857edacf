"""End to end with repetition-matched proxies: every proxy (design, anchors, ladder) draws from its
matched subsamples, batched proxies train on them, and the report and the export say so."""

import numpy as np
import pytest

from mixopt.export import mixture_record
from mixopt.flows.search import mixture_search
from mixopt.mixtures.repetition import epochs, matched_pool
from mixopt.tasks.corpus import prepare_experiment
from mixopt.tasks.swarm import swarm_specs
from mixopt.warehouse import ReadOnlyWarehouse, Warehouse
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow


def test_a_matched_search_reads_every_domain_as_often_as_the_final_run(tmp_path, prefect_harness):
    cfg = tiny_config(tmp_path, swarm={"n_proxies": 6}, final={"enabled": False, "tokens": 8 * 4096},
                      design={"match_repetition": True, "anchor_proxies": True,
                              "ladder": {"scales": [{"tokens_fraction": 0.25}, {"tokens_fraction": 0.5}],
                                         "mixtures": 3}},
                      runtime={"batch_k": 2})  # K = 2: the batched trainer draws from the subsamples too
    result = mixture_search(config=cfg)
    with Warehouse(cfg.runtime.warehouse) as wh:
        exp = prepare_experiment(cfg, wh)
        specs = swarm_specs(exp, wh)
        again = swarm_specs(exp, wh)
        statuses = wh.run_status([s.run_id for s in specs])
    n = exp.train_tokens
    assert {s.label for s in specs} >= {"design", "anchor:natural", "ladder"}
    for s in specs:  # 1/8 of each shard for the swarm's proxies, 1/32 and 1/16 on the ladder
        want = matched_pool(n, s.train["tokens"], cfg.final.tokens, cfg.swarm.seq_len + 1)
        assert [d.pool_tokens or d.train_tokens for d in s.domains] == want.tolist()
        np.testing.assert_allclose(epochs(s.weights, s.train["tokens"], want),
                                   epochs(s.weights, cfg.final.tokens, n), rtol=5e-3)  # ceil: < 1 token
    assert [s.run_id for s in again] == [s.run_id for s in specs]  # deterministic
    assert set(statuses.values()) == {"ok"}
    with ReadOnlyWarehouse(cfg.runtime.warehouse) as db:
        rec = mixture_record(db, exp.experiment_id)
    assert rec["proxies"] == {"tokens": cfg.swarm.tokens, "match_repetition": True}
    for d in rec["domains"]:
        assert d["proxy_epochs"] == pytest.approx(d["epochs"], rel=5e-3)
    text = (exp.report_dir() / "report.md").read_text()
    assert "repetition-matched" in text and "epochs_final" in text and result.fit is not None
