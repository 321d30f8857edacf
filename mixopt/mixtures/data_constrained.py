"""A law that knows about repetition: any regressor on repetition-discounted mixtures.

The proxies and the final run read a small domain a different number of times; a regressor on plain
weights cannot tell a fresh token from a repeated one. `DataConstrained` wraps a base regressor (by
default `auto`) and feeds it each mixture's *effective shares* (`mixtures.repetition.effective_shares`:
the weights with repeated tokens counted at their data-constrained value, Muennighoff et al. 2023's
`R*` ≈ 15.4), computed at the budget in question: the proxies' own (their tokens over what they drew
from, whole shards or matched subsamples) when it is fitted and cross-validated, the final run's once
`at_final()` is called (the fit step does so before proposing). On repetition-matched proxies both are
the same and it is its base regressor; on plain ones it discounts, at the final budget, the domains the
final run repeats. Registered as `data_constrained` (`needs=("repetition",)`: the fit step gives it a
:class:`RepetitionData` when `regressor.kind` names it).

Pure numpy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mixopt.mixtures.registry import register_regressor
from mixopt.mixtures.repetition import R_STAR, effective_shares


@dataclass(frozen=True)
class RepetitionData:
    """The `repetition` input: the budgets at which the rows were read and at which to predict."""

    proxy_tokens: float
    """Tokens of a target-size proxy (the rows' budget)."""
    proxy_pool: np.ndarray
    """Per domain, the tokens a proxy drew from (the shard, or its matched subsample)."""
    final_tokens: float
    """The final run's budget."""
    train_tokens: np.ndarray
    """Per domain, the final run's pool: the whole training shard."""
    base: Callable[[], Any]
    """A factory of the base regressor (fresh, unfitted)."""
    r_star: float = R_STAR


class DataConstrained:
    """A base regressor on effective shares; predicts at the proxies' budget until `at_final()`."""

    name = "data_constrained"

    def __init__(self, repetition: RepetitionData, seed: int = 0) -> None:
        self.rep = repetition
        self.seed = seed
        self.final = False
        self.base_: Any = None

    def shares(self, X: np.ndarray, final: bool) -> np.ndarray:
        r = self.rep
        tokens, pool = (r.final_tokens, r.train_tokens) if final else (r.proxy_tokens, r.proxy_pool)
        return effective_shares(X, tokens, pool, r.r_star)

    def fit(self, X: np.ndarray, y: np.ndarray) -> DataConstrained:
        self.base_ = self.rep.base().fit(self.shares(X, final=False), y)
        return self

    def at_final(self) -> DataConstrained:
        """From now on predict at the final run's budget (the proposal's question)."""
        self.final = True
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.base_ is None:
            raise RuntimeError("DataConstrained is not fitted")
        return self.base_.predict(self.shares(np.atleast_2d(X), self.final))

    @property
    def weights_(self) -> dict:  # auto's ensemble weights, when the base is `auto` (shown with the proposal)
        return dict(getattr(self.base_, "weights_", {}) or {})


@register_regressor("data_constrained", needs=("repetition",),
                    summary="auto on repetition-discounted mixtures (data-constrained), predicting at the final budget")
def _data_constrained(repetition: RepetitionData, seed: int = 0) -> DataConstrained:
    return DataConstrained(repetition, seed=seed)
