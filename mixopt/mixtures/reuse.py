"""Mixture reuse: domains known by their content across experiments, and the reduced design that keeps
an earlier proposal's weights over the unchanged domains as one frozen composite (olmix's mixture reuse).

* A domain is known by its *content* and its *tokenizer*, not by its name (:class:`DomainIdentity`): the
  sha256 of its documents' text (`domains.text_sha256`), or for a pre-tokenized domain (no text) the
  sha256 of its train and validation token shards; and the tokenizer's kind and vocabulary size (a BPE
  retrained on a changed corpus counts as the same tokenizer: the text, not its tokens, is compared).
* :func:`diff_domains` says which domains of a later experiment are unchanged (perhaps renamed), added,
  removed or changed (same name, other content).
* :func:`build_plan` turns an earlier experiment's latest proposal into a :class:`ReusePlan`: its weights
  over the unchanged domains, renormalised, become the proportions of one frozen *composite*, and every
  other domain stays free. The plan's :class:`~mixopt.mixtures.hierarchy.Hierarchy` has the composite as
  its one frozen source, so the design draws, the GP rounds and the proposer work in its reduced space
  (`reduce` / `expand`: the composite's total plus one coordinate per added or changed domain) and every
  mixture they return, over all domains, keeps the reused proportions.

Pure numpy; the warehouse reads are in `mixopt/warehouse/reads.py`, the glue in `mixopt/tasks/swarm.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from mixopt.mixtures.hierarchy import Hierarchy

COMPOSITE = "(reused)"
"""The composite's source label (no domain name can contain parentheses)."""


def content_key(text_sha256: str | None, train_sha256: str | None = None, val_sha256: str | None = None) -> str:
    """A domain's content: `text:<sha>` from its text checksum, else (pre-tokenized domains) `tokens:<train>+<val>`
    from its shards' checksums; "" when none is recorded (such a domain never matches another)."""
    if text_sha256:
        return f"text:{text_sha256}"
    if train_sha256 and val_sha256:
        return f"tokens:{train_sha256}+{val_sha256}"
    return ""


def tokenizer_key(config: Mapping[str, Any] | None) -> str:
    """The tokenizer of a stored experiment config: `<kind>:<vocab_size>` (defaults as the config's)."""
    tok = (config or {}).get("tokenizer") or {}
    return f"{tok.get('kind', 'bpe')}:{tok.get('vocab_size', 2048)}"


@dataclass(frozen=True)
class DomainIdentity:
    """One domain of one experiment: its name, content key (:func:`content_key`) and tokenizer key."""

    name: str
    content: str
    tokenizer: str

    @property
    def key(self) -> tuple[str, str] | None:
        """What identifies it across experiments (None: unknown content, never matched)."""
        return (self.content, self.tokenizer) if self.content else None


def identities(rows: Iterable[Mapping[str, Any]], config: Mapping[str, Any] | None) -> list[DomainIdentity]:
    """The identities of an experiment's domains from its `domains` rows (`domain`, `text_sha256`,
    `train_sha256`, `val_sha256`) and its stored config (for the tokenizer)."""
    tok = tokenizer_key(config)
    return [DomainIdentity(str(r["domain"]), content_key(r.get("text_sha256"), r.get("train_sha256"),
                                                         r.get("val_sha256")), tok) for r in rows]


@dataclass
class DomainDiff:
    """How experiment B's domains relate to experiment A's."""

    unchanged: list[tuple[str, str]] = field(default_factory=list)
    """(name in A, name in B) of domains with the same content and tokenizer (renamed when they differ)."""
    changed: list[str] = field(default_factory=list)
    """Names in both whose content or tokenizer differ."""
    added: list[str] = field(default_factory=list)
    """Names in B only (no domain of A has their content)."""
    removed: list[str] = field(default_factory=list)
    """Names in A only (no domain of B has their content)."""

    @property
    def renamed(self) -> list[tuple[str, str]]:
        return [(a, b) for a, b in self.unchanged if a != b]

    def rows(self) -> list[tuple[str, str, str]]:
        """(status, name in A, name in B) per domain: unchanged, renamed, changed, added, removed."""
        out = [("renamed" if a != b else "unchanged", a, b) for a, b in self.unchanged]
        out += [("changed", n, n) for n in self.changed]
        out += [("added", "", n) for n in self.added]
        out += [("removed", n, "") for n in self.removed]
        return out


def diff_domains(a: Sequence[DomainIdentity], b: Sequence[DomainIdentity]) -> DomainDiff:
    """Match B's domains to A's by content and tokenizer (a same-named match first when several have the
    content), then the rest by name (changed), leaving B's others added and A's others removed."""
    diff = DomainDiff()
    free_b = list(b)
    left_a = []
    for da in a:
        same = [db for db in free_b if da.key is not None and db.key == da.key]
        if not same:
            left_a.append(da)
            continue
        db = next((x for x in same if x.name == da.name), same[0])
        free_b.remove(db)
        diff.unchanged.append((da.name, db.name))
    names_b = {db.name: db for db in free_b}
    for da in left_a:
        if da.name in names_b:
            diff.changed.append(da.name)
            del names_b[da.name]
        else:
            diff.removed.append(da.name)
    diff.added = [db.name for db in free_b if db.name in names_b]
    return diff


def composite_hierarchy(names: Sequence[str], within: np.ndarray, members: Iterable[int],
                        source_range: tuple[float, float] = (0.1, 5.0)) -> Hierarchy:
    """A `Hierarchy` over `names` whose one frozen source is the composite of the domains `members`,
    at the proportions `within` (over all domains, zero outside the composite; normalised here; a member
    may have proportion 0), every other domain its own source; both levels sweep `source_range`."""
    names, members = list(names), set(members)
    within = np.asarray(within, dtype=float).ravel()
    if not members or not within.sum() > 0:
        raise ValueError("the composite needs at least one domain and a positive total proportion")
    sources: list[str] = []
    source_of = np.empty(len(names), dtype=int)
    for i, n in enumerate(names):
        label = COMPOSITE if i in members else n
        if label not in sources:
            sources.append(label)
        source_of[i] = sources.index(label)
    return Hierarchy(names, sources, source_of, tuple(source_range),
                     {s: tuple(source_range) for s in range(len(sources))},
                     {sources.index(COMPOSITE): within / within.sum()})


@dataclass
class ReusePlan:
    """What a new experiment reuses from an earlier one, and the reduced space it then searches."""

    source: str
    """The source experiment's id."""
    proposal_id: str
    """The source's latest proposal, whose weights are reused."""
    mixture_id: str
    """That proposal's mixture."""
    pairs: list[tuple[str, str]]
    """(name in the source, name here) of every unchanged domain: the composite."""
    within: np.ndarray
    """Over this experiment's domains: the composite's frozen proportions (zero elsewhere; sum 1)."""
    source_total: float
    """The source proposal's total weight on the composite's domains."""
    free: list[str]
    """This experiment's domains searched freely (added or changed since the source)."""
    hierarchy: Hierarchy
    """The composite frozen, every other domain its own source: the reduced space."""

    @property
    def reduced_dim(self) -> int:
        """Coordinates of the reduced space: one for the composite and one per free domain."""
        return len(self.free) + 1

    def details(self) -> dict[str, Any]:
        """The lineage, as JSON for the proposal's details (`reused_from`)."""
        names = self.hierarchy.names
        return {"experiment": self.source, "proposal_id": self.proposal_id, "mixture_id": self.mixture_id,
                "composite": {b: float(self.within[names.index(b)]) for _, b in self.pairs},
                "renamed": {a: b for a, b in self.pairs if a != b}, "source_total": float(self.source_total),
                "searched": list(self.free)}


def build_plan(names: Sequence[str], diff: DomainDiff, source_names: Sequence[str], source_weights: Sequence[float],
               *, source: str, proposal_id: str, mixture_id: str,
               source_range: tuple[float, float] = (0.1, 5.0)) -> ReusePlan:
    """The plan that keeps the source proposal (`source_weights` over `source_names`) over the domains
    `diff` says are unchanged; `names` are this experiment's domains. ``ValueError`` when nothing is
    unchanged, or the proposal gives the unchanged domains no weight (nothing to reuse then)."""
    names = list(names)
    if not diff.unchanged:
        raise ValueError(f"experiment {source!r} shares no unchanged domain with this one (same content and "
                         "tokenizer); nothing to reuse")
    if len(source_weights) != len(source_names):
        raise ValueError(f"the proposal of {source!r} has {len(source_weights)} weights for "
                         f"{len(source_names)} domains")
    w_src = dict(zip(source_names, (float(x) for x in source_weights)))
    within = np.zeros(len(names))
    for a, b in diff.unchanged:
        within[names.index(b)] = max(w_src[a], 0.0)
    total = float(within.sum())
    if not total > 0:
        raise ValueError(f"proposal {proposal_id} of {source!r} gives the unchanged domains "
                         f"{[b for _, b in diff.unchanged]} no weight; nothing to reuse")
    within /= total
    members = {names.index(b) for _, b in diff.unchanged}
    free = [n for i, n in enumerate(names) if i not in members]
    h = composite_hierarchy(names, within, members, source_range)
    return ReusePlan(source, proposal_id, mixture_id, list(diff.unchanged), within, total, free, h)
