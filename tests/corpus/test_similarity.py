"""Hashed n-gram features of token shards and the similarity prior on a planted corpus (corpus/similarity.py),
and the benchmark that scores it against a search's measured target (benchmarks/prior.py)."""

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mixopt.corpus import CorpusError
from mixopt.corpus.similarity import (
    _WINDOWS,
    corpus_shards,
    hashed_ngrams,
    ngram_features,
    sample_windows,
    shard_counts,
    similarity_prior,
)
from mixopt.runspec import DomainShard, RunResult

NAMES = ["web", "code", "math", "noise"]


def _chain(rng, lo: int, n_ids: int, n: int, steps: tuple[int, ...]) -> np.ndarray:
    """`n` tokens of a random walk over ids lo..lo+n_ids-1 that moves by one of `steps` (mod n_ids): its
    unigrams are uniform whatever the steps, so only bigrams tell two walks over the same ids apart."""
    moves = np.asarray(steps)[rng.integers(0, len(steps), size=n)]
    return lo + (np.cumsum(moves) + int(rng.integers(n_ids))) % n_ids


def _write(path: Path, arr: np.ndarray, dtype: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr.astype(np.dtype(dtype).newbyteorder("<")).tofile(path)


def make_corpus(folder: Path, dtype: str = "uint16", n: int = 40_000, shared: bool = False,
                web: float = 0.7) -> None:
    """Four domains with distinct token ranges (`shared`: web and code walk over the same ids with different
    steps) and an eval set `heldout` of 20,000 fresh tokens, `web` of them from web's walk and the rest from
    code's (70/30 by default); a manifest like ingest's."""
    base = 70_000 if dtype == "uint32" else 0
    rng = np.random.default_rng(0)
    ranges = [(base, 200), (base if shared else base + 200, 200), (base + 400, 200), (base + 600, 300)]
    steps = [(1, 2, 3), (5, 7, 11), (1, 2, 3), (1, 4)]
    entries = []
    heldout = []
    for name, (lo, k), st in zip(NAMES, ranges, steps):
        stream = _chain(rng, lo, k, n + n // 5 + 20_000, st)  # one walk: train, val, then fresh text for the eval set
        train, val, fresh = stream[:n], stream[n:n + n // 5], stream[n + n // 5:]
        _write(folder / name / "train.bin", train, dtype)
        _write(folder / name / "val.bin", val, dtype)
        entries.append(DomainShard(name, f"{name}/train.bin", f"{name}/val.bin", len(train), len(val), dtype=dtype))
        heldout.append(fresh)
    cut = int(round(20_000 * web))
    ev = np.concatenate([heldout[0][:cut], heldout[1][:20_000 - cut]])
    _write(folder / ".eval" / "heldout" / "val.bin", ev, dtype)
    manifest = {"domains": [vars(e) for e in entries],
                "eval_sets": [vars(DomainShard("heldout", "", ".eval/heldout/val.bin", 0, len(ev), dtype=dtype))]}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_hashed_ngrams_counts_unigrams_and_bigrams_within_windows():
    t = np.array([1, 2, 3, 1, 2, 3, 7])
    c = hashed_ngrams(t, 64)
    assert c.shape == (64,) and c.sum() == 7 + 6
    assert np.array_equal(c, hashed_ngrams(t.astype(np.uint16), 64))
    windows = np.array([[1, 2, 3], [4, 5, 6]])
    assert hashed_ngrams(windows, 64).sum() == 6 + 4  # no bigram (3, 4) across the windows
    assert not np.array_equal(hashed_ngrams([1, 2, 3, 4], 1 << 14), hashed_ngrams([1, 3, 2, 4], 1 << 14))
    assert np.array_equal(hashed_ngrams([5], 8), np.eye(8)[np.flatnonzero(hashed_ngrams([5], 8))[0]])
    with pytest.raises(ValueError, match="n_buckets"):
        hashed_ngrams(t, 0)


def test_sample_windows_reads_everything_or_evenly_spaced_windows():
    a = np.arange(100)
    assert np.array_equal(sample_windows(a, 100), a[None])
    big = np.arange(1_000_000)
    w = sample_windows(big, 64_000)
    assert w.shape == (_WINDOWS, 64_000 // _WINDOWS)
    assert w[0, 0] == 0 and w[-1, -1] == big[-1]
    assert np.all(np.diff(w, axis=1) == 1)  # contiguous
    assert np.array_equal(w, sample_windows(big, 64_000))


@pytest.mark.parametrize("dtype", ["uint16", "uint32"])
def test_the_prior_recovers_an_eval_set_drawn_70_30_from_two_domains(tmp_path, dtype):
    make_corpus(tmp_path, dtype)
    domains, evals = corpus_shards(tmp_path)
    assert [d.name for d in domains] == NAMES and [e.name for e in evals] == ["heldout"]
    assert Path(domains[0].train_path).is_absolute()
    r = similarity_prior(domains=domains, eval_sets=evals, target_terms={"heldout": 1.0})
    assert r.method == "xent" and r.names == NAMES
    assert r.weights[0] == pytest.approx(0.7, abs=0.05) and r.weights[1] == pytest.approx(0.3, abs=0.05)
    assert np.all(r.weights[2:] < 0.02)
    mixes = np.array([[0.7, 0.3, 0, 0], [0.3, 0.7, 0, 0], [0.25, 0.25, 0.25, 0.25], [0, 0, 0.5, 0.5]])
    assert np.all(np.diff(r.score_fn(mixes)) > 0)
    assert r.details["terms"] == {"heldout": 1.0}
    assert r.details["tokens_read"]["heldout/val"] == 20_000


def test_bigrams_separate_domains_that_share_their_tokens(tmp_path):
    make_corpus(tmp_path, shared=True, web=0.9)  # web and code: same ids, same (uniform) unigrams
    domains, evals = corpus_shards(tmp_path)
    r = similarity_prior(domains=domains, eval_sets=evals, target_terms={"heldout": 1.0})
    assert r.weights[0] == pytest.approx(0.9, abs=0.03) and r.weights[1] == pytest.approx(0.1, abs=0.03)


def test_domain_terms_use_validation_splits_and_caps_hold(tmp_path):
    make_corpus(tmp_path)
    domains, evals = corpus_shards(tmp_path)
    exp = SimpleNamespace(domains=domains, eval_sets=evals, target_terms=lambda: {"web": 1.0, "math": 1.0,
                                                                                  "code": 0.0, "noise": 0.0})
    r = similarity_prior(exp, caps=[1.0, 1.0, 0.3, 1.0])
    assert r.details["terms"] == {"web": 0.5, "math": 0.5}
    assert r.weights[2] == pytest.approx(0.3, abs=1e-6) and r.weights[0] == pytest.approx(0.7, abs=1e-3)
    for method in ("js", "hellinger", "tv"):
        rb = similarity_prior(exp, method=method, caps=[1.0, 1.0, 0.3, 1.0])
        assert rb.weights[2] <= 0.3 + 1e-9 and rb.weights[[0, 2]].sum() > 0.9
        assert rb.domain_scores[[0, 2]].max() < rb.domain_scores[[1, 3]].min()


def test_deterministic_and_reuses_features(tmp_path):
    make_corpus(tmp_path)
    domains, evals = corpus_shards(tmp_path)
    a = similarity_prior(domains=domains, eval_sets=evals, target_terms={"heldout": 1.0}, max_tokens=8_000)
    b = similarity_prior(domains=domains, eval_sets=evals, target_terms={"heldout": 1.0}, max_tokens=8_000)
    assert np.array_equal(a.weights, b.weights)
    assert a.details["tokens_read"]["web"] == _WINDOWS * (8_000 // _WINDOWS)
    f = ngram_features(domains, {"heldout": 1.0}, evals, max_tokens=8_000)
    assert np.array_equal(similarity_prior(features=f).weights, a.weights)


def test_bad_input_names_the_term_or_file(tmp_path):
    make_corpus(tmp_path)
    domains, evals = corpus_shards(tmp_path)
    with pytest.raises(CorpusError, match=r"terms \['bench'\] are neither a domain nor an eval set"):
        ngram_features(domains, {"bench": 1.0}, evals)
    (tmp_path / "code" / "train.bin").unlink()
    with pytest.raises(CorpusError, match="domain 'code' train split: cannot read"):
        ngram_features(domains, {"web": 1.0})
    (tmp_path / "web" / "val.bin").write_bytes(b"")
    with pytest.raises(CorpusError, match="holds no tokens"):
        shard_counts(str(tmp_path / "web" / "val.bin"))
    with pytest.raises(CorpusError, match="not a readable corpus manifest"):
        corpus_shards(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="needs an Experiment"):
        similarity_prior()


def _bench():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "prior.py"
    spec = importlib.util.spec_from_file_location("bench_prior", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_scores_a_searchs_proxies_against_their_measured_target(tmp_path):
    from mixopt.warehouse import Warehouse

    make_corpus(tmp_path / "corpus")
    domains, _ = corpus_shards(tmp_path / "corpus")
    config = {"name": "t", "target": {"weights": {"heldout": 1.0}, "eval_sets": [{"name": "heldout", "paths": ["x"]}]},
              "runtime": {"out_dir": str(tmp_path)}}
    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(4), size=24)
    # a planted "measured" loss: better with web and code near 70/30, plus noise
    loss = 3.0 - 0.7 * np.log(W[:, 0] + 0.05) - 0.3 * np.log(W[:, 1] + 0.05) + rng.normal(0, 0.05, len(W))
    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.record_experiment("e1", "t", "h", "fp", config, domains, [0.25] * 4)
        for i, (w, y) in enumerate(zip(W, loss)):
            wh.record_mixture(f"m{i}", "e1", "design", list(w))
            wh.record_run(RunResult(f"r{i}", "ok"), experiment_id="e1", role="proxy", label="design",
                          mixture_id=f"m{i}", seed=0, target_loss=float(y), code_version="t", size="target")
        wh.record_run(RunResult("rep", "ok"), experiment_id="e1", role="proxy", label="seed_repeat",
                      mixture_id="m0", seed=1, target_loss=99.0, code_version="t", size="target")
    bench = _bench()
    res = bench.evaluate(tmp_path / "w.duckdb")
    assert res["experiment"] == "e1" and res["n"] == {"target": 24}  # the seed repeat is left out
    assert res["spearman"]["xent"]["target"] > 0.8
    assert "name-match" not in res["spearman"]  # a target on an eval set alone names no domain
    text = bench.markdown(res)
    assert "| xent |" in text and "target (n=24)" in text
