"""`natural`: the token-proportional mixture (the corpus as it is), projected onto the caps."""

from __future__ import annotations

from mixopt.mixtures.baselines.base import BaselineContext, register_baseline


@register_baseline("natural", default=True, summary="token-proportional, within the caps")
def natural(ctx: BaselineContext) -> list[float]:
    from mixopt.mixtures.design import natural_mixture

    return [float(w) for w in natural_mixture(ctx.train_tokens, ctx.caps)]
