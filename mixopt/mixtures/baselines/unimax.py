"""`unimax`: UniMax (Chung et al., 2023), the token-count heuristic: the budget spread uniformly over
the domains, each domain's share capped so that it is read at most `UNIMAX_EPOCHS` times; what a
capped domain cannot take goes uniformly to the others (water-filling). In the UtiliMax study of
nine baselines it beat both hand-made and learned mixtures, so a search has to beat it too.

With the budget's own epoch caps looser than `UNIMAX_EPOCHS` epochs it can equal `stratified`; runs
of equal mixtures are trained once and shared."""

from __future__ import annotations

from mixopt.mixtures.baselines.base import BaselineContext, register_baseline

UNIMAX_EPOCHS = 1.0
"""UniMax's max-epoch parameter N: 1, so no domain is read twice at the budget."""


@register_baseline("unimax", summary=f"uniform over the domains, each read at most {UNIMAX_EPOCHS:g} epoch(s) (UniMax)")
def unimax(ctx: BaselineContext) -> list[float]:
    import numpy as np

    from mixopt.mixtures.design import stratified_mixture

    k = len(ctx.domains)
    caps = None if ctx.caps is None else np.asarray(ctx.caps, dtype=float)
    if ctx.budget_tokens:
        own = np.asarray(ctx.train_tokens, dtype=float) * UNIMAX_EPOCHS / float(ctx.budget_tokens)
        caps = own if caps is None else np.minimum(caps, own)
        if caps.sum() < 1.0:  # the data cannot fill the budget at N epochs: the budget's own caps decide
            caps = None if ctx.caps is None else np.asarray(ctx.caps, dtype=float)
    return [float(w) for w in stratified_mixture(k, caps)]
