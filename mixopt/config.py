"""The experiment config: one YAML file, validated once at the edge.

Every model forbids unknown keys and documents each field with a docstring, so the Prefect UI
renders the deployment form with help text and a typo in a YAML key is an error, not a silent
default. `load_config(path)` (in `config_io.py`, re-exported here) is the only entry point that
reads YAML; errors come back as a `ConfigError` naming the file and the field. The sections with
most fields live beside it and are re-exported here: `config_base.py` (the shape and training of one
model), `config_design.py` (design, anchors, ladder), `config_final.py` (final comparison, pilot, Aioli).
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field, field_validator, model_validator

from mixopt.config_base import _NAME, BUILTIN_BASELINES, RESERVED_LABELS, ModelConfig, TrainConfig, _Strict  # noqa: F401
from mixopt.config_design import DesignConfig, LadderConfig, LadderScale, ProxySizeConfig  # noqa: F401
from mixopt.config_final import AioliConfig, FinalConfig, PilotConfig  # noqa: F401
from mixopt.errors import MixoptError


class DomainConfig(_Strict):
    """One data domain: a set of files read with one format."""

    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$", max_length=64)
    """Domain name, used as a column label and in the warehouse (letters, digits, `_ . -`); `source:topic`
    makes it a topic of a source (hierarchical domains, see `design.hierarchy`)."""
    paths: list[str] = Field(min_length=1)
    """File globs (relative paths resolve against the config file's folder); `**` recurses."""
    format: Literal["jsonl", "jsonl.gz", "parquet", "txt", "tokens"] = "jsonl"
    """File format: one JSON object per line (optionally gzipped), Parquet, plain text (one document per
    file), or `tokens`: flat token files already tokenized (`.npy`, or raw `.bin` with `dtype`), documents
    separated by `separator_id` (as OLMo and olmix store them)."""
    text_field: str = "text"
    """Name of the field (JSON key or Parquet column) that holds the document text."""
    dtype: Literal["uint16", "uint32", "int32", "int64"] | None = None
    """`format: tokens`: the token ids' type (little-endian). Required for raw `.bin` files; for `.npy`
    files, if given, the file's own dtype must match it."""
    separator_id: int | None = Field(None, ge=0)
    """`format: tokens`: the id that ends each document (the tokenizer's EOS/EOT); required there."""
    held_out: list[str] = Field(default_factory=list)
    """`format: tokens`: globs of files (among `paths`' matches) used whole for validation; empty: the
    documents are split by a hash of their tokens, like text domains."""

    @model_validator(mode="after")
    def _check_tokens(self) -> "DomainConfig":
        if self.format == "tokens":
            if self.separator_id is None:
                raise ValueError(f"domain '{self.name}': format 'tokens' needs separator_id (the id ending a document)")
        elif self.dtype is not None or self.separator_id is not None or self.held_out:
            raise ValueError(f"domain '{self.name}': dtype, separator_id and held_out apply to format 'tokens' only")
        return self


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

    kind: Literal["bpe", "file", "none"] = "bpe"
    """`bpe` trains a byte-level BPE on a sample of the corpus; `file` loads `path`; `none`: every domain
    is pre-tokenized (`format: tokens`) and `vocab_size` must be given."""
    vocab_size: int = Field(2048, ge=260, le=16_777_216)
    """Vocabulary size of the trained BPE, or of the pre-tokenized data (`kind: none`). Shards are uint16
    up to 65,536 tokens, uint32 above."""
    sample_bytes_per_domain: int = Field(500_000, gt=0)
    """Bytes of training text per domain used to train the BPE."""
    path: str | None = None
    """Path to a `tokenizer.json` (for `kind: file`); relative paths resolve against the config file's folder."""

    @model_validator(mode="after")
    def _check(self) -> "TokenizerConfig":
        if self.kind == "file" and not self.path:
            raise ValueError("kind is 'file' but no path is given")
        if self.kind == "none" and "vocab_size" not in self.model_fields_set:
            raise ValueError("kind is 'none' but no vocab_size is given (the pre-tokenized data's vocabulary)")
        return self


class TargetConfig(_Strict):
    """What to minimise: a weighted combination of per-domain held-out losses (and of eval sets and groups)."""

    weights: dict[str, float] | None = None
    """Weight per domain, eval set or group name; omitted names get 0. Default (null): the mean over the
    groups when `groups` is given, else the mean over all domains."""

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

    eval_sets: list[DomainConfig] = Field(default_factory=list)
    """Named held-out sets, in the same formats as domains: every proxy and final run is measured on
    them, nothing trains on them (their files must not be a training domain's)."""
    groups: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Group name -> weights over domain and eval-set names; a group's loss is the weighted mean of its
    members' losses (like olmix's task families), stored in `evals` with kind 'group'."""

    @model_validator(mode="after")
    def _check_sets_and_groups(self) -> "TargetConfig":
        from mixopt.targets import check_target_names

        check_target_names(self)
        return self


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


class RuntimeConfig(_Strict):
    """Where things run and where they are written."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto` uses CUDA when available, else CPU."""
    warehouse: str = "out/mixopt.duckdb"
    """Path of the DuckDB warehouse file (the default, one machine), or the URL of a shared PostgreSQL
    store (`postgresql://user@host:5432/db`; several machines and readers at once, and Dask workers
    record their own results). Put a password in PGPASSWORD or ~/.pgpass, not here: configs are stored."""
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


# Settings that change no result (how a run is executed, what it also measures): outside the config hash.
_MEASUREMENT_ONLY = {"runtime": True, "swarm": {"curve_proxies"},
                     "final": {"curve_points", "curve_eval_batches", "interaction_points"}}


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
        from mixopt.targets import check_experiment_data

        check_experiment_data(self)
        w = self.target.weights
        if w and self.corpus.source == "files":
            t = self.target
            known = {d.name for d in self.corpus.domains} | {e.name for e in t.eval_sets} | set(t.groups)
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

    @model_validator(mode="after")
    def _check_hierarchy(self) -> "ExperimentConfig":
        from mixopt.config_design import design_hierarchy

        if self.corpus.source == "files":
            design_hierarchy(self.design, [d.name for d in self.corpus.domains])
        return self

    def baselines(self) -> list[str]:
        """The final comparison's baselines (`final.baselines`, or natural, stratified and every anchor)."""
        if self.final.baselines is not None:
            return list(self.final.baselines)
        return ["natural", "stratified"] + list(self.design.anchors)

    def config_hash(self) -> str:
        """Hash of what defines the experiment's results: runtime settings and what only says what a run
        also measures (held-out curves, gradient cosines) are left out, as are new fields at defaults."""
        payload = self.model_dump(mode="json", exclude=_MEASUREMENT_ONLY)
        from mixopt.targets import drop_new_defaults

        drop_new_defaults(payload)
        if payload["design"].get("hierarchy") is None:  # hierarchical domains' settings unset: the hash as before
            payload["design"].pop("hierarchy", None)
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


class ConfigError(MixoptError, ValueError):
    """A config that cannot be used; the message names the file and the field."""


from mixopt.config_io import load_config, parse_config  # noqa: E402,F401  (YAML reading lives there)
