"""`mixopt export`: the chosen mixture with its provenance in four formats, from a warehouse alone."""

import ast
import hashlib
import json
import re

import pytest
import yaml
from typer.testing import CliRunner

from mixopt.cli import app
from mixopt.export import ExportError, export_mixture, mixture_record
from mixopt.report import build_report
from mixopt.runspec import DomainShard, RunResult
from mixopt.warehouse import ReadOnlyWarehouse, Warehouse

NAMES = ["web:news", "web:forums", "code:python", "books"]
TRAIN = [40_000, 10_000, 30_000, 20_000]
WEIGHTS = [0.3, 0.2, 0.4, 0.1]


def _warehouse(tmp_path, proposal=True, finals=True):
    path = tmp_path / "wh.duckdb"
    cfg = {"final": {"tokens": 50_000}, "design": {"hierarchy": {"sources": {"web": {"frozen": {"news": 0.6,
                                                                                                  "forums": 0.4}}}}}}
    with Warehouse(path) as wh:
        doms = [DomainShard(n, "x", "y", t, 100) for n, t in zip(NAMES, TRAIN)]
        wh.record_experiment("old-1", "old", "h0", "fp0", {}, [DomainShard("a", "x", "y", 10, 2)], [1.0])
        wh.record_experiment("hier-1", "hier", "cfghash", "fp", cfg, doms, [t / sum(TRAIN) for t in TRAIN])
        run = RunResult(run_id="p1", status="ok", n_params=10, tokens=4096, val_losses={"books": 3.0})
        wh.record_run(run, experiment_id="hier-1", role="proxy", label="design", mixture_id="md", seed=0,
                      target_loss=3.0, code_version="0.1.0", size="target")
        if proposal:
            wh.record_fit("fit-1", "hier-1", {"name": "linear", "n": 6, "folds": 3, "spearman": 0.8, "kendall": 0.6,
                                             "r2": 0.5, "rmse": 0.01}, chosen=True, predictions=[])
            wh.record_proposal("prop-1", "hier-1", "fit-1", "regmix", "linear", "mprop", WEIGHTS, 2.95,
                               [False] * 4, {})
        if finals:
            for seed, loss in enumerate([2.90, 2.94]):
                r = RunResult(run_id=f"f{seed}", status="ok", n_params=100, tokens=80_000, val_losses={"books": loss})
                wh.record_run(r, experiment_id="hier-1", role="final", label="proposed", mixture_id="mprop",
                              seed=seed, target_loss=loss, code_version="0.1.0")
    return path


def test_yaml_and_json_round_trip_with_provenance_tokens_and_epochs(tmp_path):
    path = _warehouse(tmp_path)
    with ReadOnlyWarehouse(path) as db:
        rec = mixture_record(db, "hier-1")
        for fmt, load in (("yaml", yaml.safe_load), ("json", json.loads)):
            back = load(export_mixture(db, "hier-1", fmt))
            assert back == json.loads(json.dumps(rec)), fmt
    assert rec["experiment_id"] == "hier-1" and rec["fit_id"] == "fit-1" and rec["proposal_id"] == "prop-1"
    assert rec["predicted_target"] == pytest.approx(2.95) and rec["config_hash"] == "cfghash"
    assert rec["measured_target"]["mean"] == pytest.approx(2.92) and rec["measured_target"]["seeds"] == 2
    assert rec["code_version"] == "0.1.0" and rec["exported_by"].startswith("mixopt ")
    assert rec["token_budget"] == 80_000 and rec["token_budget_from"] == "final_runs"
    by = {d["name"]: d for d in rec["domains"]}
    assert by["web:news"]["tokens"] == 24_000 and by["web:news"]["epochs"] == pytest.approx(0.6)
    assert by["web:forums"]["epochs"] == pytest.approx(1.6) and by["web:forums"]["source"] == "web"
    assert by["web:forums"]["within_source"] == pytest.approx(0.4)
    assert rec["sources"] == pytest.approx({"web": 0.5, "code": 0.4, "books": 0.1})


def test_megatron_blend_pairs_weights_with_templated_paths(tmp_path):
    with ReadOnlyWarehouse(_warehouse(tmp_path)) as db:
        text = export_mixture(db, None, "megatron", "/data/{source}/{topic}/text_document")
    assert "# " in text and "hier-1" in text and "fit-1" in text  # provenance in comments
    blend = re.search(r'^MIXOPT_DATA_PATH="(.*)"$', text, re.M).group(1).split()
    weights, paths = [float(w) for w in blend[0::2]], blend[1::2]
    assert paths == ["/data/web/news/text_document", "/data/web/forums/text_document",
                     "/data/code/python/text_document", "/data/books/books/text_document"]
    assert weights == pytest.approx(WEIGHTS) and sum(weights) == pytest.approx(1.0, abs=1e-6)


def test_hf_snippet_has_probabilities_that_sum_to_one(tmp_path):
    with ReadOnlyWarehouse(_warehouse(tmp_path)) as db:
        text = export_mixture(db, "hier-1", "hf", "json:/data/{domain}")
    tree = ast.parse(text)  # valid Python
    values = {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body
              if isinstance(n, ast.Assign) and n.targets[0].id.isupper()}
    assert values["DOMAINS"] == NAMES and values["PATHS"][0] == "json:/data/web:news"
    assert values["PROBABILITIES"] == pytest.approx(WEIGHTS) and abs(sum(values["PROBABILITIES"]) - 1) < 1e-12
    assert "interleave_datasets(datasets, probabilities=PROBABILITIES" in text


def test_budget_falls_back_to_the_config_without_final_runs(tmp_path):
    with ReadOnlyWarehouse(_warehouse(tmp_path, finals=False)) as db:
        rec = mixture_record(db, "hier-1")
        assert rec["measured_target"] is None and rec["token_budget"] == 50_000
        assert mixture_record(db, "hier-1", tokens=1000)["domains"][0]["tokens"] == 300


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("args, message", [
    (["nope-1"], "export: unknown experiment 'nope-1'"),
    (["old-1"], "export: experiment 'old-1' has no proposal yet"),
    (["hier-1", "--format", "xml"], "--format: unknown format 'xml'"),
    (["hier-1", "--format", "megatron", "--path-template", "/d/{name}"], "--path-template: unknown placeholder"),
])
def test_bad_exports_are_one_line_errors_and_change_nothing(tmp_path, args, message):
    path = _warehouse(tmp_path)
    before = _sha(path)
    res = CliRunner().invoke(app, ["export", *args, "--warehouse", str(path)])
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output
    assert _sha(path) == before


def test_cli_writes_the_file(tmp_path):
    path = _warehouse(tmp_path)
    out = tmp_path / "mix.yaml"
    res = CliRunner().invoke(app, ["export", "--warehouse", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert yaml.safe_load(out.read_text())["proposal_id"] == "prop-1"
    with ReadOnlyWarehouse(path) as db, pytest.raises(ExportError, match="no proposal"):
        mixture_record(db, "old-1")


def test_view_and_report_show_both_levels(tmp_path):
    path = _warehouse(tmp_path)
    with Warehouse(path) as wh:
        rows = wh.query("SELECT domain, source, topic, weight, source_weight, topic_weight FROM mixture_weights "
                        "WHERE mixture_id = 'mprop' ORDER BY domain")
        src = wh.query("SELECT source, weight, topics FROM mixture_source_weights WHERE mixture_id = 'mprop' "
                       "ORDER BY source")
        rep = build_report(wh, "hier-1", tmp_path / "rep")
    by = {r["domain"]: r for r in rows}
    assert (by["web:news"]["source"], by["web:news"]["topic"]) == ("web", "news")
    assert by["web:news"]["source_weight"] == pytest.approx(0.5)
    assert by["web:news"]["topic_weight"] == pytest.approx(0.6)
    assert (by["books"]["source"], by["books"]["topic"], by["books"]["topic_weight"]) == ("books", "books", 1.0)
    assert [(r["source"], round(r["weight"], 6), r["topics"]) for r in src] == [
        ("books", 0.1, 1), ("code", 0.4, 1), ("web", 0.5, 2)]
    assert "## Proposal by source" in rep.markdown
    assert "| web | 0.5000 | 0.5000 | 2 | news 0.60, forums 0.40 (frozen) |" in rep.markdown
    assert "| web:forums | web | forums | 0.2000 | 0.4000 | 0.2000 |" in rep.markdown


@pytest.mark.parametrize("matched", [False, True])
def test_epochs_are_the_final_budgets_and_proxy_epochs_what_a_proxy_read(tmp_path, matched):
    """`epochs` at the final budget (as the caps and the law count them); `proxy_epochs` a proxy's on the
    same mixture: 1/8 as many from whole shards, the same with `design.match_repetition`."""
    cfg = {"final": {"tokens": 80_000}, "swarm": {"tokens": 10_000, "seq_len": 64},
           "design": {"match_repetition": matched}}
    path = tmp_path / "wh.duckdb"
    with Warehouse(path) as wh:
        doms = [DomainShard(n, "x", "y", t, 100) for n, t in zip(NAMES, TRAIN)]
        wh.record_experiment("e-1", "e", "h", "fp", cfg, doms, [t / sum(TRAIN) for t in TRAIN])
        wh.record_fit("fit-1", "e-1", {"name": "linear", "n": 6, "folds": 3, "spearman": 0.8, "kendall": 0.6,
                                       "r2": 0.5, "rmse": 0.01}, chosen=True, predictions=[])
        wh.record_proposal("prop-1", "e-1", "fit-1", "regmix", "linear", "mprop", WEIGHTS, 2.95, [False] * 4, {})
    with ReadOnlyWarehouse(path) as db:
        rec = mixture_record(db, "e-1")
    assert rec["proxies"] == {"tokens": 10_000, "match_repetition": matched}
    for d, w, t in zip(rec["domains"], WEIGHTS, TRAIN):
        assert d["epochs"] == pytest.approx(w * 80_000 / t)
        assert d["proxy_epochs"] == pytest.approx(d["epochs"] if matched else d["epochs"] / 8, rel=1e-3)
