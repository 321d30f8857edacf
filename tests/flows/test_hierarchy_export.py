"""End to end: `source:topic` domains with one source's topics frozen, a proposal, then `mixopt export`."""

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from mixopt.cli import app
from mixopt.corpus.synthetic import write_synthetic_corpus
from mixopt.flows.search import mixture_search
from mixopt.mixtures.hierarchy import Hierarchy
from mixopt.warehouse import read_only_query
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow

NAMES = ["web:news", "web:forums", "code:python", "books"]


def test_hierarchical_search_keeps_frozen_topics_and_exports(tmp_path, prefect_harness):
    files = write_synthetic_corpus(tmp_path / "src", 4, 60, seed=0)
    domains = [{"name": n, "paths": d.paths, "format": "jsonl"} for n, d in zip(NAMES, files)]
    cfg = tiny_config(tmp_path, corpus={"source": "files", "domains": domains},
                      design={"hierarchy": {"topic_concentration_min": 0.5,
                                            "sources": {"web": {"frozen": {"news": 0.7, "forums": 0.3}}}}})
    result = mixture_search(config=cfg)
    wh = cfg.runtime.warehouse
    h = Hierarchy.from_names(NAMES, frozen={"web": {"news": 0.7, "forums": 0.3}})
    _, design = read_only_query(wh, "select weights from mixtures m join experiment_mixtures e using (mixture_id) "
                                    "where e.kind = 'design'")
    assert len(design) == 6 and all(h.respects(np.array(w)) for (w,) in design)
    assert h.respects(np.array(result.fit.weights))
    _, levels = read_only_query(wh, "select distinct source, topic_weight from mixture_weights m join proposals p "
                                    "using (mixture_id) where m.source = 'web' order by topic_weight")
    assert [round(t, 6) for _, t in levels] == [0.3, 0.7]

    out = tmp_path / "mixture.yaml"
    res = CliRunner().invoke(app, ["export", "--warehouse", wh, "--out", str(out)])
    assert res.exit_code == 0, res.output
    rec = yaml.safe_load(out.read_text())
    assert rec["experiment_id"] == result.experiment_id
    assert rec["proposal_id"] == result.fit.proposal_id
    assert rec["measured_target"]["seeds"] == 1 and rec["token_budget"] == 8192
    assert [d["weight"] for d in rec["domains"]] == pytest.approx(result.fit.weights)
    res = CliRunner().invoke(app, ["export", result.experiment_id, "--warehouse", wh, "--format", "megatron",
                                   "--path-template", "/data/{domain}/text_document"])
    assert res.exit_code == 0 and "/data/web:news/text_document" in res.output
