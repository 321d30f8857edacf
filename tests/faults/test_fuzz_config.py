"""Bad configs, fuzzed: every malformed YAML config is a `ConfigError` naming the file and the field.

Hypothesis mutates a valid config (wrong types, out-of-range numbers, unknown keys, inf/NaN), breaks
its YAML, or writes binary / non-mapping files; `load_config` must reject each one with a message
that starts with the file's path and names the field (or file:line for YAML syntax) -- never any
other exception. About 900 examples in all; the CLI path is in test_cli_errors.py.
"""

from __future__ import annotations

import copy
import re
import string
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from mixopt.config import ConfigError, DomainConfig, ExperimentConfig, load_config

BASE: dict = {
    "name": "fuzz",
    "corpus": {"source": "files", "domains": [
        {"name": "web", "paths": ["web/*.jsonl"]},
        {"name": "code", "paths": ["code/*.jsonl.gz"], "format": "jsonl.gz", "text_field": "body"}]},
    "tokenizer": {"vocab_size": 300, "path": None},
    "target": {"weights": {"web": 1.0, "code": 0.5}},
    "swarm": {"n_proxies": 4, "tokens": 4096, "model": {"n_layer": 1, "n_embd": 16, "n_head": 2}},
    "design": {"min_weight": 0.01},
    "regressor": {"candidates": ["linear"]},
    "proposer": {"n_samples": 2000},
    "final": {"seeds": [0, 1], "baselines": ["natural"], "model": {}, "aioli": {"ema": None}},
    "runtime": {"warehouse": "w.duckdb", "dask_address": None},
}


def fuzz(n: int) -> settings:
    """Hypothesis settings of these tests: `n` examples, no deadline, no example database on disk."""
    return settings(max_examples=n, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _leaves(model: type[BaseModel], prefix: str = "") -> list[tuple[str, typing.Any, list]]:
    """(dotted path, annotation, constraints) of every scalar-ish field, domains' fields included."""
    out = []
    for name, f in model.model_fields.items():
        if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
            out += _leaves(f.annotation, f"{prefix}{name}.")
        else:
            out.append((prefix + name, f.annotation, f.metadata))
    return out


LEAVES = _leaves(ExperimentConfig) + _leaves(DomainConfig, "corpus.domains.1.")
LEAF_NAMES = [p for p, _, _ in LEAVES]
_BOUNDS = ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern")
BOUNDED = [(p, a, m) for p, a, m in LEAVES if any(hasattr(c, k) for c in m for k in _BOUNDS)]
MAPPINGS = {"": ExperimentConfig, "corpus": None, "corpus.domains.0": DomainConfig, "tokenizer": None,
            "swarm": None, "swarm.model": None, "design": None, "final": None, "final.model": None,
            "final.aioli": None, "runtime": None}
_BOOL_WORDS = {"0", "off", "f", "false", "n", "no", "1", "on", "t", "true", "y", "yes"}
_letters = st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=12)
_containers = st.one_of(st.lists(st.integers(), min_size=1, max_size=2),
                        st.dictionaries(st.sampled_from("abc"), st.integers(), min_size=1, max_size=2))


def _kind(ann: typing.Any) -> tuple[str, bool, tuple]:
    """('int' | 'float' | 'bool' | 'str' | 'literal' | 'list' | 'dict', optional, literal options)."""
    args = typing.get_args(ann)
    optional = type(None) in args
    if optional:
        ann = next(a for a in args if a is not type(None))
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        return "literal", optional, typing.get_args(ann)
    if origin in (list, dict):
        return origin.__name__, optional, ()
    return ann.__name__, optional, ()


def _wrong_type(ann: typing.Any) -> st.SearchStrategy:
    """Values of a type that `ann` never accepts (no lax coercion applies)."""
    kind, optional, options = _kind(ann)
    none = st.nothing() if optional else st.none()
    if kind == "int":
        return st.one_of(_letters, st.floats(-1e6, 1e6).filter(lambda x: x != int(x)), _containers, none)
    if kind == "float":
        return st.one_of(_letters, st.sampled_from([float("inf"), float("-inf"), float("nan")]), _containers, none)
    if kind == "bool":
        return st.one_of(_letters.filter(lambda s: s.lower() not in _BOOL_WORDS),
                         st.integers().filter(lambda i: i not in (0, 1)), _containers, none)
    if kind == "str":
        return st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), _containers, none)
    if kind == "literal":
        return st.one_of(_letters.filter(lambda s: s not in options), st.integers(), _containers, none)
    if kind == "list":
        return st.one_of(_letters, st.integers(), st.dictionaries(st.sampled_from("ab"), st.integers(), max_size=2),
                         st.lists(st.lists(st.integers(), max_size=1), min_size=1, max_size=2), none)
    return st.one_of(_letters, st.integers(), st.lists(st.integers(), max_size=2),
                     st.dictionaries(st.sampled_from(["web", "code"]), _letters, min_size=1, max_size=2), none)


def _out_of_range(ann: typing.Any, constraints: list) -> st.SearchStrategy:
    """Values of the right type that break one of the field's constraints."""
    integer = _kind(ann)[0] == "int"
    choices = []
    for c in constraints:
        lo, hi = (-10**9, 10**9) if integer else (-1e12, 1e12)
        num = st.integers if integer else (lambda a, b: st.floats(a, b, allow_nan=False))
        if getattr(c, "ge", None) is not None:
            choices.append(num(lo, c.ge - 1) if integer else num(lo, c.ge).filter(lambda x, g=c.ge: x < g))
        if getattr(c, "gt", None) is not None:
            choices.append(num(lo, c.gt))
        if getattr(c, "le", None) is not None:
            choices.append(num(c.le + 1, hi) if integer else num(c.le, hi).filter(lambda x, l=c.le: x > l))
        if getattr(c, "lt", None) is not None:
            choices.append(num(c.lt, hi))
        if getattr(c, "min_length", None):
            choices.append(st.just([]))
        if getattr(c, "max_length", None):
            choices.append(st.integers(c.max_length + 1, 200_000).map(lambda n: "a" * n))  # huge lines too
        if getattr(c, "pattern", None):
            choices.append(st.text(min_size=1, max_size=16).filter(lambda s, p=c.pattern: not re.fullmatch(p, s)))
    return st.one_of(choices)


def _set(data: dict, dotted: str, value: object) -> dict:
    keys: list = [int(k) if k.isdigit() else k for k in dotted.split(".") if k]
    node: typing.Any = data
    for k in keys[:-1]:
        node = node.setdefault(k, {}) if isinstance(node, dict) else node[k]  # sections BASE leaves out
    node[keys[-1]] = value
    return data


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("configs")


def rejected(folder: Path, content: str | bytes) -> str:
    """Write `content` as a config, load it, and return the ConfigError's message (checked)."""
    path = folder / "bad.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert msg.startswith(str(path)) and "Traceback" not in msg, msg
    return msg


def names_field(msg: str, dotted: str) -> bool:
    """True when one of the message's error lines is about `dotted` (or a part of it)."""
    return any(re.match(rf"\s+{re.escape(dotted)}[.:]", line) for line in msg.splitlines()[1:])


def test_the_base_config_is_valid(folder):
    path = folder / "good.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert load_config(path).swarm.n_proxies == 4


@fuzz(250)
@given(data=st.data())
def test_a_wrong_type_names_the_field(folder, data):
    dotted, ann, _ = data.draw(st.sampled_from(LEAVES))
    value = data.draw(_wrong_type(ann))
    msg = rejected(folder, yaml.safe_dump(_set(copy.deepcopy(BASE), dotted, value)))
    assert names_field(msg, dotted), msg


@fuzz(200)
@given(data=st.data())
def test_an_out_of_range_value_names_the_field(folder, data):
    dotted, ann, constraints = data.draw(st.sampled_from(BOUNDED))
    value = data.draw(_out_of_range(ann, constraints))
    msg = rejected(folder, yaml.safe_dump(_set(copy.deepcopy(BASE), dotted, value), allow_unicode=True))
    assert names_field(msg, dotted), msg


@fuzz(150)
@given(parent=st.sampled_from(sorted(MAPPINGS)), key=st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True))
def test_an_unknown_key_is_named(folder, parent, key):
    node: typing.Any = copy.deepcopy(BASE)
    for k in [int(k) if k.isdigit() else k for k in parent.split(".") if k]:
        node = node[k]
    known = parent and key in MAPPINGS.get(parent).model_fields if MAPPINGS.get(parent) else False
    if key in node or f"{parent}.{key}".lstrip(".") in LEAF_NAMES or known:
        return  # a real field, not an unknown key
    data = copy.deepcopy(BASE)
    _set(data, f"{parent}.{key}", 1)
    msg = rejected(folder, yaml.safe_dump(data))
    assert re.search(rf"^\s+{re.escape(f'{parent}.{key}'.lstrip('.'))}: unknown key$", msg, re.M), msg


_BROKEN = ["\t- tab indent", "key: [unclosed", "key: {unclosed", "'unterminated: x", '"unterminated: x',
           "*undefined_alias", "- item: in a mapping", ": no key", "x: !!python/object:os.system ls",
           "%YAML 1.1", "key: value: other", "@reserved", "`backtick", "? [a, b]\n: c", "{a: 1", "]",
           "name: again", "&a &b x: 1", "!!binary: ="]


@fuzz(150)
@given(where=st.integers(0, 60), fragment=st.sampled_from(_BROKEN))
def test_broken_yaml_names_the_file_and_line(folder, where, fragment):
    # at column 0 (indented, most fragments would just continue a multi-line plain scalar)
    lines = yaml.safe_dump(BASE, sort_keys=False).splitlines()
    where = min(where, len(lines))
    msg = rejected(folder, "\n".join(lines[:where] + [fragment] + lines[where:]) + "\n")
    m = re.match(rf"{re.escape(str(folder / 'bad.yaml'))}:(\d+): not valid YAML", msg)
    if m:
        assert 1 <= int(m.group(1)) <= len(lines) + 3, msg


_POISON = [b"\xff", b"\xc3\x28", b"\x00", b"\x07", b"\x1b[0m", b"\xed\xa0\x80"]


@fuzz(100)
@given(head=st.binary(max_size=300), poison=st.sampled_from(_POISON), tail=st.binary(max_size=300))
def test_a_binary_file_is_rejected(folder, head, poison, tail):
    rejected(folder, head + poison + tail)


@fuzz(50)
@given(value=st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=40),
                       st.booleans(), st.floats(allow_nan=False)))
def test_a_config_that_is_not_a_mapping_is_rejected(folder, value):
    msg = rejected(folder, yaml.safe_dump(value, allow_unicode=True))
    assert "must be a mapping" in msg, msg


def _cfg(**changes: object) -> dict:
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        _set(data, dotted.replace("__", "."), value)
    return data


@pytest.mark.parametrize("data, expected", [
    (_cfg(swarm__model__n_head=3), "swarm.model: Value error, n_head (3) must divide n_embd (16)"),
    (_cfg(design__concentration_min=5.0, design__concentration_max=1.0),
     "concentration_min must be <= concentration_max"),
    (_cfg(corpus__domains=[], target__weights=None),
     "corpus: Value error, source is 'files' but no domains are listed"),
    (_cfg(corpus__domains__1__name="web"), "duplicate domain names: ['web']"),
    (_cfg(target__weights={"nope": 1.0}), "target.weights names unknown domains ['nope']"),
    (_cfg(target__weights={"web": 0.0}), "target.weights: Value error, target weights must not all be zero"),
    (_cfg(target__weights={"web": -1.0}), "target.weights: Value error, target weights must be >= 0"),
    (_cfg(tokenizer__kind="file"), "tokenizer: Value error, kind is 'file' but no path is given"),
    (_cfg(corpus__domains__0__paths=[]), "corpus.domains.0.paths: List should have at least 1 item"),
    (_cfg(swarm__weight_decay=float("inf")), "swarm.weight_decay: Input should be a finite number"),
    ("name: a\nswarm: {seed: 1}\nname: b\n", ":3: not valid YAML (duplicate key 'name')"),
    ("[" * 5000, "not valid YAML (nested too deeply)"),
    ("swarm: {seed: " + "9" * 5000 + "}\n", "not valid YAML (Exceeds the limit"),
])
def test_semantic_errors_are_explained(folder, data, expected):
    msg = rejected(folder, data if isinstance(data, str) else yaml.safe_dump(data))
    assert expected in msg, msg


def test_an_unreadable_config_is_a_config_error(tmp_path):
    for path, expected in ((tmp_path / "missing.yaml", "config file not found"), (tmp_path, "cannot read the config")):
        with pytest.raises(ConfigError, match=re.escape(expected)):
            load_config(path)
