"""Same config, same machine, same code: the same proxies, CV table and proposal, whatever the output
folder (ids come from content, CV folds from the config's seed), with anchors, a ladder and a pilot on."""

import pytest

from mixopt.flows.search import mixture_search
from mixopt.warehouse import read_only_query
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow


def _search(folder):
    cfg = tiny_config(folder, design={"anchor_proxies": True, "noise_seeds": 1, "target_fraction": 0.25,
                                      "ladder": {"scales": [{"tokens_fraction": 0.25}, {"tokens_fraction": 0.5}],
                                                 "mixtures": 3}},
                      final={"seeds": [0, 1], "pilot": {"enabled": True, "tokens_fraction": 0.5, "seeds": [100, 101]}},
                      regressor={"cv_repeats": 2})
    result = mixture_search(config=cfg)
    losses = read_only_query(cfg.runtime.warehouse, "select run_id, target_loss from runs order by run_id")[1]
    return result, losses


def _timeless(details: dict) -> dict:
    d = dict(details)
    d["bootstrap"] = {k: v for k, v in d.get("bootstrap", {}).items() if k != "seconds"}
    return d


def test_two_output_folders_give_the_same_search_bit_for_bit(tmp_path, prefect_harness):
    a, runs_a = _search(tmp_path / "first")
    b, runs_b = _search(tmp_path / "second" / "elsewhere")
    assert a.experiment_id == b.experiment_id
    assert runs_a == runs_b  # the same run ids (proxies, pilot, final) with the same losses
    assert a.fit.cv == b.fit.cv and a.fit.regressor == b.fit.regressor
    assert a.fit.weights == b.fit.weights and _timeless(a.fit.details) == _timeless(b.fit.details)
    assert a.verdict == b.verdict
    labels = {r[0][0] for r in runs_a}
    assert labels >= {"p", "f"}  # proxies and final runs were both compared
    assert "scale_checks" in a.fit.details and "bootstrap" in a.fit.details  # the ladder and the hedge ran
