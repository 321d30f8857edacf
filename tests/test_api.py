"""The public read-only API: `mixopt.open(path)` returns polars DataFrames and refuses writes."""

import polars as pl
import pytest

import mixopt
from mixopt.runspec import DomainShard, RunResult
from mixopt.warehouse import Warehouse, WarehouseError


def _warehouse(path):
    with Warehouse(path) as wh:
        wh.record_experiment("e1", "demo", "h", "fp", {}, [DomainShard("web", "a", "b", 300, 30),
                                                         DomainShard("code", "c", "d", 100, 10)], [0.75, 0.25])
        wh.record_mixture("m1", "e1", "design", [0.5, 0.5])
        r = RunResult(run_id="p1", status="ok", n_params=10, tokens=100, val_losses={"web": 2.0, "code": 3.0})
        wh.record_run(r, experiment_id="e1", role="proxy", label="design", mixture_id="m1", seed=0,
                      target_loss=2.5, code_version="t", size="target")
        wh.record_fit("f1", "e1", {"name": "linear", "n": 1, "folds": 2, "spearman": 0.5, "kendall": 0.4,
                                   "r2": 0.1, "rmse": 0.2}, chosen=True, predictions=[("p1", 2.5, 2.4)])
        wh.record_proposal("pr1", "e1", "f1", "regmix", "linear", "m2", [0.6, 0.4], 2.3, [False, True], {})


def test_open_returns_polars_frames(tmp_path):
    path = tmp_path / "w.duckdb"
    _warehouse(path)
    with mixopt.open(path) as w:
        runs, fits, props = w.runs(), w.fits(), w.proposals()
        assert all(isinstance(df, pl.DataFrame) for df in (runs, fits, props))
        assert runs.select("run_id", "status", "target_loss").rows() == [("p1", "ok", 2.5)]
        assert fits["regressor"].to_list() == ["linear"] and fits["chosen"].to_list() == [True]
        assert props["weights"].to_list() == [[0.6, 0.4]]
        assert w.runs("other").height == 0
        df = w.sql("select domain, weight from mixture_weights where mixture_id = 'm2' order by domain")
        assert isinstance(df, pl.DataFrame) and df.rows() == [("code", 0.4), ("web", 0.6)]


@pytest.mark.parametrize("query", ["drop table runs", "select 1; select 2", "copy runs to 'x.csv'",
                                   "select * from read_csv('x.csv')"])
def test_open_refuses_what_mixopt_sql_refuses(tmp_path, query):
    path = tmp_path / "w.duckdb"
    _warehouse(path)
    before = path.read_bytes()
    with mixopt.open(path) as w, pytest.raises(WarehouseError):
        w.sql(query)
    assert path.read_bytes() == before


def test_open_a_missing_file(tmp_path):
    with pytest.raises(WarehouseError, match="no warehouse here"):
        mixopt.open(tmp_path / "nope.duckdb")
