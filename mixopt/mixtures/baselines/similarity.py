"""`similarity`: the zero-proxy prior as a mixture, computed from the data before any training
(`mixopt.corpus.similarity`): the mixture whose hashed-n-gram distribution best explains the
target's held-out text (lowest cross-entropy), projected onto the caps. The mixture a careful
reader of the data would derive without training anything; the swarm has to beat it."""

from __future__ import annotations

from mixopt.mixtures.baselines.base import BaselineContext, register_baseline


@register_baseline("similarity", summary="the data-similarity prior (hashed n-grams of the target text), within caps")
def similarity(ctx: BaselineContext) -> list[float]:
    from mixopt.mixtures.design import project_to_caps

    if ctx.similarity is None:
        raise ValueError("the similarity baseline needs the experiment's similarity prior (none was computed)")
    w = ctx.similarity if ctx.caps is None else project_to_caps(ctx.similarity, ctx.caps)
    return [float(x) for x in w]
