"""Fuzzing `mixopt export --path-template`: a template that could leave its folder (`..`), run
something when the megatron blend is sourced by a shell (`$(...)`, backticks, quotes, `;`, spaces,
newlines) or blow up (format specs, attribute or index access) is one line naming the option;
nothing is written and the warehouse is unchanged. Safe templates still render.
"""

from __future__ import annotations

import random
import string

import pytest
from typer.testing import CliRunner

from mixopt.cli import app
from tests.test_export import _sha, _warehouse

HOSTILE = [
    "/data/../../etc/{domain}", "{domain}/..", "../{domain}", "/data/{domain}/../../x",
    "/data/$(touch pwned)/{domain}", "/data/`touch pwned`/{domain}", "/data/${HOME}/{domain}", "$HOME/{domain}",
    '/data/{domain}" ; touch pwned ; "', "/data/{domain}'", "/data/{domain};id", "/data/{domain}|id",
    "/data/{domain}&&id", "/data/{domain} 0.5 /etc/passwd", "/data/{domain}\nid", "/data/{domain}\\",
    "/data/{domain}>out", "/data/~/{domain}", "/data/*/{domain}", "/data/{domain}#",
    "{domain:>100000000}", "{domain!r}", "{domain!s:^9}", "{domain.__class__}", "{domain[0]}", "{0}", "{}",
    "{domain", "domain}", "{{domain}}", "{{{domain}}}", "/data/{source}/{topic}/{unknown}",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    return tmp, _warehouse(tmp)


@pytest.mark.parametrize("fmt", ["megatron", "hf"])
@pytest.mark.parametrize("template", HOSTILE)
def test_a_hostile_path_template_is_one_line_and_writes_nothing(store, template, fmt, tmp_path, monkeypatch):
    _, path = store
    monkeypatch.chdir(tmp_path)
    before = _sha(path)
    res = CliRunner().invoke(app, ["export", "hier-1", "-f", fmt, "--path-template", template, "-w", str(path),
                                   "-o", str(tmp_path / "mix.txt")])
    err = " ".join(res.stderr.split())
    assert res.exit_code == 2, (template, res.output)
    assert err.startswith("error: --path-template") and "Traceback" not in res.output, err
    assert len(res.stderr.strip().splitlines()) <= 2  # one line (a long one may wrap once)
    assert list(tmp_path.iterdir()) == [] and _sha(path) == before


def test_random_templates_render_safe_paths_or_are_refused(store, tmp_path, monkeypatch):
    _, path = store
    monkeypatch.chdir(tmp_path)
    rng = random.Random(0)
    alphabet = string.printable + "{}{}" + "é"
    rendered = refused = 0
    for _ in range(150):
        template = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        template += rng.choice(["{domain}", "{source}/{topic}", "", "{topic}"])
        res = CliRunner().invoke(app, ["export", "hier-1", "-f", "megatron", "--path-template", template,
                                       "-w", str(path)])
        if res.exit_code == 0:
            rendered += 1
            line = next(x for x in res.stdout.splitlines() if x.startswith("MIXOPT_DATA_PATH="))
            blend = line.removeprefix('MIXOPT_DATA_PATH="').removesuffix('"')
            paths = blend.split(" ")[1::2]
            assert paths and all(".." not in p.split("/") for p in paths), template
            assert not set(blend) & set("\"'`$\\;&|<>(){}*?!#~\n\t"), template
        else:
            refused += 1
            assert res.exit_code == 2 and res.stderr.startswith("error: --path-template"), (template, res.output)
    assert rendered > 0 and refused > 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("template, expected", [
    ("/data/{domain}/text_document", "/data/web:news/text_document"),
    ("s3://bucket/{source}/{topic}.jsonl", "s3://bucket/code/python.jsonl"),
    ("org/{source}-{topic}", "org/web-forums"),
])
def test_safe_templates_still_render(store, template, expected):
    _, path = store
    res = CliRunner().invoke(app, ["export", "hier-1", "-f", "megatron", "--path-template", template, "-w", str(path)])
    assert res.exit_code == 0, res.output
    assert expected in res.stdout
