"""The final section of the config: the full-scale comparison, its pilot and the Aioli baselines."""

from __future__ import annotations

from pydantic import Field, model_validator

from mixopt.config.base import ModelConfig, TrainConfig, _Strict


class AioliConfig(_Strict):
    """Aioli (Chen et al., 2024): re-estimate the mixing law from the run's own trajectory and
    update the proportions online. Published defaults for 2-7 domains: lp_rounds 2-4, lp_steps 4-10,
    one_hot_factor 0.5-0.75, eta 0.1-1, update_steps 200-250 (scaled down here for short runs)."""

    update_steps: int = Field(80, ge=2)
    """Steps per round; each round starts with LearnParams, then trains on the updated mixture."""
    lp_rounds: int = Field(2, ge=1)
    """Random orders over the domains visited by LearnParams in each round."""
    lp_steps: int = Field(2, ge=1)
    """Optimizer steps (counted as training) per visited domain in LearnParams (published 4-10; a
    round costs lp_rounds * k * lp_steps steps, so short runs need fewer)."""
    one_hot_factor: float = Field(0.75, gt=0, le=1)
    """Weight on the visited domain in LearnParams' smoothed one-hot mixture; the rest is spread evenly."""
    eta: float = Field(1.0, gt=0)
    """Step size of the exponentiated-gradient update p <- p * exp(eta * sum_i A_ij)."""
    ema: float | None = Field(None, gt=0, lt=1)
    """If set, keep an EMA of A with this decay and compute p from uniform (instead of from p_prev)."""
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    """Unrestricted mode: train this first fraction of the steps on the starting mixture before the
    first LearnParams (LearnParams during the LR warm-up was measured to hurt short runs)."""
    restricted_fraction: float = Field(0.5, gt=0, lt=1)
    """Restricted mode: the first fraction of the steps trains on the proposal, then Aioli takes over."""
    eval_batches: int = Field(2, ge=1)
    """Held-out batches per domain for Aioli's loss measurements (kept small: they are frequent)."""


class PilotConfig(_Strict):
    """A cheaper rehearsal of the final comparison: proposal and baselines at a fraction of the final tokens."""

    enabled: bool = True
    """Run the pilot before the final runs."""
    tokens_fraction: float = Field(0.25, gt=0, lt=1)
    """Pilot tokens as a fraction of `final.tokens` (below 1: a pilot is smaller than the final)."""
    seeds: list[int] = Field(default_factory=lambda: [100, 101], min_length=2)
    """Seeds of the pilot (at least 2, so its verdict is paired), disjoint from `final.seeds`: selecting on
    the pilot then cannot bias the final comparison. Its paired differences measure the noise the final
    seeds are planned from (`final.max_seeds`)."""
    require_win: bool = False
    """If the proposal does worse than a baseline at the pilot (mean paired difference > 0), train the
    baseline that did best at the pilot as the final's `proposed` mixture instead, and say so."""


class FinalConfig(TrainConfig):
    """The full-scale run on the proposal, and the baselines it is compared with."""

    model: ModelConfig = Field(default_factory=lambda: ModelConfig(n_layer=3, n_embd=96, n_head=4))
    """Model shape of the final run (default 3.3x the proxy's non-embedding parameters)."""
    tokens: int = Field(200_000, gt=0)
    """Training tokens of each final run (default 1.33x the proxy's; 3.5x its compute)."""
    seq_len: int = Field(64, ge=8, le=8192)
    """Context length in tokens."""
    batch_size: int = Field(8, ge=1)
    """Sequences per optimizer step."""
    lr: float = Field(1e-3, gt=0, lt=1)
    """Peak learning rate (the demo's final runs: 5.68 ± 0.006 over 3 seeds at 1e-3, 5.89 ± 0.12 at 3e-3)."""
    eval_batches: int = Field(32, ge=0)
    """Held-out batches per domain and eval set (32 x 8 x 64 = 16k tokens per domain; the same windows for
    every run). 0: score the whole held-out sets, every token predicted once in windows `seq_len` apart;
    this removes the window-sampling error every seed shares (sd 0.009 nats on the demo's paired
    difference, `benchmarks/noise.md`) at about 30 s of one CPU thread per run on the demo's target."""
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    """Seeds; every mixture is trained once per seed (the verdict pairs them; with one seed it calls nothing)."""
    max_seeds: int = Field(0, ge=0)
    """0: exactly `seeds`. Above their number: a power plan (the paired sd measured by the pilot, else
    bounded from the anchors' seed repeats, and the law's predicted gain) sets how many seeds detect that
    gain with `power`, up to this many; seeds are added in planned looks and every baseline is judged
    by a group-sequential test (O'Brien-Fleming alpha spending) that stays valid when seeds are added
    after looking. A comparison decided at a look stops needing seeds; the rest go on."""
    power: float = Field(0.8, gt=0.5, lt=1)
    """The power the seed plan aims for (one-sided alpha 0.025, the 95% interval's)."""
    baselines: list[str] | None = None
    """Runs compared with the proposal at the same budget and seeds: token-proportional (natural),
    uniform (stratified), Aioli from uniform (aioli), Aioli starting from the proposal (aioli_restricted),
    or the name of a `design.anchors` mixture. Null: natural, stratified and every anchor."""
    pilot: PilotConfig = Field(default_factory=PilotConfig)
    """The pilot before the final runs."""
    aioli: AioliConfig = Field(default_factory=AioliConfig)
    """Settings of the Aioli runs (used when `baselines` lists aioli or aioli_restricted)."""
    enabled: bool = True
    """Set false to stop after the proposal."""
    curve_points: int = Field(12, ge=0, le=200)
    """Held-out evaluations during each final run, evenly spaced in tokens (the report's held-out curves
    and paired differences against tokens); 0 turns them off. Not part of a run's identity."""
    curve_eval_batches: int = Field(2, ge=1)
    """Held-out batches per domain at each curve point: a fixed subset, evenly spread, of the final
    evaluation's windows (the same for every run), kept small so the curve costs little."""
    interaction_points: int = Field(3, ge=0)
    """The last this many curve points of the `proposed` final runs also measure the cosines between
    per-domain held-out gradients (the report's gradient interaction matrix); 0 turns them off."""
    @model_validator(mode="after")
    def _check_seeds(self) -> "FinalConfig":
        if self.pilot.enabled and set(self.pilot.seeds) & set(self.seeds):
            raise ValueError(f"final.pilot.seeds {sorted(set(self.pilot.seeds) & set(self.seeds))} are also "
                             "final.seeds: the pilot's seeds must differ, or choosing on it biases the final")
        if 0 < self.max_seeds < len(self.seeds):
            raise ValueError(f"final.max_seeds ({self.max_seeds}) is below the {len(self.seeds)} final.seeds")
        return self

    devices: int = Field(1, ge=1)
    """Devices (GPUs, or CPU processes) per final run; above 1 the run trains with Lightning's DDP in
    its own process, which starts one process per device. The token budget stays the same."""
