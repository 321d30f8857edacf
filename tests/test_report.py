"""The report's final comparison: one final configuration at a time, and an honest verdict."""

from mixopt.report import comparison_rows, verdict_text
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
        text = verdict_text(latest)
        assert "beats **natural** by 0.3000" in text and "not conclusive" not in text
        assert "not conclusive" in verdict_text(chosen)  # one seed each
