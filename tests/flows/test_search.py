"""End to end: the parent flow on the synthetic corpus, checked through what lands in the warehouse."""

import numpy as np
import pytest

from mixopt.experiment import Experiment
from mixopt.flows.search import mixture_search
from mixopt.warehouse import read_only_query
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow


def _count(path, sql):
    return read_only_query(path, sql)[1]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, prefect_harness):
    tmp = tmp_path_factory.mktemp("search")
    cfg = tiny_config(tmp)
    first = mixture_search(config=cfg)
    second = mixture_search(config=cfg)  # same experiment again: everything is reused
    return cfg, first, second


def test_the_swarm_lands_in_the_warehouse(finished):
    cfg, first, _ = finished
    wh = cfg.runtime.warehouse
    assert first.swarm.trained == 6 and first.swarm.ok == 6
    rows = _count(wh, "select status, count(*) from proxy_runs group by status")
    assert rows == [("ok", 6)]
    # every proxy has a loss curve with one point per step and a loss for every domain
    (n_eval,), = _count(wh, "select count(*) from evals join proxy_runs using (run_id)")
    assert n_eval == 6 * 3
    bad = _count(wh, "select r.run_id from proxy_runs r join metrics m using (run_id) group by r.run_id, r.steps "
                     "having count(*) <> any_value(r.steps)")
    assert bad == []
    (n_mix,), = _count(wh, "select count(distinct mixture_id) from proxy_runs")
    assert n_mix == 6
    sums = _count(wh, "select mixture_id, sum(weight) from mixture_weights where kind = 'design' group by mixture_id")
    assert all(abs(s - 1) < 1e-9 for _, s in sums)


def test_fits_are_cross_validated_and_one_is_chosen(finished):
    cfg, first, _ = finished
    wh = cfg.runtime.warehouse
    fits = _count(wh, "select regressor, chosen, n_train, folds from fits order by regressor")
    assert [f[0] for f in fits] == ["auto", "lightgbm", "linear", "prior:similarity"]
    assert [f[0] for f in fits if f[1]] == ["auto"]  # the configured kind; its CV redoes the choice per fold
    assert all(f[2] == 6 and f[3] == 3 for f in fits[:3])
    assert fits[3][1:] == (False, 6, 0)  # the data-only prior: no folds (it sees no proxy), never chosen
    (n_pred,), = _count(wh, "select count(*) from fit_predictions")
    assert n_pred == 4 * 6  # one out-of-fold prediction (or prior score) per proxy per row


def test_the_proposal_is_a_mixture_and_traceable_to_its_fit(finished):
    cfg, first, _ = finished
    w = np.array(first.fit.weights)
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-6
    rows = _count(cfg.runtime.warehouse, "select p.fit_id, f.chosen from proposals p join fits f using (fit_id)")
    assert rows and all(chosen for _, chosen in rows)


def test_final_runs_compare_proposal_with_baselines(finished):
    cfg, first, _ = finished
    rows = _count(cfg.runtime.warehouse, "select label, status, n_params, tokens from final_runs order by label")
    assert [r[0] for r in rows] == ["natural", "proposed", "stratified"]
    assert all(r[1] == "ok" for r in rows)
    assert len({r[2] for r in rows}) == 1 and len({r[3] for r in rows}) == 1  # same model, same budget
    labels = [c["label"] for c in first.comparison]
    assert labels[0] == "proposed" and set(labels) == {"proposed", "natural", "stratified"}
    assert "proposal" in first.verdict


def test_report_and_plots_are_written(finished):
    _, first, _ = finished
    from pathlib import Path

    report = Path(first.report_path)
    text = report.read_text()
    assert "## Final comparison" in text and "## Fits" in text
    assert {p.name for p in report.parent.glob("*.png")} == {
        "cv_predicted_vs_actual.png", "mixture_proposed_vs_natural.png", "final_heldout_curves.png",
        "final_paired_differences.png", "domain_interactions.png"}  # held-out curves replace training losses
    assert "## Held-out target during the final runs" in text and "## How domains interact" in text
    assert "## Achieved mixtures" in text
    html = (report.parent / "report.html").read_text()
    assert html.count("<img") == 5 and html.count('src="data:image/png;base64,') == 5  # self-contained


def test_rerunning_reuses_every_finished_run(finished):
    cfg, first, second = finished
    assert second.swarm.trained == 0 and second.swarm.reused == 6
    assert second.experiment_id == first.experiment_id
    (n_runs,), = _count(cfg.runtime.warehouse, "select count(*) from runs")
    assert n_runs == 6 + 3


def test_a_diverging_proxy_is_recorded_and_excluded(tmp_path, prefect_harness, monkeypatch):
    cfg = tiny_config(tmp_path, final={"enabled": False})
    original = Experiment.run_spec
    first_id = []

    def with_fault(self, role, label, weights, seed, train):
        spec = original(self, role, label, weights, seed, train)
        if role == "proxy" and (not first_id or first_id[0] == spec.run_id):
            first_id[:] = [spec.run_id]
            spec.fault = "nan@2"
        return spec

    monkeypatch.setattr(Experiment, "run_spec", with_fault)
    result = mixture_search(config=cfg)
    assert result.swarm.diverged == 1 and result.swarm.ok == 5
    wh = cfg.runtime.warehouse
    assert _count(wh, "select status, last_good_step from proxy_runs where status <> 'ok'") == [("diverged", 1)]
    (n_train,), = _count(wh, "select max(n_train) from fits")
    assert n_train == 5
    assert "diverged" in (tmp_path / "out" / "reports" / result.experiment_id / "report.md").read_text()
