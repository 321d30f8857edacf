"""How the search is made: the proxy swarm, the regressors and the proposer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mixopt.config.base import TrainConfig, _Strict, check_registered


def _default_candidates() -> list[str]:
    from mixopt.mixtures.registry import default_candidates

    return list(default_candidates())


class SwarmConfig(TrainConfig):
    """The swarm of proxy models, one per sampled mixture. The defaults train each proxy with the
    final run's context, batch and learning rate for about as many steps, so a proxy sees data the
    way the final model will (proxies far shorter than the final rank mixtures differently)."""

    tokens: int = Field(150_000, gt=0)
    """Training tokens per proxy (steps = tokens / (batch_size * seq_len), rounded up)."""
    seq_len: int = Field(64, ge=8, le=8192)
    """Context length in tokens."""
    batch_size: int = Field(8, ge=1)
    """Sequences per optimizer step (small: tiny proxies learn more from more steps)."""
    lr: float = Field(1e-3, gt=0, lt=1)
    """Peak learning rate (AdamW, linear warm-up then cosine decay to 10%). At 3e-3 the demo's proxies
    landed 0.19 nats apart across seeds; at 1e-3, 0.03 (and lower)."""
    eval_batches: int = Field(16, ge=1)
    """Held-out batches per domain when measuring validation loss (the same windows for every run)."""

    n_proxies: int = Field(20, ge=2)
    """Number of proxy runs (mixtures) in the swarm."""
    seed: int = 0
    """Seed for the design and every proxy's data stream and initialisation."""
    curve_proxies: int = Field(0, ge=0)
    """The first this many design proxies also measure a held-out curve (every domain's held-out loss at
    `final.curve_points` token counts, as the final runs do); 0: none. Not part of any id."""


class RegressorConfig(_Strict):
    """Regressors from mixture to target loss, judged by k-fold cross-validation on the proxies."""

    kind: str = "auto"
    """A registered regressor (`mixopt report` lists them; an unknown name is refused with the list).
    `auto` picks or averages the candidates by k-fold CV on the target-size proxies (an ensemble when it
    raises the out-of-fold Spearman rho); otherwise only this regressor. `gp_multi_fidelity`
    (needs `design.low_fidelity`): a GP over mixture and size fitted on both sizes, predicting at the
    target size (with `auto` and a second size it is cross-validated too, and chosen when its
    out-of-fold Spearman rho on the target-size proxies beats auto's)."""
    candidates: list[str] = Field(default_factory=_default_candidates, min_length=1)
    """Regressors that `auto` chooses from (each is also cross-validated and reported): registered ones
    that need nothing but the proxies (default: those registered as default candidates)."""
    cv_folds: int = Field(5, ge=2)
    """Folds of the cross-validation (at most the number of finished proxies)."""
    cv_repeats: int = Field(2, ge=1, le=50)
    """Shuffles of the k folds (seeded from `swarm.seed`); scores are means over them, with their sd."""

    @field_validator("kind")
    @classmethod
    def _registered_kind(cls, v: str) -> str:
        from mixopt.mixtures.registry import REGRESSORS

        return check_registered("regressor", v, REGRESSORS.names())

    @field_validator("candidates")
    @classmethod
    def _registered_candidates(cls, v: list[str]) -> list[str]:
        from mixopt.mixtures.registry import candidate_regressors

        names = candidate_regressors()
        for name in v:
            check_registered("candidate regressor", name, names)
        return v


class ProposerConfig(_Strict):
    """How the proposed mixture is chosen from the fitted regressor."""

    kind: str = "regmix"
    """A registered proposer (`mixopt report` lists them). `regmix`: simulate many Dirichlet samples,
    average the top-k; `exact`: minimise the fitted mixing law + lambda*KL to the prior; `best_seen`: the
    best mixture actually trained; `bagged`: the mean of the bootstrap proposals (regmix on refits to
    resampled proxies), within the caps."""
    n_samples: int = Field(50_000, ge=1000)
    """Candidate mixtures drawn by the RegMix simulation."""
    top_k: int = Field(100, ge=1)
    """The proposal is the mean of the top-k predicted candidates."""
    final_max_epochs: float = Field(4.0, gt=0)
    """Cap: the final run may read each domain at most this many times at its token budget (`final.tokens`)."""
    kl_weight: float = Field(0.0, ge=0)
    """lambda of the KL(mixture || prior) penalty in the exact proposer."""
    scale_aware: bool = True
    """With a ladder: optimise the scale-aware law's prediction at the final run's parameters and
    tokens (false: the proxies' own loss, as a single-scale regressor sees it)."""
    hedge_kappa: float = Field(0.5, ge=0)
    """The hedge: on the path from the best anchor (as the law predicts it at the final scale) to the
    optimum, take the point maximising predicted gain - hedge_kappa x its sd (bootstrap and the law's
    measured transfer error). 0: no hedge (the raw optimum, always reported as a diagnostic). 0.5 measured
    best: on planted optima with the default `auto` regressor (+0.0135 nats, 0 lost where nothing could be
    gained; `benchmarks/hedge_sim.md`), and on the demo's question, where kappa 1 stayed at an anchor that
    the raw optimum beat by 0.072 nats over 5 paired seeds (`benchmarks/transfer.md`)."""
    bootstrap: int = Field(100, ge=0)
    """Bootstrap refits for the proposal's stability (and the hedge's uncertainty); 0: off."""
    bootstrap_samples: int = Field(2_000, ge=500)
    """Candidate mixtures screened per bootstrap proposal (see `bootstrap_search`)."""
    bootstrap_search: Literal["pool", "sample"] = "pool"
    """`pool`: each bootstrap optimum searches the main optimum's `n_samples` candidates, screening
    `bootstrap_samples` and refining by nearest neighbours (the main optimum's resolution, so stability
    measures the data, not the search); `sample`: a fresh draw of `bootstrap_samples` candidates."""
    scale_gate: bool = True
    """Use the scale-aware law only when, on this swarm, it beats the chosen regressor alone at
    leave-largest-scale-out (regret@1, then Spearman); the decision is in the proposal's details."""
    hedge_transfer: bool = True
    """Add the law's measured transfer variance (from the leave-largest-scale-out residuals of the gain)
    to the hedge's bootstrap variance."""
    unstable_tv: float = Field(0.15, gt=0, le=1)
    """Warn when the mean total-variation distance between bootstrap proposals and the proposal exceeds this."""

    @field_validator("kind")
    @classmethod
    def _registered_kind(cls, v: str) -> str:
        from mixopt.mixtures.proposers import PROPOSERS

        return check_registered("proposer", v, PROPOSERS.names())
