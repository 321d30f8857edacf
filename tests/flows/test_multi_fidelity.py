"""End to end: a tiny multi-fidelity sequential swarm, its checking runs, the fit and the report."""

import re
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from mixopt.flows.search import mixture_search
from mixopt.flows.swarm import train_swarm
from mixopt.warehouse import read_only_query
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow

LOW = {"tokens": 2048, "model": {"n_layer": 1, "n_embd": 8, "n_head": 2}}


def test_a_multi_fidelity_swarm_reports_transfer_and_noise_floor(tmp_path, prefect_harness):
    cfg = tiny_config(tmp_path, swarm={"n_proxies": 6}, final={"enabled": False},
                      design={"method": "sequential", "initial": 4, "round_size": 2, "low_fidelity": LOW,
                              "transfer_mixtures": 3, "noise_mixtures": 2, "noise_seeds": 2})
    result = mixture_search(config=cfg)
    wh = cfg.runtime.warehouse
    q = lambda sql: read_only_query(wh, sql)[1]  # noqa: E731
    assert result.swarm.trained == 13 and result.swarm.ok == 13  # 6 design + 3 transfer + 2 x 2 seed repeats
    counts = dict(((label, size), n) for label, size, n in q(
        "select label, size, count(*) from proxy_runs group by all"))
    assert counts[("transfer", "low")] == 3 and counts[("seed_repeat", "target")] == 4
    assert counts.get(("design", "target"), 0) + counts.get(("design", "low"), 0) == 6
    # the low size really is smaller: fewer parameters and tokens, recorded on every run
    sizes = {size: (p, t) for size, p, t in q("select size, max(n_params), max(tokens) from proxy_runs group by size")}
    assert sizes["low"][0] < sizes["target"][0] and sizes["low"][1] == 2048 < sizes["target"][1]
    # fits saw target-size rows only, one per mixture
    n_target = q("select count(*) from proxy_runs where size = 'target' and label <> 'seed_repeat'")[0][0]
    assert {n for n, in q("select distinct n_train from fits")} == {n_target} == {result.fit.n_train}

    # the report's numbers are the warehouse's
    text = Path(result.report_path).read_text()
    assert "## Scale transfer and noise floor" in text
    pairs = q("""select l.target_loss, t.target_loss from proxy_runs l join proxy_runs t using (mixture_id)
                 where l.size = 'low' and t.size = 'target'
                 and l.label <> 'seed_repeat' and t.label <> 'seed_repeat'""")
    assert len(pairs) >= 3
    rho = spearmanr(*np.array(pairs).T)[0]
    assert f"over n = {len(pairs)} mixtures trained at both: **{rho:.3f}**" in text
    groups = {}
    for m, loss in q("select mixture_id, target_loss from proxy_runs where size = 'target'"):
        groups.setdefault(m, []).append(loss)
    reps = [np.array(v) for v in groups.values() if len(v) > 1]
    assert len(reps) == 2 and all(len(v) == 3 for v in reps)
    sd = np.sqrt(sum(((v - v.mean()) ** 2).sum() for v in reps) / sum(len(v) - 1 for v in reps))
    assert f"2 mixtures (6 runs, 4 degrees of freedom): **{sd:.4f}**" in text
    rmse = q("select cv_rmse from fits where chosen")[0][0]
    assert ("noise floor (" in text) == (rmse < sd)  # the warning appears exactly when it should
    assert ("the ranks do not transfer" in text) == (rho < cfg.design.transfer_min_rho)
    assert len(result.warnings) == len(re.findall(r"\*\*warning:\*\*", text))
    print(f"\ntransfer rho {rho:.3f} over {len(pairs)} mixtures; noise floor {sd:.4f}; chosen CV RMSE {rmse:.4f}; "
          f"warnings {result.warnings}")

    again = train_swarm(config=cfg)  # nothing is trained twice
    assert again.trained == 0 and again.reused == 13
