"""The swarm's design on `source:topic` domains: two-level draws, then sequential rounds, all keeping
a frozen source's topic mix."""

import numpy as np

from mixopt.experiment import Experiment
from mixopt.runspec import DomainShard, RunResult
from mixopt.tasks.swarm import design_mixtures
from mixopt.warehouse import Warehouse
from tests.helpers import tiny_config

NAMES = ["web:news", "web:forums", "web:blogs", "code:python", "books"]
FROZEN = {"news": 0.5, "forums": 0.3, "blogs": 0.2}


def test_initial_batch_and_gp_rounds_keep_the_frozen_topic_mix(tmp_path):
    cfg = tiny_config(tmp_path, swarm={"n_proxies": 9},
                      design={"method": "sequential", "initial": 6, "round_size": 3,
                              "hierarchy": {"sources": {"web": {"frozen": FROZEN}}}})
    shards = [DomainShard(n, "x", "y", 2000 * (i + 1), 100) for i, n in enumerate(NAMES)]
    exp = Experiment.create(cfg, shards, 300, "fp")
    h = exp.hierarchy()
    coef = np.array([1.0, 0.5, -1.0, 0.3, 0.2])  # a free search would move web's topic mix to blogs
    with Warehouse(tmp_path / "w.duckdb") as wh:
        first = design_mixtures(exp, wh)
        assert len(first) == 6
        for i, (mid, w) in enumerate(first):
            loss = float(np.dot(coef, w))
            wh.record_run(RunResult(run_id=f"r{i}", status="ok", tokens=4096, val_losses={n: loss for n in NAMES}),
                          experiment_id=exp.experiment_id, role="proxy", label="design", mixture_id=mid, seed=0,
                          target_loss=loss, code_version="t", size="target")
        every = design_mixtures(exp, wh)
    assert len(every) == 9
    W = np.array([w for _, w in every])
    assert all(h.respects(w) for w in W)
    web = W[:, :3]
    on = web.sum(axis=1) > 0
    np.testing.assert_allclose(web[on] / web[on].sum(axis=1, keepdims=True), np.tile([0.5, 0.3, 0.2], (on.sum(), 1)),
                               atol=1e-9)
