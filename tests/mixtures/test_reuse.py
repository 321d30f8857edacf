"""Mixture reuse, pure parts: domains matched by content and tokenizer (not name), the composite plan and its
reduced space, and how many proxies that space gets."""

import numpy as np
import pytest

from mixopt.mixtures import policy
from mixopt.mixtures.design import token_caps
from mixopt.mixtures.reuse import (
    COMPOSITE,
    DomainIdentity,
    build_plan,
    content_key,
    diff_domains,
    identities,
    tokenizer_key,
)

TOK = "bpe:2048"


def _ids(**named):
    return [DomainIdentity(n, content_key(sha), TOK) for n, sha in named.items()]


def test_a_renamed_domain_with_the_same_text_is_unchanged():
    d = diff_domains(_ids(web="s1", code="s2"), _ids(webtext="s1", code="s2"))
    assert d.unchanged == [("web", "webtext"), ("code", "code")]
    assert d.renamed == [("web", "webtext")]
    assert d.changed == d.added == d.removed == []
    assert ("renamed", "web", "webtext") in d.rows() and ("unchanged", "code", "code") in d.rows()


def test_a_changed_checksum_is_changed_and_new_or_gone_names_are_added_or_removed():
    d = diff_domains(_ids(web="s1", code="s2", books="s3"), _ids(web="s1b", code="s2", papers="s4"))
    assert d.unchanged == [("code", "code")]
    assert d.changed == ["web"]
    assert d.added == ["papers"] and d.removed == ["books"]
    assert sorted(r[0] for r in d.rows()) == ["added", "changed", "removed", "unchanged"]


def test_a_removed_domain_whose_text_moved_to_another_name_is_a_rename_not_a_removal():
    d = diff_domains(_ids(a="s1", b="s2"), _ids(b="s9", c="s1"))
    assert d.unchanged == [("a", "c")] and d.changed == ["b"] and d.added == d.removed == []


def test_the_tokenizer_is_part_of_the_identity():
    a = [DomainIdentity("web", content_key("s1"), "bpe:2048")]
    b = [DomainIdentity("web", content_key("s1"), "bpe:4096")]
    assert diff_domains(a, b).changed == ["web"]
    assert tokenizer_key({"tokenizer": {"kind": "bpe", "vocab_size": 4096}}) == "bpe:4096"
    assert tokenizer_key({}) == "bpe:2048"  # the config's defaults


def test_pre_tokenized_domains_are_known_by_their_shards_and_unknown_content_never_matches():
    rows = [{"domain": "tok", "text_sha256": "", "train_sha256": "t1", "val_sha256": "v1"},
            {"domain": "old", "text_sha256": None, "train_sha256": None, "val_sha256": None}]
    a = identities(rows, {"tokenizer": {"kind": "none", "vocab_size": 50_000}})
    assert a[0].content == "tokens:t1+v1" and a[0].tokenizer == "none:50000" and a[1].key is None
    b = identities([{**rows[0], "domain": "tok2"}, rows[1]], {"tokenizer": {"kind": "none", "vocab_size": 50_000}})
    d = diff_domains(a, b)
    assert d.unchanged == [("tok", "tok2")] and d.changed == ["old"]  # no checksum: same name, but not unchanged


def test_identical_content_under_two_names_pairs_same_names_first():
    d = diff_domains(_ids(x="s", y="s"), _ids(y="s", x="s"))
    assert sorted(d.unchanged) == [("x", "x"), ("y", "y")]


NAMES = ["a", "b", "c", "d", "new"]


def _plan(weights=(0.4, 0.3, 0.2, 0.1), rename=None):
    src = ["a", "b", "c", "d"]
    mine = [rename.get(n, n) for n in NAMES] if rename else NAMES
    d = diff_domains(_ids(**{n: f"s{n}" for n in src}), _ids(**{m: f"s{n}" for n, m in zip(NAMES, mine)}))
    return mine, build_plan(mine, d, src, list(weights), source="old-0123456789", proposal_id="p1",
                            mixture_id="m1")


def test_the_plan_freezes_the_unchanged_domains_at_the_source_proportions():
    names, plan = _plan(weights=(0.2, 0.2, 0.1, 0.0))
    np.testing.assert_allclose(plan.within, [0.4, 0.4, 0.2, 0.0, 0.0])
    assert plan.free == ["new"] and plan.reduced_dim == 2 and plan.source_total == pytest.approx(0.5)
    h = plan.hierarchy
    assert h.sources == [COMPOSITE, "new"]
    np.testing.assert_allclose(h.expand(np.array([0.7, 0.3])), [0.28, 0.28, 0.14, 0.0, 0.3])
    w = np.array([0.1, 0.1, 0.1, 0.4, 0.3])  # off the freeze: projection brings it onto it
    assert not h.respects(w)
    p = h.project(w, None)
    assert h.respects(p) and p[-1] == pytest.approx(0.3)
    det = plan.details()
    assert det["experiment"] == "old-0123456789" and det["proposal_id"] == "p1" and det["searched"] == ["new"]
    assert det["composite"]["a"] == pytest.approx(0.4)


def test_the_plan_follows_renamed_domains():
    names, plan = _plan(rename={"a": "alpha"})
    assert plan.details()["renamed"] == {"a": "alpha"}
    assert plan.within[names.index("alpha")] == pytest.approx(0.4)


def test_nothing_to_reuse_is_an_error():
    d = diff_domains(_ids(a="s1"), _ids(a="s2", b="s3"))
    with pytest.raises(ValueError, match="no unchanged domain"):
        build_plan(["a", "b"], d, ["a"], [1.0], source="x", proposal_id="p", mixture_id="m")
    d = diff_domains(_ids(a="s1", b="s2"), _ids(a="s1", c="s3"))
    with pytest.raises(ValueError, match="no weight"):
        build_plan(["a", "c"], d, ["a", "b"], [0.0, 1.0], source="x", proposal_id="p", mixture_id="m")


def test_the_design_in_the_reduced_space_keeps_the_composite():
    _, plan = _plan()
    prior = np.array([0.2, 0.2, 0.2, 0.2, 0.2])
    caps = token_caps(np.full(5, 1e6), 1e6, 4.0)
    W = policy.sample_around_prior_and_target(prior, prior, 8, caps, 0, [], target_fraction=0.25,
                                              concentration_min=0.1, concentration_max=5.0, min_weight=0.005,
                                              hierarchy=plan.hierarchy)
    assert W.shape == (8, 5)
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    assert all(plan.hierarchy.respects(w) for w in W)
    assert len({round(float(w[-1]), 4) for w in W}) == 8  # the new domain's weight is what varies


def test_reuse_design_size_scales_with_the_searched_coordinates():
    assert policy.reuse_design_size(15, 5, 2) == 6  # 15 proxies for 5 domains: 3 per coordinate
    assert policy.reuse_design_size(12, 4, 2) == 6
    assert policy.reuse_design_size(6, 5, 2) == 4  # never below the minimum a fit needs
    assert policy.reuse_design_size(6, 6, 5) == 6  # nor below the reduced dimension + 1
    assert policy.reuse_design_size(5, 6, 5) == 5  # but never above the full design
    assert policy.reuse_design_size(15, 5, 5) == 15  # everything changed: the full design
    assert policy.reuse_design_size(15, 5, 2, reuse_proxies=3) == 3
