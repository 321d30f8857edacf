"""The fit step in two parts (fit: CV and the choice; propose: the proposal), its composition, and
that it never imports torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from mixopt.experiment import Experiment
from mixopt.runspec import DomainShard, RunResult
from mixopt.tasks.fit import fit, fit_and_propose, propose
from mixopt.tasks.swarm import plan_swarm, record_result
from mixopt.warehouse import Warehouse
from tests.helpers import tiny_config

OPT = np.array([0.5, 0.3, 0.2])


def _experiment(tmp_path, **over) -> Experiment:
    cfg = tiny_config(tmp_path, swarm={"n_proxies": 8}, **over)
    domains = [DomainShard(n, "x", "y", t, 100) for n, t in (("a", 50_000), ("b", 50_000), ("c", 30_000))]
    return Experiment.create(cfg, domains, vocab_size=300, fingerprint="fp")


def _train_all(exp: Experiment, wh: Warehouse) -> None:
    todo, _ = plan_swarm(exp, wh)
    for s in todo:
        loss = 3.0 + 2.0 * float(np.sum((np.array(s.weights) - OPT) ** 2))
        record_result(exp, wh, s, RunResult(run_id=s.run_id, status="ok", n_params=1000, tokens=s.train["tokens"],
                                            val_losses={d: loss for d in exp.domain_names}))


def test_fit_then_propose_is_fit_and_propose(tmp_path) -> None:
    exp = _experiment(tmp_path, regressor={"kind": "linear"}, proposer={"kind": "best_seen"})
    with Warehouse(exp.warehouse) as wh:
        _train_all(exp, wh)
        f = fit(exp, wh)
        assert f.chosen == "linear" and [r.name for r in f.reports] == ["linear"] and len(f.y) == 8
        assert f.model.predict(f.X).shape == (8,)
        out = propose(exp, wh, f)
        assert np.allclose(out.weights, f.X[np.argmin(f.y)]) and out.predicted == float(f.y.min())
        again = fit_and_propose(exp, wh)  # same rows, same ids: the same fit and proposal
        assert (again.fit_id, again.proposal_id, again.weights) == (out.fit_id, out.proposal_id, out.weights)
        assert wh.query("SELECT count(*) AS n FROM fits")[0]["n"] == 1


def test_auto_cross_validates_its_candidates_and_itself(tmp_path) -> None:
    exp = _experiment(tmp_path, proposer={"kind": "exact"})
    with Warehouse(exp.warehouse) as wh:
        _train_all(exp, wh)
        f = fit(exp, wh)
    assert [r.name for r in f.reports] == ["linear", "lightgbm", "auto"] and f.chosen == "auto"
    assert set(f.fit_ids) == {"linear", "lightgbm", "auto"}


def test_the_fit_step_does_not_import_torch() -> None:
    code = "\n".join([
        "import sys, types, mixopt.tasks.fit, mixopt.tasks.fidelity as f",
        "assert 'torch' not in sys.modules, 'imported by the import'",
        "from mixopt.config import TrainConfig",
        "assert f.train_compute(types.SimpleNamespace(vocab_size=300), TrainConfig()) > 0",
        "assert 'torch' not in sys.modules, 'imported to count parameters'",
    ])
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_data_constrained_law_is_fitted_at_the_proxies_budget_and_proposes_at_the_final(tmp_path) -> None:
    exp = _experiment(tmp_path, regressor={"kind": "data_constrained"}, final={"tokens": 400_000})
    with Warehouse(exp.warehouse) as wh:
        _train_all(exp, wh)
        f = fit(exp, wh)
        assert f.chosen == "data_constrained" and [r.name for r in f.reports] == ["data_constrained"]
        assert f.model.final and np.isfinite(f.reports[0].spearman)
        out = propose(exp, wh, f)
    assert np.isclose(sum(out.weights), 1.0) and out.regressor == "data_constrained"
    # c (30,000 tokens) is read 400,000 / 30,000 = 13 times alone: the law predicts it at the final budget
    heavy = np.array([[0.1, 0.1, 0.8]])
    assert f.model.predict(heavy)[0] != f.model.base_.predict(heavy)[0]
