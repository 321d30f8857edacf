"""End to end with a target that no domain owns: an eval set never trained on, through the ladder, the
anchors (with unimax and the similarity prior), the hedge, the pilot and the final comparison."""

import json

import numpy as np
import pytest

from mixopt.corpus.synthetic import _Chain, domain_names, synthetic_documents
from mixopt.flows.search import mixture_search
from mixopt.warehouse import Warehouse, read_only_query, reads
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow


def _fresh(index: int, n_docs: int) -> list[str]:
    """Fresh documents of synthetic domain `index`: its generator (the corpus' seed), other random draws."""
    rng = np.random.default_rng([0, index])  # as `synthetic_documents` builds the domain's chain
    chain = _Chain(rng, int(rng.integers(96, 256)), 2 ** (1 + index % 4), end_prob=0.05 + 0.05 * (index % 3))
    draws = np.random.default_rng([99, index])
    return [chain.document(draws, int(n)) for n in draws.integers(40, 200, size=n_docs)]


def _eval_set(path) -> None:
    """Fresh text of the first two synthetic domains, 3:1 by documents: text no domain holds."""
    docs = _fresh(0, 45) + _fresh(1, 15)
    assert not set(docs) & set(synthetic_documents(0, 60) + synthetic_documents(1, 60))
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, prefect_harness):
    tmp = tmp_path_factory.mktemp("evalonly")
    _eval_set(tmp / "bench.jsonl")
    a, b, _c = domain_names(3)
    cfg = tiny_config(
        tmp,
        target={"eval_sets": [{"name": "bench", "paths": [str(tmp / "bench.jsonl")]}], "weights": {"bench": 1.0}},
        swarm={"n_proxies": 8},
        design={"anchor_proxies": True, "noise_seeds": 1, "target_fraction": 0.5, "anchors": {"hand": {a: 1.0}},
                "ladder": {"scales": [{"tokens_fraction": 0.25}, {"tokens_fraction": 0.5}], "mixtures": 3}},
        final={"seeds": [0, 1], "max_seeds": 3, "baselines": ["natural", "stratified", "unimax", "similarity", "hand"],
               "pilot": {"enabled": True, "seeds": [100, 101], "tokens_fraction": 0.25}},
    )
    result = mixture_search(config=cfg)
    return cfg, result, (a, b)


def test_the_design_is_centred_on_the_similarity_prior_not_uniform(finished):
    cfg, _, (a, b) = finished
    with Warehouse(cfg.runtime.warehouse) as wh:
        from mixopt.tasks.corpus import prepare_experiment

        exp = prepare_experiment(cfg, wh)
    centre = exp.design_centre()
    assert not np.allclose(centre, 1 / 3)  # the old fallback: uniform
    names = exp.domain_names
    # the eval set is 3:1 fresh text of a and b: the prior puts most weight there, and more on a
    assert centre[names.index(a)] > centre[names.index(b)] > 0.05
    assert centre[names.index(a)] + centre[names.index(b)] > 0.8


def test_every_stage_ran_on_the_eval_set(finished):
    cfg, result, _ = finished
    wh = cfg.runtime.warehouse
    labels = {r[0] for r in read_only_query(wh, "select distinct label from proxy_runs")[1]}
    assert {"design", "ladder", "seed_repeat", "anchor:natural", "anchor:stratified"} <= labels
    with Warehouse(wh) as w:
        from mixopt.experiment import mixture_id
        from mixopt.tasks.corpus import prepare_experiment
        from mixopt.tasks.fidelity import anchor_proxies

        anchors = anchor_proxies(prepare_experiment(cfg, w))
    assert list(anchors) == ["natural", "stratified", "unimax", "similarity", "hand"]
    trained = {r[0] for r in read_only_query(wh, "select mixture_id from proxy_runs where status = 'ok' "
                                                 "and coalesce(size, 'target') = 'target'")[1]}
    assert all(mixture_id(w) in trained for w in anchors.values())  # equal mixtures share their runs
    roles = dict(read_only_query(wh, "select role, count(*) from runs where status = 'ok' group by role")[1])
    assert roles["pilot"] > 0 and roles["final"] > 0
    # every run is measured on the eval set, and the target is that loss alone
    bad = read_only_query(wh, "select r.run_id from runs r join evals e using (run_id) where e.domain = 'bench' "
                              "and abs(e.loss - r.target_loss) > 1e-9")[1]
    assert bad == []
    (n_bench,), = read_only_query(wh, "select count(*) from evals where domain = 'bench'")[1]
    (n_runs,), = read_only_query(wh, "select count(*) from runs where status = 'ok'")[1]
    assert n_bench == n_runs
    details = result.fit.details
    assert "raw_optimum" in details and "anchors_predicted" in details  # the law and the hedge ran


def test_the_report_opens_with_the_answer_and_every_baseline(finished):
    cfg, result, _ = finished
    text = open(result.report_path, encoding="utf-8").read()
    head = text[: text.index("## Domains")]
    assert "## The answer" in head and "Train this mixture" in head and "**Claim" in head
    for b in ("natural", "stratified", "unimax", "similarity", "hand"):
        assert f"| {b} |" in head
    assert "prior:similarity" in text  # the prior's rank correlation next to the regressors'
    with Warehouse(cfg.runtime.warehouse) as wh:
        exp_id = reads.latest_experiment(wh)
        current = reads.current_final_runs(wh, exp_id)
        from mixopt.export import mixture_record

        rec = mixture_record(wh, exp_id)
    assert rec["target"]["eval_sets"] == ["bench"] and rec["target"]["weights"] == {"bench": 1.0}
    assert {"natural", "hand"} <= set(rec["compute_equivalent"])  # from the held-out curves, per baseline
    assert all(v["seeds"] >= 2 for v in rec["compute_equivalent"].values())
    seeds = sorted(s for names in current.values() for n, s in names if n == "proposed")
    assert seeds in ([0, 1], [0, 1, 2])  # the planned looks: 2 seeds, and a third unless every baseline was decided
    assert "Seed plan (made before the final runs): looks at" in head
