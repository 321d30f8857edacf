"""Bad input on the newer surfaces: token files, eval sets and groups, `source:topic` names, `config_file`.

Corpus-stage cases run `prepare_experiment` against a warehouse that already holds a good token
experiment (sharing its output folder): each must be a `CorpusError` of one line naming the file or
the field, with the warehouse's content and every file of the earlier corpus output unchanged (no
staging folder left). Config-stage cases go through `load_config` (or `resolve_config`, or the CLI):
a `ConfigError` whose first line names the file and which names the field, exit code 2 from the CLI.
Hypothesis draws the broken headers, dtypes, shapes, lengths, out-of-vocabulary positions, weights and
names, with few examples each so the file runs in well under a minute.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mixopt.cli import app
from mixopt.config import ConfigError, ExperimentConfig, load_config
from mixopt.config.design import design_hierarchy
from mixopt.config.file import resolve_config
from mixopt.corpus.readers import CorpusError
from mixopt.tasks.corpus import prepare_experiment
from mixopt.warehouse import Warehouse
from tests.faults.util import snapshot

SEP, VOCAB = 9, 400


def few(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def tok(name: str, paths: list[str], **kw) -> dict:
    return {"name": name, "paths": paths, "format": "tokens", "separator_id": SEP, **kw}


def good_tokens(path: Path, n_docs: int = 30, seed: int = 0, dtype: str = "uint16") -> str:
    rng = np.random.default_rng(seed)
    flat = [t for _ in range(n_docs) for t in [*rng.integers(10, 300, size=int(rng.integers(3, 12))), SEP]]
    arr = np.array(flat, dtype=dtype)
    if path.suffix == ".npy":
        np.save(path, arr)
    else:
        arr.astype(np.dtype(dtype).newbyteorder("<")).tofile(path)
    return str(path)


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under `root` (a leftover staging folder shows as new paths)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


class World:
    def __init__(self, root: Path, wh: Warehouse) -> None:
        self.root, self.wh, self.out = root, wh, root / "out"
        self.good = good_tokens(root / "good.npy")
        self.evalfile = good_tokens(root / "eval.npy", n_docs=6, seed=1)

    def data(self, domains: list[dict] | None = None, target: dict | None = None, tokenizer: dict | None = None,
             design: dict | None = None) -> dict:
        d = {"name": "fuzz", "corpus": {"source": "files", "domains": domains or [tok("a", [self.good])]},
             "tokenizer": tokenizer or {"kind": "none", "vocab_size": VOCAB},
             "runtime": {"out_dir": str(self.out), "warehouse": str(self.root / "wh.duckdb"), "progress": False}}
        if target:
            d["target"] = target
        if design:
            d["design"] = design
        return d

    def refused(self, data: dict) -> str:
        """The one-line CorpusError of the corpus stage; the warehouse and the corpus output unchanged."""
        before = (snapshot(self.wh), tree_digest(self.out))
        with pytest.raises(CorpusError) as e:
            prepare_experiment(ExperimentConfig.model_validate(data), self.wh)
        msg = str(e.value)
        assert "\n" not in msg and "Traceback" not in msg, msg
        assert (snapshot(self.wh), tree_digest(self.out)) == before, msg
        return msg


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("surfaces")
    with Warehouse(root / "wh.duckdb") as wh:
        w = World(root, wh)
        prepare_experiment(ExperimentConfig.model_validate(
            w.data(target={"eval_sets": [tok("ev", [w.evalfile])]})), wh)
        state = snapshot(wh)
        yield w
    assert snapshot(root / "wh.duckdb") == state


def config_refused(path: Path, data: object) -> str:
    """`load_config` of `data` written as YAML: a ConfigError whose first line names the file, with one
    error (the header line and one field line at most); returns the message."""
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    lines = msg.splitlines()
    assert lines[0].startswith(str(path)) and "Traceback" not in msg, msg
    assert len(lines) == 1 or (len(lines) == 2 and lines[0] == f"{path}: invalid config"), msg
    return msg


# ---------------------------------------------------------------------------------------------- token files

_HEADER = "{'descr': '<u2', 'fortran_order': False, 'shape': (12,), }"


@st.composite
def broken_npy(draw) -> bytes:
    """A `.npy` whose header is cut, corrupted or lies about its length (the magic string kept)."""
    kind = draw(st.sampled_from(["cut", "mutate", "garbage", "bad_len", "bad_version", "magic_only"]))
    header = _HEADER
    if kind == "cut":
        header = header[: draw(st.integers(0, len(header) - 2))]
    elif kind == "mutate":
        i = draw(st.integers(0, len(header) - 1))
        header = header[:i] + draw(st.sampled_from(list("{}()[]'\",:\\ x#\x00é"))) + header[i + 1:]
    elif kind == "garbage":
        header = draw(st.text(max_size=60))
    raw = (header + " " * 3 + "\n").encode("utf-8", "surrogatepass")
    length = len(raw)
    if kind == "bad_len":
        length = draw(st.sampled_from([0, 1, len(raw) + 50, 65535]))
    version = b"\x07\x00" if kind == "bad_version" else b"\x01\x00"
    if kind == "magic_only":
        return b"\x93NUMPY"
    return b"\x93NUMPY" + version + length.to_bytes(2, "little") + raw + b"\x00" * 24


@few(30)
@given(blob=broken_npy())
def test_a_broken_npy_header_is_one_line_naming_the_file(world, blob):
    path = world.root / "broken.npy"
    path.write_bytes(blob)
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception:  # noqa: BLE001 - numpy's own reader fails in many ways: that is the point
        arr = None
    if arr is not None and arr.ndim == 1 and arr.dtype == np.uint16 and (arr < VOCAB).all():
        return  # the mutation left a valid file
    msg = world.refused(world.data([tok("a", [world.good]), tok("b", [str(path)])]))
    assert msg.startswith(f"{path}: domain 'b':"), msg


@few(20)
@given(file_dtype=st.sampled_from(["uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "uint64",
                                   "float32", "float64", "bool", ">u2", ">i4"]),
       declared=st.sampled_from(["uint16", "uint32", "int32", "int64"]))
def test_an_npy_dtype_other_than_declared_is_refused(world, file_dtype, declared):
    if np.dtype(file_dtype) == np.dtype(declared):
        return
    path = world.root / "dtype.npy"
    np.save(path, (np.arange(40) % 7).astype(file_dtype))
    msg = world.refused(world.data([tok("a", [world.good]), tok("b", [str(path)], dtype=declared)]))
    assert msg.startswith(f"{path}: domain 'b':"), msg
    assert ("dtype mismatch" in msg or "1-D integer" in msg or "big-endian" in msg), msg


@few(12)
@given(shape=st.one_of(st.just(()), st.lists(st.integers(1, 4), min_size=2, max_size=3).map(tuple)))
def test_an_npy_that_is_not_1d_is_refused(world, shape):
    path = world.root / "shape.npy"
    np.save(path, np.ones(shape, dtype="uint16"))
    for kind, data in (("domain 'b'", world.data([tok("a", [world.good]), tok("b", [str(path)])])),
                       ("eval set 'e'", world.data(target={"eval_sets": [tok("e", [str(path)])]}))):
        msg = world.refused(data)
        assert msg.startswith(f"{path}: {kind}: expected a 1-D integer array, got shape {shape}"), msg


@pytest.mark.parametrize("name, dtype", [("empty.npy", None), ("empty.bin", "uint32")])
def test_an_empty_token_file_is_refused(world, name, dtype):
    path = world.root / name
    path.write_bytes(b"")
    extra = {"dtype": dtype} if dtype else {}
    alone = world.refused(world.data([tok("a", [world.good]), tok("b", [str(path)], **extra)]))
    ev = world.refused(world.data(target={"eval_sets": [tok("e", [str(path)], **extra)]}))
    if dtype is None:  # not even a header
        assert alone.startswith(f"{path}: domain 'b': not a readable .npy"), alone
        assert ev.startswith(f"{path}: eval set 'e': not a readable .npy"), ev
    else:  # zero tokens: no document
        assert alone == "domain 'b': has 0 documents; at least two are needed (one for training, one for validation)"
        assert ev == "eval set 'e': no documents (every file is empty)"


@few(16)
@given(dtype=st.sampled_from(["uint16", "uint32", "int32", "int64"]), n=st.integers(0, 50), data=st.data())
def test_a_raw_file_that_is_not_whole_tokens_is_refused(world, dtype, n, data):
    size = np.dtype(dtype).itemsize
    extra = data.draw(st.integers(1, size - 1))
    path = world.root / "ragged.bin"
    path.write_bytes(bytes(n * size + extra))
    msg = world.refused(world.data([tok("a", [world.good]), tok("b", [str(path)], dtype=dtype)]))
    assert msg.startswith(f"{path}: domain 'b': dtype mismatch: {n * size + extra} bytes is not a whole number "
                          f"of {dtype} tokens"), msg


def test_a_raw_file_without_a_dtype_is_refused(world):
    path = world.root / "nodtype.bin"
    good_tokens(path)
    msg = world.refused(world.data([tok("a", [world.good]), tok("b", [str(path)])]))
    assert msg.startswith(f"{path}: domain 'b': raw token files need the domain's dtype"), msg


@few(20)
@given(dtype=st.sampled_from(["uint16", "uint32", "int32", "int64"]), n=st.integers(5, 300), data=st.data(),
       eval_set=st.booleans(), npy=st.booleans())
def test_a_token_id_outside_the_vocabulary_names_the_file_and_position(world, dtype, n, data, eval_set, npy):
    arr = np.resize(np.array([11, 12, 13, SEP], dtype=dtype), n)
    pos = data.draw(st.integers(0, n - 1))
    too_big = st.integers(VOCAB, int(np.iinfo(dtype).max))
    bad = data.draw(too_big | st.integers(-(2**31), -1) if np.dtype(dtype).kind == "i" else too_big)
    arr[pos] = bad
    path = world.root / ("oov.npy" if npy else "oov.bin")
    if npy:
        np.save(path, arr)
    else:
        arr.astype(np.dtype(dtype).newbyteorder("<")).tofile(path)
    spec = tok("e" if eval_set else "b", [str(path)], dtype=dtype)
    data_ = world.data(target={"eval_sets": [spec]}) if eval_set else world.data([tok("a", [world.good]), spec])
    msg = world.refused(data_)
    kind = "eval set 'e'" if eval_set else "domain 'b'"
    assert msg == (f"{path}: {kind}: token id {bad} at position {pos} is outside the vocabulary "
                   f"(vocab_size {VOCAB})"), msg


def test_a_missing_or_out_of_vocabulary_separator(world, tmp_path):
    no_sep = {k: v for k, v in tok("b", [world.good]).items() if k != "separator_id"}
    msg = config_refused(tmp_path / "nosep.yaml", world.data([tok("a", [world.good]), no_sep]))
    assert "corpus.domains.1: Value error, domain 'b': format 'tokens' needs separator_id" in msg, msg
    ev_no_sep = {k: v for k, v in tok("e", [world.evalfile]).items() if k != "separator_id"}
    msg = config_refused(tmp_path / "ev_nosep.yaml", world.data(target={"eval_sets": [ev_no_sep]}))
    assert "target.eval_sets.0: Value error, domain 'e': format 'tokens' needs separator_id" in msg, msg
    msg = config_refused(tmp_path / "neg.yaml", world.data([tok("a", [world.good], separator_id=-1)]))
    assert "corpus.domains.0.separator_id: Input should be greater than or equal to 0" in msg, msg
    msg = world.refused(world.data([tok("a", [world.good]), tok("b", [world.good], separator_id=VOCAB)]))
    assert msg == f"domain 'b': separator_id {VOCAB} is outside the vocabulary (vocab_size {VOCAB})"
    one_doc = world.root / "one_doc.npy"  # no separator in the file: one document, nothing to validate on
    np.save(one_doc, np.arange(20, 60, dtype="uint16"))
    msg = world.refused(world.data([tok("a", [world.good]), tok("b", [str(one_doc)])]))
    assert msg == "domain 'b': has 1 documents; at least two are needed (one for training, one for validation)"


def test_held_out_globs_that_match_nothing_or_another_file(world):
    glob = str(world.root / "nothing-*.npy")
    msg = world.refused(world.data([tok("a", [world.good], held_out=[glob])]))
    assert msg.startswith("domain 'a':") and f"no files match '{glob}'" in msg, msg
    msg = world.refused(world.data([tok("a", [world.good], held_out=[world.evalfile])]))
    assert msg == f"{world.evalfile}: domain 'a': held_out file is not among the domain's paths", msg
    msg = world.refused(world.data([tok("a", [world.good], held_out=[world.good])]))
    assert msg == "domain 'a': held_out leaves no document for training", msg


def test_paths_of_a_token_domain_or_eval_set_that_match_nothing(world):
    glob = str(world.root / "nothing-*.npy")
    assert world.refused(world.data([tok("a", [world.good]), tok("b", [glob])])) == \
        f"domain 'b': no files match '{glob}'"
    assert world.refused(world.data(target={"eval_sets": [tok("e", [glob])]})) == \
        f"target.eval_sets 'e': no files match '{glob}'"


# ----------------------------------------------------------------------------------- eval sets and groups

def _ev(world: World, name: str) -> dict:
    return tok(name, [world.evalfile])


@few(15)
@given(names=st.lists(st.sampled_from(["e", "f", "g"]), min_size=2, max_size=4).filter(
    lambda n: len(set(n)) < len(n)))
def test_duplicate_eval_set_names(world, tmp_path_factory, names):
    path = tmp_path_factory.mktemp("dup") / "x.yaml"
    msg = config_refused(path, world.data(target={"eval_sets": [_ev(world, n) for n in names]}))
    dup = sorted({n for n in names if names.count(n) > 1})
    assert f"target.eval_sets: duplicate names {dup}" in msg, msg


@pytest.mark.parametrize("evs, target, expected", [
    (["e", "a"], {}, "target: eval set or group names ['a'] are also domain names"),
    (["e"], {"groups": {"a": {"e": 1}}}, "target: eval set or group names ['a'] are also domain names"),
    (["e"], {"groups": {"e": {"a": 1}}}, "target.groups: ['e'] is also an eval set's name"),
    (["e"], {"groups": {"g": {"zz": 1}}}, "target.groups.g names unknown domains or eval sets ['zz']; "
                                          "known: ['a', 'e']"),
    (["e"], {"groups": {"g": {"e": 1}, "h": {"g": 1}}}, "target.groups.h: members ['g'] are groups"),
    (["e"], {"groups": {"g": {"g": 1}}}, "target.groups.g: members ['g'] are groups"),
    (["e"], {"groups": {"g": {}}}, "target.groups.g: no members"),
    (["e"], {"groups": {"g": {"e": 0, "a": 0}}}, "target.groups.g: weights must not all be zero"),
    (["e"], {"groups": {"g": {"e": 1}}, "weights": {"g": -1}}, "target weights must be >= 0"),
    (["e"], {"weights": {"e": 0}}, "target weights must not all be zero"),
    (["e"], {"weights": {"zz": 1}}, "target.weights names unknown domains ['zz']"),
])
def test_bad_groups_and_weights_name_the_field(world, tmp_path, evs, target, expected):
    data = world.data(target={"eval_sets": [_ev(world, n) for n in evs], **target})
    msg = config_refused(tmp_path / "t.yaml", data)
    assert expected in msg, msg


def test_an_eval_set_with_held_out(world, tmp_path):
    ev = {**_ev(world, "e"), "held_out": [world.evalfile]}
    msg = config_refused(tmp_path / "t.yaml", world.data(target={"eval_sets": [ev]}))
    assert "target.eval_sets 'e': held_out does not apply (an eval set is held out whole)" in msg, msg


@few(20)
@given(weights=st.dictionaries(st.sampled_from(["a", "e"]), st.floats(-10, 10, allow_nan=False), min_size=1)
       .filter(lambda w: min(w.values()) < 0 or sum(w.values()) <= 0),
       bad=st.sampled_from([float("nan"), float("inf"), None]))
def test_negative_zero_or_non_finite_group_weights(world, tmp_path_factory, weights, bad):
    if bad is not None:
        weights = {**weights, "e": bad}
    path = tmp_path_factory.mktemp("gw") / "x.yaml"
    text = yaml.safe_dump(world.data(target={"eval_sets": [_ev(world, "e")], "groups": {"g": weights}}))
    msg = config_refused(path, text)
    assert re.search(r"target\.groups\.g(\.[ae]: Input should be a finite number|: weights must)", msg), msg


def test_an_eval_set_that_is_also_a_training_file(world, tmp_path):
    link = tmp_path / "same.npy"
    link.symlink_to(world.good)
    for path in (world.good, str(link)):
        msg = world.refused(world.data(target={"eval_sets": [tok("e", [path])]}))
        assert msg == (f"target.eval_sets 'e': file {path} is also read by training domain 'a'; "
                       "an eval set must be held out from training"), msg


def test_builtin_with_an_unknown_name_or_on_a_domain(world, tmp_path):
    text = world.root / "text.jsonl"
    text.write_text("".join(f'{{"text": "doc {i}"}}\n' for i in range(20)))
    data = world.data([{"name": "t", "paths": [str(text)]}], tokenizer={"vocab_size": 300},
                      target={"eval_sets": [{"name": "e", "format": "builtin", "paths": ["nope"]}]})
    msg = world.refused(data)
    assert msg.startswith("target.eval_sets 'e': unknown built-in eval set 'nope'; built in: ["), msg
    assert not (world.out / "corpus" / "source" / "eval_e.jsonl").exists()
    msg = config_refused(tmp_path / "d.yaml", world.data([{"name": "a", "paths": ["scientific_python"],
                                                           "format": "builtin"}], tokenizer={"vocab_size": 300}))
    assert "corpus.domains ['a']: format 'builtin' applies to target.eval_sets only" in msg, msg
    msg = config_refused(tmp_path / "two.yaml", world.data(
        [{"name": "t", "paths": [str(text)]}], tokenizer={"vocab_size": 300},
        target={"eval_sets": [{"name": "e", "format": "builtin", "paths": ["a", "b"]}]}))
    assert "target.eval_sets.0: Value error, 'e': format 'builtin' takes one path" in msg, msg


# ------------------------------------------------------------------------------------- hierarchical names

_PART = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True)


@st.composite
def bad_names(draw) -> str:
    kind = draw(st.sampled_from(["empty_source", "empty_topic", "nested", "double", "only"]))
    a, b, c = draw(_PART), draw(_PART), draw(_PART)
    return {"empty_source": f":{b}", "empty_topic": f"{a}:", "nested": f"{a}:{b}:{c}", "double": f"{a}::{b}",
            "only": ":"}[kind]


@few(25)
@given(bad=bad_names(), at=st.integers(0, 2))
def test_a_malformed_hierarchical_name_names_the_domain(world, tmp_path_factory, bad, at):
    names = ["web:news", "web:forums"]
    names.insert(at, bad)
    path = tmp_path_factory.mktemp("h") / "x.yaml"
    msg = config_refused(path, world.data([tok(n, [world.good]) for n in names]))
    if bad.startswith(":"):  # refused by the name pattern
        assert f"corpus.domains.{at}.name: String should match pattern" in msg, msg
    else:
        assert f"corpus.domains[{at}].name: bad hierarchical domain name {bad!r}: use `source:topic`" in msg, msg


HIER = ["web:news", "web:forums", "code"]


def _hier(world: World, sources: dict) -> dict:
    return world.data([tok(n, [world.good]) for n in HIER], design={"hierarchy": {"sources": sources}})


@few(20)
@given(topic=_PART.filter(lambda t: t not in ("news", "forums")), prefix=st.sampled_from(["", "web:", "code:"]))
def test_a_frozen_mix_naming_an_unknown_topic(world, tmp_path_factory, topic, prefix):
    path = tmp_path_factory.mktemp("f") / "x.yaml"
    name = prefix + topic
    msg = config_refused(path, _hier(world, {"web": {"frozen": {"news": 0.5, name: 0.5}}}))
    assert (f"design.hierarchy.sources.web.frozen: unknown topic {name!r}; source 'web' has topics "
            "['forums', 'news']") in msg, msg


@pytest.mark.parametrize("frozen, expected", [
    ({"news": -0.5, "forums": 1.5}, "design.hierarchy.sources.web.frozen.news: weight must be finite and >= 0"),
    ({"news": 0, "forums": 0}, "design.hierarchy.sources.web.frozen: the topic weights must have a positive sum"),
    ({}, "design.hierarchy.sources.web.frozen: the topic weights must have a positive sum"),
    ({"news": float("nan")}, "design.hierarchy.sources.web.frozen.news: Input should be a finite number"),
    ({"news": float("inf")}, "design.hierarchy.sources.web.frozen.news: Input should be a finite number"),
])
def test_a_frozen_mix_with_bad_weights(world, tmp_path, frozen, expected):
    msg = config_refused(tmp_path / "x.yaml", _hier(world, {"web": {"frozen": frozen}}))
    assert expected in msg, msg


@few(10)
@given(news=st.floats(0.01, 50), forums=st.floats(0.01, 50))
def test_a_frozen_mix_not_summing_to_one_is_normalised(world, news, forums):
    """Documented (`docs/hierarchy-and-export.md`): the weights are normalised, like an export's within_source."""
    cfg = ExperimentConfig.model_validate(_hier(world, {"web": {"frozen": {"news": news, "forums": forums}}}))
    h = design_hierarchy(cfg.design, HIER)
    assert h is not None
    np.testing.assert_allclose(h.frozen[0], [news / (news + forums), forums / (news + forums), 0.0])


def test_frozen_on_a_flat_domain(world, tmp_path):
    msg = config_refused(tmp_path / "x.yaml", _hier(world, {"code": {"frozen": {"news": 1}}}))
    assert "design.hierarchy.sources.code.frozen: unknown topic 'news'; source 'code' has topics ['code']" in msg
    msg = config_refused(tmp_path / "y.yaml", _hier(world, {"wiki": {"frozen": {"wiki": 1}}}))
    assert "design.hierarchy.sources.wiki: unknown source 'wiki'; the domains' sources are ['web', 'code']" in msg
    # a flat domain frozen on itself (as an export's within_source reads) is a one-topic source: a no-op
    cfg = ExperimentConfig.model_validate(_hier(world, {"code": {"frozen": {"code": 0.3}}}))
    h = design_hierarchy(cfg.design, HIER)
    assert h is not None and h.reduce(np.eye(3)).shape == (3, 3) and h.respects([0.2, 0.3, 0.5])


# ------------------------------------------------------------------------------------------- config_file

@few(15)
@given(value=st.one_of(st.lists(st.integers() | st.text(max_size=5), max_size=4), st.integers(),
                       st.text(alphabet="abcxyz ", min_size=1, max_size=10).filter(str.strip), st.booleans()))
def test_config_file_that_is_not_a_mapping(tmp_path_factory, value):
    path = tmp_path_factory.mktemp("cf") / "x.yaml"
    path.write_text(yaml.safe_dump(value))
    with pytest.raises(ConfigError) as e:
        resolve_config(ExperimentConfig(), str(path))
    assert str(e.value) == f"{path}: the config must be a mapping of keys to values, got {type(value).__name__}"


@few(15)
@given(section=st.sampled_from(["", "swarm", "corpus", "target", "design", "runtime"]),
       key=st.from_regex(r"zz_[a-z]{1,6}", fullmatch=True))
def test_config_file_with_an_unknown_key(tmp_path_factory, section, key):
    path = tmp_path_factory.mktemp("cf") / "x.yaml"
    path.write_text(yaml.safe_dump({section: {key: 1}} if section else {key: 1}))
    with pytest.raises(ConfigError) as e:
        resolve_config(ExperimentConfig(name="form"), str(path))
    dotted = f"{section}.{key}" if section else key
    assert str(e.value) == f"{path}: invalid config\n  {dotted}: unknown key"


def test_config_file_missing_a_folder_not_yaml_or_binary(tmp_path):
    cases = {tmp_path / "nope.yaml": "config file not found", tmp_path: "cannot read the config (Is a directory)"}
    (tmp_path / "bad.yaml").write_text("name: x\nswarm: [unclosed\n")
    cases[tmp_path / "bad.yaml"] = "not valid YAML"
    (tmp_path / "bin.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    cases[tmp_path / "bin.yaml"] = "not UTF-8 text (byte 0)"
    for path, expected in cases.items():
        for form in (None, ExperimentConfig(name="form")):
            with pytest.raises(ConfigError) as e:
                resolve_config(form, str(path))
            msg = str(e.value)
            assert "\n" not in msg and msg.startswith(str(path)) and expected in msg, msg


def test_the_cli_exits_2_with_the_file_named(world, tmp_path):
    bad = {"dup.yaml": world.data(target={"eval_sets": [_ev(world, "e"), _ev(world, "e")]}),
           "nested.yaml": world.data([tok("a:b:c", [world.good])]),
           "frozen.yaml": _hier(world, {"web": {"frozen": {"sports": 1}}})}
    before = snapshot(world.wh)
    for name, data in bad.items():
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data))
        out = tmp_path / f"out-{name}"
        result = CliRunner().invoke(app, ["run", str(path), "--out", str(out)])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert " ".join(result.stderr.split()).startswith(f"error: {path}"), result.stderr
        assert not out.exists()
    assert snapshot(world.wh) == before
