"""The report's final comparison: one final configuration at a time, and an honest verdict."""

from mixopt.report import comparison_rows
from mixopt.report.choice import paired_verdicts, verdict_sentence
from mixopt.runspec import DomainShard, RunResult
from mixopt.warehouse import Warehouse


def _final(wh, run_id, label, seed, loss, n_params):
    r = RunResult(run_id=run_id, status="ok", n_params=n_params, tokens=1000, val_losses={"a": loss})
    wh.record_run(r, experiment_id="e", role="final", label=label, mixture_id="m", seed=seed,
                  target_loss=loss, code_version="t")


def test_runs_of_different_final_configs_are_not_pooled(tmp_path):
    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.record_experiment("e", "demo", "h", "fp", {}, [DomainShard("a", "x", "y", 10, 2)], [1.0])
        _final(wh, "big-p", "proposed", 0, 5.0, 1000)  # an earlier, larger final config
        _final(wh, "big-n", "natural", 0, 5.1, 1000)
        for seed, (p, n) in enumerate([(6.0, 6.3), (6.1, 6.4), (6.05, 6.35)]):
            _final(wh, f"s-p{seed}", "proposed", seed, p, 10)
            _final(wh, f"s-n{seed}", "natural", seed, n, 10)
        latest = comparison_rows(wh, "e")
        assert {r["label"]: r["seeds"] for r in latest} == {"proposed": 3, "natural": 3}
        assert all(r["n_params"] == 10 for r in latest)
        chosen = comparison_rows(wh, "e", ["big-p", "big-n"])
        assert {r["label"]: r["mean_target"] for r in chosen} == {"proposed": 5.0, "natural": 5.1}
        small = [f"s-{k}{seed}" for k in "pn" for seed in range(3)]
        text = verdict_sentence(paired_verdicts(wh, "e", small))
        assert "beats natural by 0.300" in text and "95% CI" in text
        one = verdict_sentence(paired_verdicts(wh, "e", ["big-p", "big-n"]))
        assert "on 1 seed (no interval)" in one and "beats" not in one  # one seed decides nothing


def _proxy(wh, run_id, mixture, loss, size="target", label="design", seed=0, n_params=100, tokens=1000):
    r = RunResult(run_id=run_id, status="ok", n_params=n_params, tokens=tokens, val_losses={"a": loss})
    wh.record_run(r, experiment_id="e", role="proxy", label=label, mixture_id=mixture, seed=seed,
                  target_loss=loss, code_version="t", size=size)


def _checks_warehouse(tmp_path, cv_rmse):
    import math

    wh = Warehouse(tmp_path / "w.duckdb")
    wh.record_experiment("e", "demo", "h", "fp", {"design": {"transfer_min_rho": 0.9}},
                         [DomainShard("a", "x", "y", 10, 2)], [1.0])
    target = {"m1": 2.0, "m2": 2.2, "m3": 2.4, "m4": 2.6}
    low = {"m1": 3.0, "m2": 3.4, "m3": 3.2, "m4": 3.6}  # ranks 1 3 2 4 against 1 2 3 4: rho 0.8
    for m in target:
        wh.record_mixture(m, "e", "design", [1.0])
        _proxy(wh, f"t-{m}", m, target[m])
        _proxy(wh, f"l-{m}", m, low[m], size="low", label="transfer", n_params=10, tokens=500)
    for i, loss in enumerate([2.02, 1.98]):
        _proxy(wh, f"r1-{i}", "m1", loss, label="seed_repeat", seed=i + 1)
    _proxy(wh, "r2", "m2", 2.23, label="seed_repeat", seed=1)
    wh.record_fit("f1", "e", {"name": "auto", "n": 4, "folds": 2, "spearman": 0.5, "kendall": 0.3, "r2": 0.1,
                              "rmse": cv_rmse}, chosen=True, predictions=[])
    sd = math.sqrt(((0.0 ** 2 + 0.02 ** 2 + 0.02 ** 2) + 2 * 0.015 ** 2) / 3)  # m1: 2.00 2.02 1.98; m2: 2.20 2.23
    return wh, sd


def test_the_report_gives_transfer_and_noise_floor_and_warns(tmp_path):
    from mixopt.report import build_report

    wh, sd = _checks_warehouse(tmp_path, cv_rmse=0.01)
    with wh:
        rep = build_report(wh, "e", tmp_path / "out")  # the threshold stored with the experiment: 0.9
    assert abs(rep.checks["transfer"].rho - 0.8) < 1e-12 and rep.checks["transfer"].n == 4
    assert abs(rep.checks["noise"].sd - sd) < 1e-12 and rep.checks["noise"].n_mixtures == 2
    assert abs(rep.checks["relative_cost"] - (10 * 500) / (100 * 1000)) < 1e-12
    text = rep.markdown
    assert "## Scale transfer and noise floor" in text
    assert f"**{sd:.4f}**" in text and "2 mixtures (5 runs, 3 degrees of freedom)" in text
    assert "over n = 4 mixtures trained at both: **0.800**" in text
    assert len(rep.warnings) == 2 and all(f"**warning:** {w}" in text for w in rep.warnings)
    assert "0.0100" in rep.warnings[0] and f"{sd:.4f}" in rep.warnings[0]
    assert "rho 0.800" in rep.warnings[1] and "below 0.90" in rep.warnings[1]
    assert "scale_transfer.png" in {p.name for p in rep.plots}
    # the top mixtures are target-size, one seed each: no low-size or repeated run among them
    assert {t["run_id"] for t in rep.top_mixtures} == {"t-m1", "t-m2", "t-m3", "t-m4"}


def test_no_warning_when_the_fit_is_above_the_floor_and_ranks_transfer(tmp_path):
    from mixopt.report import build_report

    wh, _ = _checks_warehouse(tmp_path, cv_rmse=0.05)
    with wh:
        rep = build_report(wh, "e", tmp_path / "out", min_rho=0.5)
    assert rep.warnings == [] and "No warning." in rep.markdown
