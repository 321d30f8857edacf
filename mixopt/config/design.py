"""The design section of the config: how mixtures are sampled, the anchors and the scale ladder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_serializer, model_validator

from mixopt.config.base import _NAME, ModelConfig, _Strict, reserved_labels

if TYPE_CHECKING:
    from mixopt.mixtures.hierarchy import Hierarchy


class ProxySizeConfig(_Strict):
    """A second, cheaper proxy size: a smaller model and/or fewer tokens than `swarm` (the target size)."""

    model: ModelConfig | None = None
    """Model shape of the cheap proxies (null: the swarm's model)."""
    tokens: int | None = Field(None, gt=0)
    """Training tokens of each cheap proxy (null: the swarm's `tokens`)."""


class LadderScale(_Strict):
    """One rung of the scale ladder: a cheaper proxy than the swarm's (fewer tokens and/or a smaller model)."""

    tokens_fraction: float = Field(1.0, gt=0, le=1)
    """Training tokens of this rung as a fraction of `swarm.tokens`."""
    model: ModelConfig | None = None
    """Model shape of this rung (null: the swarm's model)."""


class LadderConfig(_Strict):
    """The scale ladder: a few mixtures (and the anchors) also trained at cheaper scales, so a law can
    learn how each mixture's target moves with compute and predict it at the final run's scale."""

    scales: list[LadderScale] = Field(
        default_factory=lambda: [LadderScale(tokens_fraction=0.25), LadderScale(tokens_fraction=0.5)], min_length=2)
    """The cheaper rungs (at least 2; with the swarm's own size that makes >= 3 scales, cheapest first)."""
    mixtures: int = Field(4, ge=3)
    """The first this-many design mixtures are trained at every rung (the anchors always are)."""


class SourceConfig(_Strict):
    """One source of `source:topic` domains: its own topic sweep, and/or its topic weights frozen."""

    concentration_min: float | None = Field(None, gt=0)
    """Smallest concentration of the Dirichlet over this source's topics (null: `topic_concentration_min`)."""
    concentration_max: float | None = Field(None, gt=0)
    """Largest concentration of the Dirichlet over this source's topics (null: `topic_concentration_max`)."""
    frozen: dict[str, float] | None = None
    """Freeze this source's topic mix: topic (`news` or `web:news`) -> weight within the source (omitted
    topics get 0; normalised). Every design mixture and every proposal then keeps these proportions,
    e.g. to reuse the topic mix an earlier search chose (olmix's mixture reuse). Null: searched."""


class HierarchyConfig(_Strict):
    """The two-level design of `source:topic` domains: a Dirichlet over the sources, then one over the
    topics of each source, each level with its own concentration sweep (both default to the design's)."""

    source_concentration_min: float | None = Field(None, gt=0)
    """Smallest concentration of the Dirichlet over sources (null: `design.concentration_min`)."""
    source_concentration_max: float | None = Field(None, gt=0)
    """Largest concentration of the Dirichlet over sources (null: `design.concentration_max`)."""
    topic_concentration_min: float | None = Field(None, gt=0)
    """Smallest concentration of the Dirichlet over a source's topics (null: `design.concentration_min`)."""
    topic_concentration_max: float | None = Field(None, gt=0)
    """Largest concentration of the Dirichlet over a source's topics (null: `design.concentration_max`)."""
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    """Per source (the part before `:`): its own topic sweep and/or frozen topic weights."""


class DesignConfig(_Strict):
    """How mixtures are sampled around the token prior (RegMix style)."""

    concentration_min: float = Field(0.1, gt=0)
    """Smallest Dirichlet concentration multiplier of the sweep (spiky mixtures)."""
    concentration_max: float = Field(5.0, gt=0)
    """Largest Dirichlet concentration multiplier of the sweep (close to the prior)."""
    proxy_max_epochs: float = Field(4.0, gt=0)
    """Cap: a proxy may read each domain's training tokens at most this many times (at `swarm.tokens`;
    with `match_repetition`, the times the final run would read it on the same mixture)."""
    match_repetition: bool = False
    """Repetition-matched proxies: each proxy draws each domain from a fixed, evenly spaced subsample of
    its training tokens, `tokens / final.tokens` of the shard (at least one window), so that it reads every
    domain as many times as the final run will on the same mixture; a small domain that the final run
    repeats is then repeated in the proxies too. Part of every proxy's id (and the experiment's, with
    `final.tokens`). `mixtures/repetition.py`; measured in benchmarks/repetition.md."""
    min_weight: float = Field(0.005, ge=0, lt=0.5)
    """Weights below this are set to zero and the mixture renormalised."""
    method: Literal["dirichlet", "sequential"] = "dirichlet"
    """`dirichlet`: all proxies sampled at once (RegMix); `sequential`: `initial` sampled proxies,
    then rounds of `round_size` chosen by an acquisition over a GP's posterior (trained round by round)."""
    initial: int = Field(16, ge=2)
    """Sequential design: proxies in the space-filling first batch."""
    round_size: int = Field(8, ge=1)
    """Sequential design: proxies chosen per round (the GP is refitted after every round)."""
    acquisition: Literal["thompson", "qei", "ucb"] = "thompson"
    """Sequential design: batch Thompson sampling, q-expected improvement (kriging believer) or UCB."""
    low_fidelity: ProxySizeConfig | None = None
    """A second, cheaper proxy size (multi-fidelity). With `method: sequential` each round chooses the
    mixture and the size (information about the target size per unit of cost, cost = FLOPs =
    6 x params x tokens); with `dirichlet` only the transfer mixtures train at it. Fits and the
    proposal are for the swarm's size. Null: one size."""
    transfer_mixtures: int = Field(4, ge=0)
    """Scale-transfer check (with `low_fidelity`): the first this-many design mixtures are also trained
    at the other size (label `transfer`); the report gives the rank correlation between the sizes."""
    transfer_min_rho: float = Field(0.5, ge=-1, le=1)
    """The report warns when that Spearman rank correlation is below this (the ranks do not transfer)."""
    noise_mixtures: int = Field(0, ge=0)
    """Noise floor: the first this-many target-size design mixtures are retrained with `noise_seeds`
    more seeds (label `seed_repeat`); the report gives the pooled seed-to-seed sd of the target. 0: off
    (the default: the anchors' seed repeats already measure it)."""
    noise_seeds: int = Field(2, ge=1, le=100)
    """Extra seeds per noise-floor mixture and per anchor (each then has 1 + noise_seeds runs)."""
    target_fraction: float = Field(0.25, ge=0, le=1)
    """Share of the design drawn around the target's own domain weights (the part of the simplex the
    target makes interesting) instead of around the token prior. 0: all around the prior."""
    anchors: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Mixtures you would otherwise pick by hand, by name -> {domain: weight} (omitted domains get 0;
    weights sum to 1). They, natural and stratified are trained as proxies at 1 + `noise_seeds` seeds
    (label `anchor:<name>`), on the ladder, and (unless `final.baselines` is given without them) as
    baselines of the final comparison."""
    anchor_proxies: bool = True
    """Train the anchors as proxies (at 1 + `noise_seeds` seeds, and on the ladder): their losses feed
    the fits, the noise floor and the report's proxy-scale comparison."""
    ladder: LadderConfig | None = Field(default_factory=LadderConfig)
    """The scale ladder behind the scale-aware law (null: one proxy scale; the proposal then optimises
    the proxies' own loss)."""

    hierarchy: HierarchyConfig | None = None
    """Hierarchical domains (`source:topic` names): per-level concentration sweeps and frozen topic
    weights. Null: with `source:topic` names the design is still two-level, both levels sweeping
    `concentration_min`..`concentration_max`; with flat names it is the flat design."""

    reuse: str | None = Field(None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", max_length=128)
    """Mixture reuse: the id of an earlier experiment in the same warehouse (this DuckDB file, or the
    shared PostgreSQL store). The domains unchanged since it (same content checksum and tokenizer, whatever
    their names; `mixopt diff`) keep its latest proposal's proportions as one frozen composite: the design
    and the proposal search only the composite's total weight and the added or changed domains, with
    `reuse_proxies` design proxies; proposals and final runs cover every domain. The proposal's details
    record the lineage (`reused_from`). Needs a final-scale proposer (`regmix`, `bagged`) and no
    `low_fidelity` nor frozen topics (`hierarchy.sources.*.frozen`); topic-level sweeps do not apply (each
    added or changed domain is searched on its own). Null: a full search (the default)."""
    reuse_proxies: int | None = Field(None, ge=2)
    """With `reuse`: design proxies of the reduced search (null: as many per searched coordinate as the full
    design, `ceil(swarm.n_proxies x (free domains + 1) / domains)`, at least 4). Part of the experiment's
    identity when set."""

    @model_serializer(mode="wrap")
    def _drop_unset_reuse(self, handler):  # noqa: ANN001, ANN202 - pydantic's serializer protocol
        """Leave `reuse` and `reuse_proxies` out of dumps while unset: experiment ids, run ids and the
        config hash stay as they were before mixture reuse existed."""
        data = handler(self)
        if isinstance(data, dict):
            for key in ("reuse", "reuse_proxies"):
                if key in data and data[key] is None:
                    del data[key]
        return data

    @model_validator(mode="after")
    def _check(self) -> "DesignConfig":
        _check_reuse(self)
        if self.concentration_min > self.concentration_max:
            raise ValueError("concentration_min must be <= concentration_max")
        for where, lo, hi in level_sweeps(self):
            if lo > hi:
                raise ValueError(f"design.hierarchy.{where}: concentration min {lo} > max {hi}")
        reserved = reserved_labels()
        for name, w in self.anchors.items():
            if not _NAME.fullmatch(name) or name in reserved:
                raise ValueError(f"design.anchors: bad anchor name {name!r} (letters, digits, `_ . -`; not one of "
                                 f"{sorted(reserved)})")
            bad = {k: v for k, v in w.items() if not v >= 0}
            if bad or not w:
                raise ValueError(f"design.anchors.{name}: weights must be >= 0 and not empty, got {w}")
            if abs(sum(w.values()) - 1.0) > 1e-3:
                raise ValueError(f"design.anchors.{name}: weights sum to {sum(w.values()):.4g}, not 1")
        if self.low_fidelity is not None:
            if self.method == "sequential" and self.acquisition != "thompson":
                raise ValueError(f"design.low_fidelity needs design.acquisition 'thompson' (the multi-fidelity "
                                 f"acquisition), got {self.acquisition!r}")
            if self.transfer_mixtures < 3:
                raise ValueError(f"design.transfer_mixtures must be at least 3 with design.low_fidelity (the rank "
                                 f"correlation and the multi-fidelity GP need mixtures at both sizes), "
                                 f"got {self.transfer_mixtures}")
        return self


def _check_reuse(d: DesignConfig) -> None:
    """`design.reuse` and what it cannot be combined with (``ValueError`` naming the fields)."""
    if d.reuse is None:
        if d.reuse_proxies is not None:
            raise ValueError("design.reuse_proxies is set but design.reuse is not (the experiment to reuse)")
        return
    if d.low_fidelity is not None:
        raise ValueError("design.reuse cannot be combined with design.low_fidelity (the multi-fidelity "
                         "rounds search the full space); unset one of them")
    if d.hierarchy is not None and any(src.frozen is not None for src in d.hierarchy.sources.values()):
        raise ValueError("design.reuse cannot be combined with frozen topics (design.hierarchy.sources.*.frozen): "
                         "the reused composite already freezes the unchanged domains' proportions")


def level_sweeps(d: DesignConfig) -> list[tuple[str, float, float]]:
    """(where, min, max) of every concentration sweep of the hierarchy, defaults filled in."""
    h = d.hierarchy
    if h is None:
        return []

    def pick(v: float | None, default: float) -> float:
        return default if v is None else v
    topic = (pick(h.topic_concentration_min, d.concentration_min), pick(h.topic_concentration_max, d.concentration_max))
    out = [("source_concentration", pick(h.source_concentration_min, d.concentration_min),
            pick(h.source_concentration_max, d.concentration_max)), ("topic_concentration", *topic)]
    out += [(f"sources.{name}", pick(s.concentration_min, topic[0]), pick(s.concentration_max, topic[1]))
            for name, s in h.sources.items()]
    return out


def design_hierarchy(d: DesignConfig, names: list[str]) -> "Hierarchy | None":
    """The hierarchy of the design over the domains `names` (None: flat names and no `design.hierarchy`,
    the flat design). ``ValueError`` naming the field for a malformed name or an unknown source/topic."""
    from mixopt.mixtures.hierarchy import Hierarchy, check_domain_names, is_hierarchical

    check_domain_names(names)
    if d.hierarchy is None and not is_hierarchical(names):
        return None
    sweeps = {where: (lo, hi) for where, lo, hi in level_sweeps(d)}
    src = sweeps.get("source_concentration", (d.concentration_min, d.concentration_max))
    topic = sweeps.get("topic_concentration", (d.concentration_min, d.concentration_max))
    sources = d.hierarchy.sources if d.hierarchy is not None else {}
    per_source = {name: sweeps[f"sources.{name}"] for name in sources}
    frozen = {name: s.frozen for name, s in sources.items() if s.frozen is not None}
    return Hierarchy.from_names(names, src, topic, per_source, frozen)
