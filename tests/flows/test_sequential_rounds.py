"""A sequential design trains round by round: an initial batch, then GP-chosen rounds, no repeats."""

import numpy as np
import pytest

from mixopt.flows.swarm import train_swarm
from mixopt.mixtures.design import token_caps
from mixopt.warehouse import read_only_query
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow


def test_sequential_rounds_fill_the_swarm_without_repeats(tmp_path, prefect_harness):
    cfg = tiny_config(tmp_path, swarm={"n_proxies": 7},
                      design={"method": "sequential", "initial": 3, "round_size": 2})
    summary = train_swarm(config=cfg)
    assert summary.trained == 7 and summary.ok == 7
    wh = cfg.runtime.warehouse
    rows = read_only_query(wh, "select m.weights, r.created_at from proxy_runs r join mixtures m using (mixture_id) "
                               "order by r.created_at")[1]
    W = np.array([w for w, _ in rows])
    assert len({tuple(np.round(w, 4)) for w in W}) == 7  # no mixture trained twice
    assert np.allclose(W.sum(axis=1), 1) and (W >= 0).all()
    (train_tokens,) = zip(*read_only_query(wh, "select train_tokens from domains order by idx")[1])
    caps = token_caps(np.array(train_tokens, float), cfg.swarm.tokens, cfg.design.proxy_max_epochs)
    assert (W <= caps + 1e-9).all()  # every acquisition batch within the caps
    again = train_swarm(config=cfg)  # a later run (e.g. the nightly schedule) retrains nothing
    assert again.trained == 0 and again.reused == 7
