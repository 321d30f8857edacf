"""The Aioli baselines (Chen et al., 2024), adaptive: they re-estimate the mixing law from the run's
own trajectory and update the mixture online (final comparison only; their specs carry `final.aioli`).

* `aioli` starts from the uniform mixture within the caps;
* `aioli_restricted` starts from the proposal (Aioli's restricted mode: the trainer trains the first
  `final.aioli.restricted_fraction` of the steps on it, then adapts).
"""

from __future__ import annotations

from mixopt.mixtures.baselines.base import BaselineContext, register_baseline


@register_baseline("aioli", adaptive=True, summary="Aioli from the uniform mixture")
def aioli(ctx: BaselineContext) -> list[float]:
    from mixopt.mixtures.design import stratified_mixture

    return [float(w) for w in stratified_mixture(len(ctx.domains), ctx.caps)]


@register_baseline("aioli_restricted", adaptive=True, summary="Aioli starting from the proposal")
def aioli_restricted(ctx: BaselineContext) -> list[float]:
    if ctx.proposal is None:
        raise ValueError("baseline 'aioli_restricted' starts from the proposal, and there is none here")
    return [float(w) for w in ctx.proposal]
