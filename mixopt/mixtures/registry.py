"""Registries of named components, filled where each component is defined.

A component registers itself next to its code (``@register_regressor("gp")`` above a class, a
``register_baseline(...)`` call next to a builder), so adding one is a change in one place; the config,
the fit step and the report read the names from the registry.

A :class:`Registry` knows its *catalogue*: the modules that register its entries.  They are imported on
the first lookup (plugin loading: the registry itself imports none of them, so a registering module
may import this one without a cycle), and the entries are listed in catalogue order (then in the order
a module registers them), whatever order the modules happened to be imported in.  An entry registered
from a module outside the catalogue is listed last.

This module also holds the regressor registry (:data:`REGRESSORS`, :func:`register_regressor`,
:func:`make_regressor`): the regressor modules import it to register, and
:mod:`mixopt.mixtures.cv` / :mod:`mixopt.mixtures.auto` to build by name.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, Sequence, TypeVar

E = TypeVar("E")


class Registry(Generic[E]):
    """Name -> entry (an object with a ``name``), loaded from a catalogue of modules.

    Parameters
    ----------
    kind:
        What is registered ("regressor", "proposer", "baseline"): used in messages.
    catalogue:
        Modules (or packages) that register entries, in listing order.
    """

    def __init__(self, kind: str, catalogue: Sequence[str]) -> None:
        self.kind = kind
        self.catalogue = tuple(catalogue)
        self._entries: dict[str, tuple[E, str, int]] = {}
        self._seq = 0
        self._loaded = False

    def add(self, entry: E, module: str) -> E:
        """Register `entry` (from `module`); a name registered from another module is a ``ValueError``."""
        name = entry.name  # type: ignore[attr-defined]
        old = self._entries.get(name)
        if old is not None and old[1] != module:
            raise ValueError(f"{self.kind} {name!r} is registered twice ({old[1]} and {module})")
        self._seq += 1
        self._entries[name] = (entry, module, old[2] if old else self._seq)  # re-registration (reload): same place
        return entry

    def load(self) -> None:
        """Import every catalogue module (once): after this, every built-in entry is registered."""
        if self._loaded:
            return
        for module in self.catalogue:
            importlib.import_module(module)  # a module being imported right now is returned as it is
        self._loaded = True

    def _rank(self, module: str) -> int:
        for i, m in enumerate(self.catalogue):
            if module == m or module.startswith(m + "."):
                return i
        return len(self.catalogue)

    def entries(self) -> list[E]:
        """Every entry, in catalogue order."""
        self.load()
        ordered = sorted(self._entries.values(), key=lambda t: (self._rank(t[1]), t[2]))
        return [entry for entry, _, _ in ordered]

    def names(self) -> list[str]:
        """Every registered name, in catalogue order."""
        return [e.name for e in self.entries()]  # type: ignore[attr-defined]

    def get(self, name: str) -> E:
        """The entry called `name`; ``ValueError`` listing the registered names otherwise."""
        self.load()
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}")
        return self._entries[name][0]

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[E]:
        return iter(self.entries())


# ---- regressors -------------------------------------------------------------------------------------

INPUTS: dict[str, str] = {
    "low_fidelity": "the cheaper proxies of `design.low_fidelity` (mixtures, target losses, fidelity level)",
    "repetition": "the budgets the proxies and the final run read each domain at (`mixtures/data_constrained.py`)",
}
"""Inputs beyond ``(X, y)`` a regressor may declare it `needs` (the fit step provides them)."""


@dataclass(frozen=True)
class RegressorEntry:
    """A registered regressor."""

    name: str
    factory: Callable[..., Any]
    """``factory(seed=..., **inputs, **options)`` -> a fresh, unfitted regressor."""
    needs: tuple[str, ...] = ()
    """Inputs beyond ``(X, y)`` (keys of :data:`INPUTS`); such a regressor is never an `auto` candidate."""
    candidate: bool = True
    """May be one of `auto`'s candidates (False for `auto` itself)."""
    default_candidate: bool = False
    """In `auto`'s default candidates (and the config's default `regressor.candidates`)."""
    summary: str = ""
    """One line for listings."""
    options: tuple[str, ...] = field(default=())
    """Keyword settings the factory accepts besides `seed` and the inputs (e.g. `auto`'s candidates)."""


REGRESSORS: Registry[RegressorEntry] = Registry("regressor", (
    "mixopt.mixtures.regressors", "mixopt.mixtures.mixing_law", "mixopt.mixtures.gp",
    "mixopt.mixtures.multifidelity", "mixopt.mixtures.auto", "mixopt.mixtures.data_constrained",
))
"""Every regressor; a module that defines new ones joins the catalogue."""


def register_regressor(name: str, *, needs: Sequence[str] = (), candidate: bool = True,
                       default_candidate: bool = False, summary: str = "", **settings: Any) -> Callable:
    """Decorator: register a class (or factory function) as regressor `name`.

    The class is built as ``cls(seed=seed, **settings, **inputs)``: `settings` fix constructor
    arguments (one class may be registered under several names with different settings), `needs` names
    the inputs beyond ``(X, y)`` it must be given (see :data:`INPUTS`).
    """
    unknown = sorted(set(needs) - set(INPUTS))
    if unknown:
        raise ValueError(f"regressor {name!r} needs unknown inputs {unknown}; known: {sorted(INPUTS)}")

    def decorate(obj: Any) -> Any:
        params = inspect.signature(obj).parameters
        options = tuple(p for p in params if p not in ("seed", "self", *needs, *settings)
                        and params[p].kind in (inspect.Parameter.KEYWORD_ONLY,
                                               inspect.Parameter.POSITIONAL_OR_KEYWORD))

        def factory(seed: int = 0, **kwargs: Any) -> Any:
            return obj(seed=seed, **settings, **kwargs)

        REGRESSORS.add(RegressorEntry(name, factory, tuple(needs), candidate and not needs, default_candidate,
                                      summary or _first_line(obj), options), obj.__module__)
        return obj

    return decorate


def _first_line(obj: Any) -> str:
    return (inspect.getdoc(obj) or "").strip().splitlines()[0] if inspect.getdoc(obj) else ""


def make_regressor(name: str, seed: int = 0, **kwargs: Any) -> Any:
    """A fresh, unfitted regressor by registered name; `kwargs`: the inputs it `needs` and its options.

    ``ValueError`` for an unknown name (listing the registered ones), a missing input, or an option the
    regressor does not take.
    """
    entry = REGRESSORS.get(name)
    missing = [k for k in entry.needs if k not in kwargs]
    if missing:
        raise ValueError(f"regressor {name!r} needs {', '.join(missing)} besides (X, y): "
                         + "; ".join(INPUTS[k] for k in missing))
    extra = sorted(set(kwargs) - set(entry.needs) - set(entry.options))
    if extra:
        raise ValueError(f"regressor {name!r} takes no {extra}")
    return entry.factory(seed=seed, **kwargs)


def plain_regressors() -> list[str]:
    """Names buildable from ``(X, y)`` alone (no extra inputs), in catalogue order."""
    return [e.name for e in REGRESSORS.entries() if not e.needs]


def candidate_regressors() -> list[str]:
    """Names that may be `auto` candidates."""
    return [e.name for e in REGRESSORS.entries() if e.candidate]


def default_candidates() -> tuple[str, ...]:
    """`auto`'s default candidates, in catalogue order."""
    return tuple(e.name for e in REGRESSORS.entries() if e.default_candidate)
