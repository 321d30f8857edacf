"""Built-in baselines of the final comparison, one module per baseline (or family).

Each module registers its builders with :func:`register_baseline` (see :mod:`.base`). This package
imports every module named in :data:`MODULES`, in that order, which is the registry's order (static
defaults first: their order is the order of the anchor proxies and of the final runs). Adding a
built-in baseline is a new module here, its name in :data:`MODULES`, and its test.
"""

import importlib

from mixopt.mixtures.baselines.base import (
    BASELINES,
    BaselineContext,
    BaselineEntry,
    adaptive_baselines,
    build_baseline,
    builtin_baselines,
    default_baselines,
    register_baseline,
    static_baselines,
)

MODULES = ("natural", "stratified", "aioli", "unimax", "similarity")
"""The modules of this package that register baselines, imported in this order."""

for _module in MODULES:
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["BASELINES", "MODULES", "BaselineContext", "BaselineEntry", "adaptive_baselines", "build_baseline",
           "builtin_baselines", "default_baselines", "register_baseline", "static_baselines"]
