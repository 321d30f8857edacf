"""Migration 4 (evals.kind, the run_evals view) and the eval-set and group rows of a run."""

import duckdb
import pytest

from mixopt.runspec import DomainShard, RunResult
from mixopt.warehouse import Warehouse, reads, schema


def test_an_older_warehouse_gains_kinds_and_keeps_its_rows(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    monkeypatch.setattr(schema, "MIGRATIONS", [m for m in schema.MIGRATIONS if m[0] <= 3])
    schema.migrate(con)  # a warehouse as it was before migration 4
    con.execute("INSERT INTO runs (run_id, experiment_id, role, label, seed, status) "
                "VALUES ('old', 'e1', 'proxy', 'design', 0, 'ok')")
    con.execute("INSERT INTO evals VALUES ('old', 'web', 2.0)")
    con.close()
    monkeypatch.undo()
    with Warehouse(path) as wh:
        assert wh.query("SELECT max(version) AS v FROM schema_version")[0]["v"] >= 4
        doms = [DomainShard("web", "a", "b", 300, 30), DomainShard("code", "c", "d", 100, 10)]
        wh.record_experiment("e1", "demo", "h", "fp", {"k": 1}, doms, [0.75, 0.25])
        wh.record_mixture("m1", "e1", "design", [0.5, 0.5])
        r = RunResult(run_id="new", status="ok", val_losses={"web": 2.5, "code": 3.5, "bench": 4.0})
        wh.record_run(r, experiment_id="e1", role="proxy", label="design", mixture_id="m1", seed=1,
                      target_loss=3.0, code_version="t", eval_kinds={"bench": "eval"},
                      group_losses={"all": 3.0})
        long = reads.run_evals(wh, "e1")
        assert sorted(long.select("run_id", "name", "kind").iter_rows()) == [
            ("new", "all", "group"), ("new", "bench", "eval"), ("new", "code", "domain"), ("new", "web", "domain"),
            ("old", "web", "domain")]
        wide = reads.eval_table(wh, "e1").sort("run_id")
        assert wide.columns[:5] == ["run_id", "role", "label", "seed", "size"]
        row = wide.row(0, named=True)
        assert row["run_id"] == "new" and row["all"] == pytest.approx(3.0) and row["bench"] == pytest.approx(4.0)
        assert wide.row(1, named=True)["bench"] is None
