"""Hierarchical domains: `source:topic` names, a two-level Dirichlet design and frozen topic mixes.

A domain named ``web:news`` is the topic ``news`` of the source ``web``; a flat name (``code``) is a
source with one topic, itself.  :class:`Hierarchy` knows which domain belongs to which source and

* draws design mixtures in two levels (:meth:`Hierarchy.draw`): a Dirichlet over the sources around
  the prior's source totals, then one Dirichlet over the topics within each source around the
  prior's within-source proportions, each level with its own log-uniform concentration sweep;
* keeps the within-source proportions of *frozen* sources fixed (olmix's mixture reuse: the topic mix
  of an earlier search).  Mixtures that keep them form a linear subspace of the simplex: one
  coordinate per domain of an unfrozen source and one per frozen source (its total).  Proposers work
  in that *reduced* space (:meth:`reduce`, :meth:`expand`, :meth:`reduced_caps`, :class:`ReducedModel`)
  and :meth:`project` is the freeze-keeping counterpart of :func:`~mixopt.mixtures.design.project_to_caps`.

Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from mixopt.mixtures.design import _TOL, check_caps, project_to_caps

SEP = ":"


def split_name(name: str) -> tuple[str, str]:
    """``(source, topic)`` of a domain name; a flat name is its own source and topic.

    ``ValueError`` for a malformed hierarchical name (an empty part, or more than one ``:``)."""
    if SEP not in name:
        return name, name
    parts = name.split(SEP)
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"bad hierarchical domain name {name!r}: use `source:topic` (one `:`, both parts "
                         "non-empty, e.g. `web:news`)")
    return parts[0], parts[1]


def check_domain_names(names: Sequence[str], field_name: str = "corpus.domains") -> None:
    """Validate `source:topic` names: one line naming the field and the domain on the first bad one."""
    for i, n in enumerate(names):
        try:
            split_name(n)
        except ValueError as e:
            raise ValueError(f"{field_name}[{i}].name: {e}") from None


def is_hierarchical(names: Sequence[str]) -> bool:
    return any(SEP in n for n in names)


@dataclass
class Hierarchy:
    """Sources and topics of a list of domains, the per-level concentration sweeps and frozen sources."""

    names: list[str]
    sources: list[str]
    """Source names in order of first appearance."""
    source_of: np.ndarray
    """Per domain: the index of its source in `sources`."""
    source_range: tuple[float, float] = (0.1, 5.0)
    """Concentration sweep (min, max) of the Dirichlet over the sources."""
    topic_range: dict[int, tuple[float, float]] = field(default_factory=dict)
    """Source index -> concentration sweep of the Dirichlet over its topics."""
    frozen: dict[int, np.ndarray] = field(default_factory=dict)
    """Source index -> within-source proportions over all k domains (zero outside the source; sums to 1)."""

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_names(cls, names: Sequence[str], source_range: tuple[float, float] = (0.1, 5.0),
                   topic_range: tuple[float, float] = (0.1, 5.0),
                   per_source: Mapping[str, tuple[float, float]] | None = None,
                   frozen: Mapping[str, Mapping[str, float]] | None = None,
                   field_name: str = "design.hierarchy.sources") -> "Hierarchy":
        """The hierarchy of `names`. `per_source`: topic sweeps by source; `frozen`: source ->
        {topic: weight} (the topic alone or the full `source:topic` name; omitted topics get 0;
        normalised). Unknown sources or topics are a ``ValueError`` naming `field_name`."""
        names = list(names)
        check_domain_names(names)
        pairs = [split_name(n) for n in names]
        sources: list[str] = []
        for s, _ in pairs:
            if s not in sources:
                sources.append(s)
        source_of = np.array([sources.index(s) for s, _ in pairs], dtype=int)
        h = cls(names, sources, source_of, tuple(source_range),
                {j: tuple(topic_range) for j in range(len(sources))})
        for src, rng in (per_source or {}).items():
            h.topic_range[h._source_index(src, field_name)] = tuple(rng)
        for src, weights in (frozen or {}).items():
            j = h._source_index(src, field_name)
            topics = {t: i for i, (s, t) in enumerate(pairs) if s == src}
            v = np.zeros(len(names))
            for t, w in weights.items():
                key = t.split(SEP, 1)[1] if t.startswith(src + SEP) else t
                if key not in topics:
                    raise ValueError(f"{field_name}.{src}.frozen: unknown topic {t!r}; source {src!r} has topics "
                                     f"{sorted(topics)}")
                if not (np.isfinite(w) and w >= 0):
                    raise ValueError(f"{field_name}.{src}.frozen.{t}: weight must be finite and >= 0, got {w}")
                v[topics[key]] = float(w)
            if v.sum() <= 0:
                raise ValueError(f"{field_name}.{src}.frozen: the topic weights must have a positive sum")
            h.frozen[j] = v / v.sum()
        return h

    def _source_index(self, src: str, field_name: str) -> int:
        if src not in self.sources:
            raise ValueError(f"{field_name}.{src}: unknown source {src!r}; the domains' sources are {self.sources}")
        return self.sources.index(src)

    @property
    def k(self) -> int:
        return len(self.names)

    @property
    def free_mask(self) -> np.ndarray:
        """Per domain: is its source unfrozen?"""
        return np.array([int(j) not in self.frozen for j in self.source_of], dtype=bool)

    def members(self, j: int) -> np.ndarray:
        return np.flatnonzero(self.source_of == j)

    # ------------------------------------------------------------------ both levels
    def source_totals(self, W: np.ndarray) -> np.ndarray:
        """Per row: the weight of each source (the sum of its topics), ``(m, n_sources)``."""
        W = np.atleast_2d(np.asarray(W, dtype=float))
        return np.stack([W[:, self.members(j)].sum(axis=1) for j in range(len(self.sources))], axis=1)

    def within(self, W: np.ndarray) -> np.ndarray:
        """Per row: each domain's weight within its source (0 where the source has weight 0)."""
        W = np.atleast_2d(np.asarray(W, dtype=float))
        tot = self.source_totals(W)[:, self.source_of]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(tot > 0, W / np.where(tot > 0, tot, 1.0), 0.0)

    # ------------------------------------------------------------------ the reduced (frozen) space
    def _columns(self) -> tuple[np.ndarray, int]:
        """Per domain: its reduced coordinate; and the number of reduced coordinates."""
        col = np.empty(self.k, dtype=int)
        r, seen = 0, {}
        for i, j in enumerate(self.source_of):
            if int(j) in self.frozen:
                if int(j) not in seen:
                    seen[int(j)] = r
                    r += 1
                col[i] = seen[int(j)]
            else:
                col[i] = r
                r += 1
        return col, r

    def expand_matrix(self) -> np.ndarray:
        """``A`` (k x r): ``w = A @ z`` spreads each frozen source's total over its topics."""
        col, r = self._columns()
        A = np.zeros((self.k, r))
        for i in range(self.k):
            j = int(self.source_of[i])
            A[i, col[i]] = self.frozen[j][i] if j in self.frozen else 1.0
        return A

    def reduce(self, W: np.ndarray) -> np.ndarray:
        """Reduced coordinates (frozen sources summed) of mixtures ``(m, k)`` or one ``(k,)``."""
        W = np.asarray(W, dtype=float)
        col, r = self._columns()
        S = np.zeros((self.k, r))
        S[np.arange(self.k), col] = 1.0
        return W @ S

    def expand(self, Z: np.ndarray) -> np.ndarray:
        """Full mixtures from reduced coordinates (each frozen source split by its frozen proportions)."""
        return np.asarray(Z, dtype=float) @ self.expand_matrix().T

    def reduced_caps(self, caps: Sequence[float] | np.ndarray | None) -> np.ndarray:
        """Caps in the reduced space: a frozen source's total may not push any of its topics over its cap."""
        c = check_caps(caps, self.k) if caps is not None else np.ones(self.k)
        col, r = self._columns()
        out = np.ones(r)
        for i in range(self.k):
            j = int(self.source_of[i])
            if j in self.frozen:
                q = self.frozen[j][i]
                if q > 0:
                    out[col[i]] = min(out[col[i]], c[i] / q)
            else:
                out[col[i]] = c[i]
        out = np.minimum(out, 1.0)
        if out.sum() < 1.0 - _TOL:
            raise ValueError(f"infeasible caps with the frozen topic weights: the reduced caps sum to {out.sum():.6g} "
                             "< 1 (a frozen source cannot take enough weight without exceeding a topic's cap)")
        return out

    def respects(self, w: np.ndarray, tol: float = 1e-9) -> bool:
        """Whether every frozen source of `w` has its frozen proportions."""
        w = np.asarray(w, dtype=float).ravel()
        return bool(np.allclose(self.expand(self.reduce(w)), w, atol=tol, rtol=0))

    def project(self, w: Sequence[float] | np.ndarray, caps: Sequence[float] | np.ndarray | None) -> np.ndarray:
        """A mixture close to `w` on the capped simplex that keeps the frozen proportions exactly."""
        w = np.clip(np.asarray(w, dtype=float).ravel(), 0.0, None)
        if not self.frozen:
            return project_to_caps(w, check_caps(caps, self.k))
        return self.expand(project_to_caps(self.reduce(w), self.reduced_caps(caps)))

    # ------------------------------------------------------------------ the two-level design
    def draw(self, centre: np.ndarray, m: int, rng: np.random.Generator, min_weight: float = 0.0) -> np.ndarray:
        """``m`` two-level Dirichlet draws around `centre` (rows that vanish are NaN).

        Sources: ``Dirichlet(P * s * n_sources)`` with ``P`` the centre's source totals and ``log s``
        uniform over `source_range`; sources below `min_weight` are zeroed and the row renormalised.
        Topics of an unfrozen source with several topics: ``Dirichlet(q * t * k_s)`` with ``q`` the
        centre's within-source proportions and ``log t`` uniform over that source's topic range; topics
        whose final weight is below `min_weight` are zeroed and the source's weight spread over the rest
        (its largest topic is kept if none reaches it). Frozen sources take their frozen proportions."""
        p0 = np.asarray(centre, dtype=float)
        p0 = p0 / p0.sum()
        n_src = len(self.sources)
        P = self.source_totals(p0)[0]
        lo, hi = self.source_range
        s = np.exp(rng.uniform(np.log(lo), np.log(hi), size=(m, 1)))
        G = rng.gamma(np.maximum(P * n_src, 1e-3)[None, :] * s)
        with np.errstate(invalid="ignore", divide="ignore"):
            S = G / G.sum(axis=1, keepdims=True)
            S = np.where(S < min_weight, 0.0, S)
            S = S / S.sum(axis=1, keepdims=True)
        W = np.zeros((m, self.k))
        q0 = self.within(p0)[0]
        for j in range(n_src):
            idx = self.members(j)
            if j in self.frozen:
                T = np.broadcast_to(self.frozen[j][idx], (m, idx.size))
            elif idx.size == 1:
                T = np.ones((m, 1))
            else:
                q = q0[idx] if q0[idx].sum() > 0 else np.full(idx.size, 1.0 / idx.size)
                tlo, thi = self.topic_range.get(j, self.source_range)
                t = np.exp(rng.uniform(np.log(tlo), np.log(thi), size=(m, 1)))
                g = rng.gamma(np.maximum(q * idx.size, 1e-3)[None, :] * t)
                with np.errstate(invalid="ignore", divide="ignore"):
                    T = g / g.sum(axis=1, keepdims=True)
                if min_weight > 0:
                    T = self._drop_small_topics(T, S[:, j], min_weight)
            W[:, idx] = S[:, [j]] * T
        return W

    @staticmethod
    def _drop_small_topics(T: np.ndarray, total: np.ndarray, min_weight: float) -> np.ndarray:
        small = (T * total[:, None]) < min_weight
        keep_top = np.zeros_like(small)
        keep_top[np.arange(len(T)), np.argmax(np.nan_to_num(T, nan=-1.0), axis=1)] = True
        small &= ~(small.all(axis=1, keepdims=True) & keep_top)
        T = np.where(small, 0.0, T)
        with np.errstate(invalid="ignore", divide="ignore"):
            return T / T.sum(axis=1, keepdims=True)


class ReducedModel:
    """A fitted regressor seen from the reduced space: ``predict(Z) = model.predict(expand(Z))``."""

    def __init__(self, model: Any, hierarchy: Hierarchy) -> None:
        self.model, self.h = model, hierarchy
        self.A = hierarchy.expand_matrix()
        for attr in ("choice_", "name"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))

    def predict(self, Z: np.ndarray) -> np.ndarray:
        return self.model.predict(np.asarray(Z, dtype=float) @ self.A.T)


def frozen_only(h: "Hierarchy | None") -> "Hierarchy | None":
    """`h` when it freezes some source (the proposers then work in the reduced space), else None."""
    return h if h is not None and h.frozen else None
