"""`stratified`: the uniform mixture over the domains, projected onto the caps."""

from __future__ import annotations

from mixopt.mixtures.baselines.base import BaselineContext, register_baseline


@register_baseline("stratified", default=True, summary="uniform over the domains, within the caps")
def stratified(ctx: BaselineContext) -> list[float]:
    from mixopt.mixtures.design import stratified_mixture

    return [float(w) for w in stratified_mixture(len(ctx.domains), ctx.caps)]
