"""The swarm plan with a second proxy size and the checking runs: transfer and seed-repeat specs,
multi-fidelity rounds, nothing trained twice, and fits that never mix sizes (no training here:
results are made up from a known loss function)."""

import numpy as np
import pytest

from mixopt.experiment import Experiment, mixture_id
from mixopt.mixtures.design import token_caps
from mixopt.runspec import DomainShard, RunResult
from mixopt.tasks.fidelity import fidelity_levels
from mixopt.tasks.fit import fit_and_propose
from mixopt.tasks.swarm import plan_swarm, record_result
from mixopt.warehouse import Warehouse
from tests.helpers import tiny_config

OPT = np.array([0.5, 0.3, 0.2])
LOW = {"tokens": 1024, "model": {"n_layer": 1, "n_embd": 8, "n_head": 2}}


def _experiment(tmp_path, **design):
    cfg = tiny_config(tmp_path, swarm={"n_proxies": 8}, design=design)
    domains = [DomainShard(n, "x", "y", t, 100) for n, t in (("a", 5000), ("b", 5000), ("c", 300))]
    return Experiment.create(cfg, domains, vocab_size=300, fingerprint="fp")


def _finish(exp, wh, specs):
    """Record a made-up result per spec: a smooth loss of the mixture, +0.5 at the low size, seed noise."""
    for s in specs:
        w = np.array(s.weights)
        loss = 3.0 + 2.0 * np.sum((np.sqrt(w) - np.sqrt(OPT)) ** 2) + (0.5 if s.size == "low" else 0.0) \
            + 0.01 * np.sin(7.0 * s.seed + 13.0 * w[0])
        record_result(exp, wh, s, RunResult(run_id=s.run_id, status="ok", n_params=1000, tokens=s.train["tokens"],
                                            val_losses={d: float(loss) for d in exp.domain_names}))


def _check_feasible(exp, specs):
    W = np.array([s.weights for s in specs])
    caps = token_caps(exp.train_tokens, exp.cfg.swarm.tokens, exp.cfg.design.proxy_max_epochs)
    assert np.allclose(W.sum(axis=1), 1.0) and (W >= 0).all() and (W <= caps + 1e-9).all()
    assert caps.min() < 1  # the caps bind on the small domain, so the check means something


@pytest.mark.slow
def test_a_multi_fidelity_sequential_swarm_plans_checks_and_rounds(tmp_path):
    exp = _experiment(tmp_path, method="sequential", initial=4, round_size=2, low_fidelity=LOW,
                      transfer_mixtures=3, noise_mixtures=2, noise_seeds=2)
    levels = fidelity_levels(exp)
    assert levels["target"] == 0.0 and levels["low"] < np.log(0.5)  # FLOPs: far cheaper
    with Warehouse(exp.warehouse) as wh:
        todo, done = plan_swarm(exp, wh)
        assert done == 0
        by = {lab: [s for s in todo if s.label == lab] for lab in ("design", "transfer", "seed_repeat")}
        assert [len(v) for v in by.values()] == [4, 3, 4]
        assert all(s.size == "target" and s.seed == 0 for s in by["design"])
        design_w = [s.weights for s in by["design"]]
        assert [s.weights for s in by["transfer"]] == design_w[:3]  # the first 3 design mixtures, at the low size
        assert all(s.size == "low" and s.train["tokens"] == 1024 and s.train["model"]["n_embd"] == 8
                   for s in by["transfer"])
        assert sorted((s.weights, s.seed) for s in by["seed_repeat"]) == sorted(
            (w, seed) for w in design_w[:2] for seed in (1, 2))
        assert all(s.size == "target" and s.train["tokens"] == exp.cfg.swarm.tokens for s in by["seed_repeat"])
        assert len({s.run_id for s in todo}) == len(todo)
        _check_feasible(exp, todo)
        _finish(exp, wh, todo)
        seen = {(mixture_id(s.weights), s.size, s.seed) for s in todo}
        for _ in range(2):  # two rounds of 2: the acquisition picks the mixture and the size
            todo, done = plan_swarm(exp, wh)
            assert len(todo) == 2 and all(s.label == "design" and s.seed == 0 for s in todo)
            assert all(s.size in ("target", "low") for s in todo)
            assert all(s.train["tokens"] == (1024 if s.size == "low" else exp.cfg.swarm.tokens) for s in todo)
            _check_feasible(exp, todo)
            new = {(mixture_id(s.weights), s.size, s.seed) for s in todo}
            assert not new & seen and not {m for m, _, _ in new} & {m for m, _, _ in seen}  # new mixtures only
            _finish(exp, wh, todo)
            seen |= new
        todo, done = plan_swarm(exp, wh)
        assert todo == [] and done == 15 == len(seen)  # 8 design + 3 transfer + 4 repeats, none planned twice
        assert len(wh.mixtures(exp.experiment_id, "design")) == 8
        sizes = {r["size"]: r["n"] for r in wh.query("SELECT size, count(*) AS n FROM proxy_runs GROUP BY size")}
        assert sizes["low"] + sizes["target"] == 15 and sizes["low"] == sum(1 for _, size, _ in seen if size == "low")
        labels = {r["label"] for r in wh.query("SELECT DISTINCT label FROM proxy_runs")}
        assert labels == {"design", "transfer", "seed_repeat"}

        # fits: every regressor but the multi-fidelity GP sees target-size rows, one per mixture
        n_target = sum(1 for m, size, seed in seen if size == "target" and seed == 0)
        out = fit_and_propose(exp, wh)
        assert out.n_train == n_target
        fits = {r["regressor"]: r for r in wh.query("SELECT regressor, n_train, chosen, cv_spearman, cv_r2 FROM fits")}
        assert set(fits) == {"linear", "lightgbm", "auto", "gp_multi_fidelity"}
        mf_wins = (fits["gp_multi_fidelity"]["cv_spearman"], fits["gp_multi_fidelity"]["cv_r2"]) > (
            fits["auto"]["cv_spearman"], fits["auto"]["cv_r2"])  # auto vs the multi-fidelity GP: same CV rows
        assert [n for n, f in fits.items() if f["chosen"]] == ["gp_multi_fidelity" if mf_wins else "auto"]
        assert out.regressor == ("gp_multi_fidelity" if mf_wins else "auto")
        assert all(f["n_train"] == n_target for f in fits.values())  # CV scores target-size rows only
        mixed = wh.query("SELECT count(*) AS n FROM fit_predictions JOIN proxy_runs USING (run_id) "
                         "WHERE size <> 'target' OR label = 'seed_repeat'")
        assert mixed[0]["n"] == 0


def test_a_dirichlet_design_trains_only_the_transfer_mixtures_small(tmp_path):
    exp = _experiment(tmp_path, low_fidelity=LOW, transfer_mixtures=3, noise_mixtures=1, noise_seeds=3)
    with Warehouse(exp.warehouse) as wh:
        todo, _ = plan_swarm(exp, wh)
        labels = [(s.label, s.size) for s in todo]
        assert labels.count(("design", "target")) == 8 and labels.count(("transfer", "low")) == 3
        assert labels.count(("seed_repeat", "target")) == 3 and len(todo) == 14
        _finish(exp, wh, todo[:5])
        again, done = plan_swarm(exp, wh)
        assert done == 5 and {s.run_id for s in again} == {s.run_id for s in todo[5:]}


def test_without_a_second_size_nothing_changes_but_the_repeats(tmp_path):
    exp = _experiment(tmp_path, noise_mixtures=2, noise_seeds=1)
    plain = _experiment(tmp_path / "plain")
    assert exp.experiment_id == plain.experiment_id  # the checks are not part of the experiment
    with Warehouse(exp.warehouse) as wh:
        todo, _ = plan_swarm(exp, wh)
    with Warehouse(plain.warehouse) as wh:
        base, _ = plan_swarm(plain, wh)
    assert [s.run_id for s in todo if s.label == "design"] == [s.run_id for s in base]  # same ids as before
    assert [s.label for s in todo].count("seed_repeat") == 2 and all(s.size == "target" for s in todo)


def test_an_unknown_size_is_refused(tmp_path):
    from mixopt.tasks.fidelity import size_train

    with pytest.raises(ValueError, match="unknown proxy size 'low'"):
        size_train(_experiment(tmp_path), "low")


def test_a_round_left_unfinished_is_finished_before_the_next_is_chosen(tmp_path):
    """After a crash mid-round, planning again returns that round's untrained proxies and chooses no
    new mixtures; once they have results, the next round comes."""
    exp = _experiment(tmp_path, method="sequential", initial=4, round_size=2, noise_mixtures=0)
    with Warehouse(exp.warehouse) as wh:
        first, _ = plan_swarm(exp, wh)
        _finish(exp, wh, first)
        round1, _ = plan_swarm(exp, wh)
        assert len(round1) == 2
        _finish(exp, wh, round1[:1])  # the flow dies after one proxy of the round
        again, done = plan_swarm(exp, wh)
        assert [s.run_id for s in again] == [round1[1].run_id] and done == 5
        assert len(wh.mixtures(exp.experiment_id, "design")) == 6  # no new mixtures yet
        _finish(exp, wh, again)
        round2, _ = plan_swarm(exp, wh)
        assert len(round2) == 2 and not {s.run_id for s in round2} & {s.run_id for s in first + round1}


def test_anchors_and_the_ladder_are_planned_and_only_target_rows_feed_the_single_scale_fit(tmp_path):
    exp = _experiment(tmp_path, anchor_proxies=True, noise_seeds=2, anchors={"mine": {"a": 0.7, "c": 0.3}},
                      ladder={"scales": [{"tokens_fraction": 0.25}, {"tokens_fraction": 0.5}], "mixtures": 3})
    with Warehouse(exp.warehouse) as wh:
        todo, _ = plan_swarm(exp, wh)
        by = {}
        for s in todo:
            by.setdefault(s.label, []).append(s)
        assert {k: len(v) for k, v in by.items()} == {
            "design": 8, "anchor:natural": 1, "anchor:stratified": 1, "anchor:mine": 1,
            "seed_repeat": 6,  # 3 anchors x 2 more seeds
            "ladder": 12}  # 2 rungs x (3 design mixtures + 3 anchors)
        assert by["anchor:mine"][0].weights == pytest.approx([0.7, 0.0, 0.3])
        tokens = sorted({s.train["tokens"] for s in by["ladder"]})
        assert tokens == [exp.cfg.swarm.tokens // 4, exp.cfg.swarm.tokens // 2]
        assert {s.size for s in by["ladder"]} == {"ladder1", "ladder2"}
        _finish(exp, wh, todo)
        rows = wh.training_table(exp.experiment_id)
        assert len(rows) == 8 + 3  # design and anchors at the swarm's seed; no repeats, no ladder rungs
        # the anchors are not design mixtures: growing the swarm samples design mixtures only
        assert len(wh.mixtures(exp.experiment_id, "design")) == 8
        assert len(wh.mixtures(exp.experiment_id, "anchor")) == 3
        again, done = plan_swarm(exp, wh)
        assert again == [] and done == len(todo)
