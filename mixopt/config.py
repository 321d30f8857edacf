"""The experiment config: one YAML file, validated once at the edge.

Every model forbids unknown keys and documents each field with a docstring, so the Prefect UI
renders the deployment form with help text and a typo in a YAML key is an error, not a silent
default. `load_config(path)` (in `config_io.py`, re-exported here) is the only entry point that
reads YAML; errors come back as a `ConfigError` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mixopt.errors import MixoptError

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
BUILTIN_BASELINES = ("natural", "stratified", "aioli", "aioli_restricted")
RESERVED_LABELS = frozenset(BUILTIN_BASELINES + ("proposed",))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True,
                              allow_inf_nan=False)  # `.inf` / `.nan` in YAML are refused, not propagated


class DomainConfig(_Strict):
    """One data domain: a set of files read with one format."""

    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", max_length=64)
    """Domain name, used as a column label and in the warehouse (letters, digits, `_ . -`)."""
    paths: list[str] = Field(min_length=1)
    """File globs (relative paths resolve against the config file's folder); `**` recurses."""
    format: Literal["jsonl", "jsonl.gz", "parquet", "txt"] = "jsonl"
    """File format: one JSON object per line (optionally gzipped), Parquet, or plain text (one document per file)."""
    text_field: str = "text"
    """Name of the field (JSON key or Parquet column) that holds the document text."""


class CorpusConfig(_Strict):
    """Where the documents come from and how they are split."""

    source: Literal["builtin", "synthetic", "files"] = "builtin"
    """`builtin`: real text found in the Python installation (code, C headers, docs, licences, READMEs);
    `synthetic`: a small generated multi-domain corpus for fast tests; `files`: the `domains` below."""
    domains: list[DomainConfig] = Field(default_factory=list)
    """The user's domains (required when `source` is `files`)."""
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    """Fraction of each domain's documents held out for validation (chosen by a hash of the text)."""
    max_bytes_per_domain: int = Field(4_000_000, gt=0)
    """Read at most this many bytes of text per domain (keeps the demo fast)."""
    synthetic_domains: int = Field(4, ge=2, le=16)
    """Number of domains the synthetic generator makes."""
    synthetic_docs: int = Field(300, ge=10)
    """Documents per synthetic domain."""

    @model_validator(mode="after")
    def _check(self) -> "CorpusConfig":
        if self.source == "files" and not self.domains:
            raise ValueError("source is 'files' but no domains are listed")
        names = [d.name for d in self.domains]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate domain names: {sorted(dup)}")
        return self


class TokenizerConfig(_Strict):
    """Byte-level BPE trained on a sample of the corpus, or a saved `tokenizer.json`."""

    kind: Literal["bpe", "file"] = "bpe"
    """`bpe` trains a byte-level BPE on a sample of the corpus; `file` loads `path`."""
    vocab_size: int = Field(2048, ge=260, le=65535)
    """Vocabulary size of the trained BPE (token ids are stored as uint16)."""
    sample_bytes_per_domain: int = Field(500_000, gt=0)
    """Bytes of training text per domain used to train the BPE."""
    path: str | None = None
    """Path to a `tokenizer.json` (for `kind: file`); relative paths resolve against the config file's folder."""

    @model_validator(mode="after")
    def _check(self) -> "TokenizerConfig":
        if self.kind == "file" and not self.path:
            raise ValueError("kind is 'file' but no path is given")
        return self


class TargetConfig(_Strict):
    """What to minimise: a weighted combination of per-domain held-out losses."""

    weights: dict[str, float] | None = None
    """Weight per domain name; omitted domains get 0. Default (null): the mean over all domains."""

    @field_validator("weights")
    @classmethod
    def _nonneg(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return v
        bad = {k: w for k, w in v.items() if not (w >= 0)}
        if bad:
            raise ValueError(f"target weights must be >= 0, got {bad}")
        if sum(v.values()) <= 0:
            raise ValueError("target weights must not all be zero")
        return v


class ModelConfig(_Strict):
    """A small decoder-only transformer (GPT)."""

    n_layer: int = Field(2, ge=1, le=48)
    """Number of transformer blocks."""
    n_embd: int = Field(64, ge=8, le=4096)
    """Width of the residual stream."""
    n_head: int = Field(4, ge=1, le=64)
    """Number of attention heads (must divide `n_embd`)."""

    @model_validator(mode="after")
    def _check(self) -> "ModelConfig":
        if self.n_embd % self.n_head:
            raise ValueError(f"n_head ({self.n_head}) must divide n_embd ({self.n_embd})")
        return self


class TrainConfig(_Strict):
    """How one model is trained."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    """Model shape."""
    tokens: int = Field(100_000, gt=0)
    """Training tokens per run (steps = tokens / (batch_size * seq_len), rounded up)."""
    seq_len: int = Field(128, ge=8, le=8192)
    """Context length in tokens."""
    batch_size: int = Field(16, ge=1)
    """Sequences per optimizer step."""
    lr: float = Field(3e-3, gt=0, lt=1)
    """Peak learning rate (AdamW, linear warm-up then cosine decay to 10%)."""
    weight_decay: float = Field(0.1, ge=0)
    """AdamW weight decay on matrices."""
    grad_clip: float = Field(1.0, ge=0)
    """Gradient-norm clip (0 disables)."""
    eval_batches: int = Field(8, ge=1)
    """Held-out batches per domain when measuring validation loss."""


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


class ProxySizeConfig(_Strict):
    """A second, cheaper proxy size: a smaller model and/or fewer tokens than `swarm` (the target size)."""

    model: ModelConfig | None = None
    """Model shape of the cheap proxies (null: the swarm's model)."""
    tokens: int | None = Field(None, gt=0)
    """Training tokens of each cheap proxy (null: the swarm's `tokens`)."""


class LadderScale(_Strict):
    """One rung of the scale ladder: a cheaper proxy than the swarm's (fewer tokens and/or a smaller model)."""

    tokens_fraction: float = Field(1.0, gt=0, le=1)
    """Training tokens of this rung as a fraction of `swarm.tokens`."""
    model: ModelConfig | None = None
    """Model shape of this rung (null: the swarm's model)."""


class LadderConfig(_Strict):
    """The scale ladder: a few mixtures (and the anchors) also trained at cheaper scales, so a law can
    learn how each mixture's target moves with compute and predict it at the final run's scale."""

    scales: list[LadderScale] = Field(
        default_factory=lambda: [LadderScale(tokens_fraction=0.25), LadderScale(tokens_fraction=0.5)], min_length=2)
    """The cheaper rungs (at least 2; with the swarm's own size that makes >= 3 scales, cheapest first)."""
    mixtures: int = Field(4, ge=3)
    """The first this-many design mixtures are trained at every rung (the anchors always are)."""


class DesignConfig(_Strict):
    """How mixtures are sampled around the token prior (RegMix style)."""

    concentration_min: float = Field(0.1, gt=0)
    """Smallest Dirichlet concentration multiplier of the sweep (spiky mixtures)."""
    concentration_max: float = Field(5.0, gt=0)
    """Largest Dirichlet concentration multiplier of the sweep (close to the prior)."""
    proxy_max_epochs: float = Field(4.0, gt=0)
    """Cap: a proxy may read each domain's training tokens at most this many times (at `swarm.tokens`)."""
    min_weight: float = Field(0.005, ge=0, lt=0.5)
    """Weights below this are set to zero and the mixture renormalised."""
    method: Literal["dirichlet", "sequential"] = "dirichlet"
    """`dirichlet`: all proxies sampled at once (RegMix); `sequential`: `initial` sampled proxies,
    then rounds of `round_size` chosen by an acquisition over a GP's posterior (trained round by round)."""
    initial: int = Field(16, ge=2)
    """Sequential design: proxies in the space-filling first batch."""
    round_size: int = Field(8, ge=1)
    """Sequential design: proxies chosen per round (the GP is refitted after every round)."""
    acquisition: Literal["thompson", "qei", "ucb"] = "thompson"
    """Sequential design: batch Thompson sampling, q-expected improvement (kriging believer) or UCB."""
    low_fidelity: ProxySizeConfig | None = None
    """A second, cheaper proxy size (multi-fidelity). With `method: sequential` each round chooses the
    mixture and the size (information about the target size per unit of cost, cost = FLOPs =
    6 x params x tokens); with `dirichlet` only the transfer mixtures train at it. Fits and the
    proposal are for the swarm's size. Null: one size."""
    transfer_mixtures: int = Field(4, ge=0)
    """Scale-transfer check (with `low_fidelity`): the first this-many design mixtures are also trained
    at the other size (label `transfer`); the report gives the rank correlation between the sizes."""
    transfer_min_rho: float = Field(0.5, ge=-1, le=1)
    """The report warns when that Spearman rank correlation is below this (the ranks do not transfer)."""
    noise_mixtures: int = Field(0, ge=0)
    """Noise floor: the first this-many target-size design mixtures are retrained with `noise_seeds`
    more seeds (label `seed_repeat`); the report gives the pooled seed-to-seed sd of the target. 0: off
    (the default: the anchors' seed repeats already measure it)."""
    noise_seeds: int = Field(2, ge=1, le=100)
    """Extra seeds per noise-floor mixture and per anchor (each then has 1 + noise_seeds runs)."""
    target_fraction: float = Field(0.25, ge=0, le=1)
    """Share of the design drawn around the target's own domain weights (the part of the simplex the
    target makes interesting) instead of around the token prior. 0: all around the prior."""
    anchors: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Mixtures you would otherwise pick by hand, by name -> {domain: weight} (omitted domains get 0;
    weights sum to 1). They, natural and stratified are trained as proxies at 1 + `noise_seeds` seeds
    (label `anchor:<name>`), on the ladder, and (unless `final.baselines` is given without them) as
    baselines of the final comparison."""
    anchor_proxies: bool = True
    """Train the anchors as proxies (at 1 + `noise_seeds` seeds, and on the ladder): their losses feed
    the fits, the noise floor and the report's proxy-scale comparison."""
    ladder: LadderConfig | None = Field(default_factory=LadderConfig)
    """The scale ladder behind the scale-aware law (null: one proxy scale; the proposal then optimises
    the proxies' own loss)."""

    @model_validator(mode="after")
    def _check(self) -> "DesignConfig":
        if self.concentration_min > self.concentration_max:
            raise ValueError("concentration_min must be <= concentration_max")
        for name, w in self.anchors.items():
            if not _NAME.fullmatch(name) or name in RESERVED_LABELS:
                raise ValueError(f"design.anchors: bad anchor name {name!r} (letters, digits, `_ . -`; not one of "
                                 f"{sorted(RESERVED_LABELS)})")
            bad = {k: v for k, v in w.items() if not v >= 0}
            if bad or not w:
                raise ValueError(f"design.anchors.{name}: weights must be >= 0 and not empty, got {w}")
            if abs(sum(w.values()) - 1.0) > 1e-3:
                raise ValueError(f"design.anchors.{name}: weights sum to {sum(w.values()):.4g}, not 1")
        if self.low_fidelity is not None:
            if self.method == "sequential" and self.acquisition != "thompson":
                raise ValueError(f"design.low_fidelity needs design.acquisition 'thompson' (the multi-fidelity "
                                 f"acquisition), got {self.acquisition!r}")
            if self.transfer_mixtures < 3:
                raise ValueError(f"design.transfer_mixtures must be at least 3 with design.low_fidelity (the rank "
                                 f"correlation and the multi-fidelity GP need mixtures at both sizes), "
                                 f"got {self.transfer_mixtures}")
        return self


class RegressorConfig(_Strict):
    """Regressors from mixture to target loss, judged by k-fold cross-validation on the proxies."""

    kind: Literal["auto", "linear", "lightgbm", "mixing_law", "mixing_law_sqrt", "gp", "gp_multi_fidelity"] = "auto"
    """`auto` picks or averages the candidates by k-fold CV on the target-size proxies (an ensemble
    when it raises the out-of-fold Spearman rho); otherwise only this regressor. `gp_multi_fidelity`
    (needs `design.low_fidelity`): a GP over mixture and size fitted on both sizes, predicting at the
    target size (with `auto` and a second size it is cross-validated too, and chosen when its
    out-of-fold Spearman rho on the target-size proxies beats auto's)."""
    candidates: list[Literal["linear", "lightgbm", "mixing_law", "mixing_law_sqrt", "gp"]] = Field(
        default_factory=lambda: ["linear", "lightgbm", "mixing_law", "mixing_law_sqrt", "gp"], min_length=1
    )
    """Regressors that `auto` chooses from (each is also cross-validated and reported)."""
    cv_folds: int = Field(5, ge=2)
    """Folds of the cross-validation (at most the number of finished proxies)."""
    cv_repeats: int = Field(2, ge=1, le=50)
    """Shuffles of the k folds (seeded from `swarm.seed`); scores are means over them, with their sd."""


class ProposerConfig(_Strict):
    """How the proposed mixture is chosen from the fitted regressor."""

    kind: Literal["regmix", "exact", "best_seen", "bagged"] = "regmix"
    """`regmix`: simulate many Dirichlet samples, average the top-k; `exact`: minimise the fitted
    mixing law + lambda*KL to the prior; `best_seen`: the best mixture actually trained; `bagged`: the
    mean of the bootstrap proposals (regmix on refits to resampled proxies), within the caps."""
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
    hedge_kappa: float = Field(1.0, ge=0)
    """The hedge: on the path from the best anchor (as the law predicts it at the final scale) to the
    optimum, take the point maximising predicted gain - hedge_kappa x its bootstrap sd. 0: no hedge
    (the raw optimum, always reported as a diagnostic)."""
    bootstrap: int = Field(100, ge=0)
    """Bootstrap refits for the proposal's stability (and the hedge's uncertainty); 0: off."""
    bootstrap_samples: int = Field(2_000, ge=500)
    """Candidate mixtures per bootstrap proposal (fewer than `n_samples`: refits are many)."""
    unstable_tv: float = Field(0.15, gt=0, le=1)
    """Warn when the mean total-variation distance between bootstrap proposals and the proposal exceeds this."""


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
    seeds: list[int] = Field(default_factory=lambda: [0, 1], min_length=2)
    """Seeds of the pilot (at least 2, so its verdict is paired)."""
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
    eval_batches: int = Field(32, ge=1)
    """Held-out batches per domain (32 x 8 x 64 = 16k tokens per domain; the same windows for every run)."""
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    """Seeds; every mixture is trained once per seed (the verdict pairs them; with one seed it calls nothing)."""
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
    devices: int = Field(1, ge=1)
    """Devices (GPUs, or CPU processes) per final run; above 1 the run trains with Lightning's DDP in
    its own process, which starts one process per device. The token budget stays the same."""


class RuntimeConfig(_Strict):
    """Where things run and where they are written."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto` uses CUDA when available, else CPU."""
    warehouse: str = "out/mixopt.duckdb"
    """Path of the DuckDB warehouse file."""
    out_dir: str = "out"
    """Output folder: corpus shards, tokenizer, spooled results, reports, plots, wandb."""
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    """Weights & Biases logging mode for every run (offline writes under `out_dir/wandb`)."""
    threads: int = Field(0, ge=0)
    """torch intra-op threads per training (0: leave torch's default)."""
    progress: bool = True
    """Show progress bars (swarm bar and Lightning's bar)."""
    dask_address: str | None = None
    """Train proxies on a Dask cluster through Prefect's Dask task runner: a scheduler address
    (`tcp://host:8786`), or `local:N` for a LocalCluster of N worker processes. Null: threads here."""
    compile: Literal["auto", "on", "off"] = "auto"
    """torch.compile the batched proxies' model and loss (fuses their many small kernels; ~15 s to
    compile): `auto` compiles on CUDA for batches long enough to earn that back (README, swarm
    throughput), never on a CPU."""
    workers: int = Field(0, ge=0)
    """Proxy tasks running at the same time on the flow's task runner (threads, or Dask workers).
    0 (auto): one per core on a CPU, each task training its batch in its own single-threaded
    process (the fastest layout measured), and 1 on a GPU. A number N: N tasks on threads here."""
    retries: int = Field(1, ge=0)
    """Retries of a failed proxy task (exponential backoff: 2 s, 4 s, 8 s, ...); a proxy still failing
    after them is recorded as failed and the swarm goes on."""
    batch_k: int = Field(0, ge=0)
    """Proxies trained together as one batched model in one task (0: chosen automatically from the
    model size and the device; 1: one proxy at a time)."""
    isolate: bool = Field(False)
    """Train each proxy in its own process: a crash or kill -9 of one proxy cannot take down the
    flow; costs ~5 s of start-up per proxy."""
    final_workers: int = Field(0, ge=0)
    """Final (and pilot) runs trained at the same time, each in its own process. 0 (auto): one
    single-threaded process per core on a CPU, 1 on a GPU. DDP runs (`final.devices` > 1) go one at a time."""


MOVED_KEYS = {  # old dotted key -> where it is now (settings that say how it runs went to `runtime`)
    "swarm.workers": "runtime.workers",
    "swarm.retries": "runtime.retries",
    "swarm.batch_k": "runtime.batch_k",
    "swarm.isolate": "runtime.isolate",
    "design.max_epochs": "design.proxy_max_epochs",
    "proposer.max_epochs": "proposer.final_max_epochs",
}


def moved_keys(data: object) -> list[str]:
    """One message per moved or renamed key in a raw config mapping ("swarm.workers moved to runtime.workers")."""
    if not isinstance(data, dict):
        return []
    found = []
    for old, new in MOVED_KEYS.items():
        section, key = old.split(".")
        if isinstance(data.get(section), dict) and key in data[section]:
            found.append(f"{old} moved to {new}")
    return found


class ExperimentConfig(_Strict):
    """A whole mixture search: corpus, tokenizer, target, swarm, design, fit, proposal and final run."""

    name: str = Field("demo", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", max_length=64)
    """Experiment name (letters, digits, `_ . -`)."""
    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    """The corpus and its domains."""
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    """The tokenizer."""
    target: TargetConfig = Field(default_factory=TargetConfig)
    """The loss to minimise."""
    swarm: SwarmConfig = Field(default_factory=SwarmConfig)
    """The proxy swarm."""
    design: DesignConfig = Field(default_factory=DesignConfig)
    """The mixture design."""
    regressor: RegressorConfig = Field(default_factory=RegressorConfig)
    """The regressor."""
    proposer: ProposerConfig = Field(default_factory=ProposerConfig)
    """The proposer."""
    final: FinalConfig = Field(default_factory=FinalConfig)
    """The final run and its baselines."""
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    """Runtime settings."""

    @model_validator(mode="before")
    @classmethod
    def _refuse_moved_keys(cls, data: object) -> object:
        moved = moved_keys(data)
        if moved:
            raise ValueError("; ".join(moved))
        return data

    @model_validator(mode="after")
    def _check_sizes(self) -> "ExperimentConfig":
        low, sw = self.design.low_fidelity, self.swarm
        if low is None:
            if self.regressor.kind == "gp_multi_fidelity":
                raise ValueError("regressor.kind 'gp_multi_fidelity' needs design.low_fidelity (a second proxy size)")
            return self
        m = low.model or sw.model
        bigger = [f"design.low_fidelity.{name} ({a}) > swarm.{name} ({b})" for name, a, b in (
            ("tokens", low.tokens or sw.tokens, sw.tokens), ("model.n_layer", m.n_layer, sw.model.n_layer),
            ("model.n_embd", m.n_embd, sw.model.n_embd)) if a > b]
        if bigger:
            raise ValueError("design.low_fidelity must be a cheaper proxy than the swarm's: " + "; ".join(bigger))
        if (low.tokens or sw.tokens) == sw.tokens and (m.n_layer, m.n_embd) == (sw.model.n_layer, sw.model.n_embd):
            raise ValueError("design.low_fidelity is the same size as the swarm's proxy: "
                             "give fewer tokens or a smaller model")
        return self

    @model_validator(mode="after")
    def _check_target(self) -> "ExperimentConfig":
        w = self.target.weights
        if w and self.corpus.source == "files":
            known = {d.name for d in self.corpus.domains}
            unknown = sorted(set(w) - known)
            if unknown:
                raise ValueError(f"target.weights names unknown domains {unknown}; known: {sorted(known)}")
        return self

    @model_validator(mode="after")
    def _check_anchors_and_baselines(self) -> "ExperimentConfig":
        if self.corpus.source == "files":
            known = {d.name for d in self.corpus.domains}
            for name, w in self.design.anchors.items():
                unknown = sorted(set(w) - known)
                if unknown:
                    raise ValueError(f"design.anchors.{name} names unknown domains {unknown}; known: {sorted(known)}")
        allowed = set(BUILTIN_BASELINES) | set(self.design.anchors)
        bad = sorted(set(self.final.baselines or []) - allowed)
        if bad:
            raise ValueError(f"final.baselines: unknown {bad}; choose from {sorted(allowed)}")
        return self

    def baselines(self) -> list[str]:
        """The final comparison's baselines (`final.baselines`, or natural, stratified and every anchor)."""
        if self.final.baselines is not None:
            return list(self.final.baselines)
        return ["natural", "stratified"] + list(self.design.anchors)

    def config_hash(self) -> str:
        """Hash of what defines the experiment's results (runtime settings excluded)."""
        payload = self.model_dump(mode="json", exclude={"runtime"})
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


class ConfigError(MixoptError, ValueError):
    """A config that cannot be used; the message names the file and the field."""


from mixopt.config_io import load_config, parse_config  # noqa: E402,F401  (YAML reading lives there)
