"""The baseline registry: name -> builder(ctx) -> weights, and the context a builder gets.

A built-in baseline is a mixture the final comparison pits the proposal against.  It is either

* static (``adaptive=False``): a fixed mixture, also trained as an anchor proxy (label
  ``anchor:<name>``, on the ladder, at the noise seeds) and in the pilot; or
* adaptive (``adaptive=True``): a run that adapts its mixture online (Aioli), trained in the final
  comparison only; its builder gives the mixture it starts from, its spec carries `final.aioli`.

``default=True`` puts it in the baselines compared when `final.baselines` is not given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from mixopt.mixtures.registry import Registry

if TYPE_CHECKING:  # numpy is not needed to list or validate names (the config imports this)
    import numpy as np


@dataclass(frozen=True)
class BaselineContext:
    """What a baseline builder may use, for one token budget."""

    domains: list[str]
    """Domain names, in the corpus' order."""
    train_tokens: np.ndarray
    """Training tokens per domain."""
    caps: np.ndarray | None
    """Per-domain weight caps at the budget in question (None: uncapped)."""
    target_weights: np.ndarray
    """Normalised weight of each domain's loss in the target."""
    proposal: np.ndarray | None = None
    """The proposed mixture, where there is one (the final comparison); None otherwise."""
    similarity: np.ndarray | None = None
    """The data-similarity prior's mixture (`mixopt.corpus.similarity`), uncapped; None where none is computed."""
    budget_tokens: float | None = None
    """The token budget the caps are for (a proxy's or the final run's), where known."""


Builder = Callable[[BaselineContext], Sequence[float]]


@dataclass(frozen=True)
class BaselineEntry:
    """A registered built-in baseline."""

    name: str
    build: Builder
    """``build(ctx)`` -> the mixture (for an adaptive baseline: the one it starts from)."""
    adaptive: bool = False
    """Adapts its mixture online (final comparison only) rather than a fixed mixture."""
    default: bool = False
    """Compared by default (when `final.baselines` is not given)."""
    summary: str = ""

    @property
    def static(self) -> bool:
        return not self.adaptive


BASELINES: Registry[BaselineEntry] = Registry("baseline", ("mixopt.mixtures.baselines",))
"""Every built-in baseline, in the order the package imports its modules."""


def register_baseline(name: str, *, adaptive: bool = False, default: bool = False, summary: str = "") -> Callable:
    """Decorator: register ``builder(ctx) -> weights`` as built-in baseline `name`."""
    def decorate(fn: Builder) -> Builder:
        BASELINES.add(BaselineEntry(name, fn, adaptive, default, summary), fn.__module__)
        return fn

    return decorate


def builtin_baselines() -> tuple[str, ...]:
    """Every built-in baseline's name."""
    return tuple(BASELINES.names())


def static_baselines() -> tuple[str, ...]:
    """The static built-ins (anchor proxies, pilot)."""
    return tuple(e.name for e in BASELINES.entries() if e.static)


def adaptive_baselines() -> tuple[str, ...]:
    """The adaptive built-ins (final comparison only)."""
    return tuple(e.name for e in BASELINES.entries() if e.adaptive)


def default_baselines() -> tuple[str, ...]:
    """The built-ins compared when `final.baselines` is not given."""
    return tuple(e.name for e in BASELINES.entries() if e.default)


def build_baseline(name: str, ctx: BaselineContext) -> list[float]:
    """The mixture of built-in baseline `name` in `ctx`, as plain floats."""
    return [float(w) for w in BASELINES.get(name).build(ctx)]
