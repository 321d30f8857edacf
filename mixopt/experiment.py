"""The identity of an experiment and of each run in it, and the specs the trainers receive.

An experiment is defined by what changes its proxies' results: the corpus (its fingerprint), the
tokenizer, the target, the design and the proxy training settings. The swarm's size, the fit, the
proposer and the final run are not part of it, so growing the swarm or refitting reuses every proxy
already trained. A run's id is a hash of its experiment, mixture, seed, training settings and the
code version: the same run is never trained twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

import mixopt
from mixopt.config import ConfigError, ExperimentConfig, TrainConfig
from mixopt.runspec import DomainShard, RunSpec
from mixopt.targets import effective_weights, group_losses, target_identity, weighted_loss

CODE_VERSION = mixopt.__version__
_TRAIN_KEYS = set(TrainConfig.model_fields)


def _hash(obj: object, n: int = 12) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def train_settings(train: TrainConfig) -> dict:
    """The fields of a TrainConfig (or subclass) that change a trained model."""
    return {k: v for k, v in train.model_dump(mode="json").items() if k in _TRAIN_KEYS}


# Extra runs for the report's checks: they add proxies but change none, so they are not identity.
_CHECK_FIELDS = {"transfer_mixtures", "transfer_min_rho", "noise_mixtures", "noise_seeds", "anchors", "ladder",
                 "anchor_proxies"}


def design_identity(cfg: ExperimentConfig) -> dict:
    """The design settings that define an experiment (without a second size, the same dict as
    before multi-fidelity existed, so earlier experiments keep their ids)."""
    d = cfg.design.model_dump(mode="json", exclude=_CHECK_FIELDS)
    if d.get("low_fidelity") is None:
        d.pop("low_fidelity", None)
    if not d.get("target_fraction"):  # a design all around the prior hashes as before the option existed
        d.pop("target_fraction", None)
    if d.get("hierarchy") is None:  # no hierarchy settings: ids as before hierarchical domains existed
        d.pop("hierarchy", None)
    d["max_epochs"] = d.pop("proxy_max_epochs")  # its name before the rename, so ids stay the same
    if d.pop("match_repetition", False):  # matched proxies' subsamples depend on the final budget too
        d["match_repetition"] = {"final_tokens": cfg.final.tokens}
    return d


def mixture_id(weights: Sequence[float]) -> str:
    """Content address of a mixture (weights rounded to 6 decimals)."""
    return "m" + _hash([round(float(w), 6) for w in weights])


_SIMILARITY: dict[tuple, object] = {}  # the similarity prior (a PriorResult) per experiment and data


@dataclass
class Experiment:
    """What every stage needs to know about the experiment being run (JSON-serialisable)."""

    experiment_id: str
    name: str
    config_hash: str
    config: dict
    domains: list[DomainShard]
    vocab_size: int
    fingerprint: str
    out_dir: str
    warehouse: str
    eval_sets: list[DomainShard] = field(default_factory=list)
    """Evaluation-only held-out sets (`target.eval_sets`): measured on every run, never trained on."""

    @classmethod
    def create(cls, cfg: ExperimentConfig, domains: list[DomainShard], vocab_size: int,
               fingerprint: str, eval_sets: list[DomainShard] | None = None) -> "Experiment":
        identity = {
            "corpus": fingerprint,
            "tokenizer": cfg.tokenizer.model_dump(mode="json"),
            "target": target_identity(cfg.target),
            "design": design_identity(cfg),
            "proxy": train_settings(cfg.swarm),
            "seed": cfg.swarm.seed,
        }
        exp = cls(
            experiment_id=f"{cfg.name}-{_hash(identity, 10)}",
            name=cfg.name,
            config_hash=cfg.config_hash(),
            config=cfg.model_dump(mode="json"),
            domains=domains,
            vocab_size=vocab_size,
            fingerprint=fingerprint,
            out_dir=cfg.runtime.out_dir,
            warehouse=cfg.runtime.warehouse,
            eval_sets=list(eval_sets or []),
        )
        exp.target_weights()  # fail early on unknown target (and anchor) domains
        exp.anchor_mixtures()
        exp._check_frozen_topics(exp.hierarchy())  # and on unknown sources or topics of `design.hierarchy`
        return exp

    @property
    def cfg(self) -> ExperimentConfig:
        return ExperimentConfig.model_validate(self.config)

    @property
    def domain_names(self) -> list[str]:
        return [d.name for d in self.domains]

    @property
    def train_tokens(self) -> np.ndarray:
        return np.array([d.train_tokens for d in self.domains], dtype=float)

    @property
    def prior(self) -> np.ndarray:
        """The natural (token-proportional) distribution over domains."""
        t = self.train_tokens
        return t / t.sum()

    def proxy_budget(self) -> float:
        """The token budget at which the proxies read the data: `swarm.tokens`, or with
        `design.match_repetition` `final.tokens` (a matched proxy reads each domain as often as the final
        run would). The proxies' caps and built-in anchors are computed at it."""
        cfg = self.cfg
        return float(cfg.final.tokens if cfg.design.match_repetition else cfg.swarm.tokens)

    def proxy_caps(self) -> np.ndarray:
        """Per-domain weight caps of the proxies: `design.proxy_max_epochs` at `proxy_budget`."""
        from mixopt.mixtures.design import token_caps

        return token_caps(self.train_tokens, self.proxy_budget(), self.cfg.design.proxy_max_epochs)

    def run_domains(self, role: str, train: TrainConfig) -> list[DomainShard]:
        """The shards a run draws from: the domains, or for a repetition-matched proxy each domain's
        subsample of `mixtures.repetition.matched_pool` tokens (`DomainShard.pool_tokens`)."""
        cfg = self.cfg
        if role != "proxy" or not cfg.design.match_repetition:
            return self.domains
        from mixopt.mixtures.repetition import matched_pool

        pools = matched_pool(self.train_tokens, train.tokens, cfg.final.tokens, train.seq_len + 1)
        return [replace(d, pool_tokens=int(p)) if p < d.train_tokens else d for d, p in zip(self.domains, pools)]

    def baseline_context(self, caps: np.ndarray | None = None, proposal: Sequence[float] | None = None,
                         budget_tokens: float | None = None):
        """The :class:`~mixopt.mixtures.baselines.BaselineContext` of this experiment at `caps` (the
        budget in question, `budget_tokens`), with the `proposal` where there is one, and the data-similarity
        prior when a configured baseline needs it."""
        from mixopt.mixtures.baselines import BaselineContext

        sim = self.similarity_weights() if "similarity" in self.static_builtins() else None
        return BaselineContext(domains=self.domain_names, train_tokens=self.train_tokens,
                               caps=None if caps is None else np.asarray(caps, dtype=float),
                               target_weights=self.target_weights(),
                               proposal=None if proposal is None else np.asarray(proposal, dtype=float),
                               similarity=sim, budget_tokens=budget_tokens)

    def static_builtins(self) -> list[str]:
        """The static built-in baselines this experiment trains as anchors: the default ones (natural and
        stratified) and any other named in `final.baselines` (unimax, similarity), in registry order."""
        from mixopt.mixtures.baselines import default_baselines, static_baselines

        wanted = set(default_baselines()) | set(self.cfg.final.baselines or [])
        return [b for b in static_baselines() if b in wanted]

    def similarity_prior(self):  # -> mixopt.mixtures.prior.PriorResult
        """The zero-proxy similarity prior (uncapped), computed once per process from the shards."""
        key = (self.experiment_id, tuple(d.val_sha256 for d in [*self.domains, *self.eval_sets]))
        if key not in _SIMILARITY:
            from mixopt.corpus.similarity import similarity_prior

            _SIMILARITY[key] = similarity_prior(self)
        return _SIMILARITY[key]

    def similarity_weights(self) -> np.ndarray:
        """The similarity prior's mixture (uncapped)."""
        return np.asarray(self.similarity_prior().weights, dtype=float)

    def anchor_mixtures(self, caps: np.ndarray | None = None,
                        budget_tokens: float | None = None) -> dict[str, list[float]]:
        """Name -> weights of the anchors: the static built-in baselines it trains (`static_builtins`,
        within `caps`; `mixopt.mixtures.baselines`), then the user's `design.anchors` (omitted domains
        0). Unknown domain names are a ConfigError."""
        from mixopt.mixtures.baselines import build_baseline

        names = self.domain_names
        ctx = self.baseline_context(caps, budget_tokens=budget_tokens)
        out = {name: build_baseline(name, ctx) for name in self.static_builtins()}
        for name, weights in self.cfg.design.anchors.items():
            unknown = sorted(set(weights) - set(names))
            if unknown:
                raise ConfigError(f"design.anchors.{name}: unknown domains {unknown}; the corpus has {names}")
            v = np.array([float(weights.get(n, 0.0)) for n in names])
            out[name] = [float(w) for w in v / v.sum()]
        return out

    @property
    def eval_set_names(self) -> list[str]:
        return [d.name for d in self.eval_sets]

    def target_terms(self) -> dict[str, float]:
        """Normalised weight of each measured loss (domains, then eval sets; groups flattened)."""
        try:
            return effective_weights(self.cfg.target, self.domain_names, self.eval_set_names)
        except ValueError as e:
            raise ConfigError(f"{e}; the corpus has {self.domain_names}") from None
    def hierarchy(self):  # -> mixopt.mixtures.hierarchy.Hierarchy | None
        """The domains' sources and topics with the design's per-level sweeps and frozen topic weights
        (None for flat names without `design.hierarchy`: the flat design). Bad names are a ConfigError."""
        from mixopt.config.design import design_hierarchy

        try:
            return design_hierarchy(self.cfg.design, self.domain_names)
        except ValueError as e:
            raise ConfigError(str(e)) from None

    def _check_frozen_topics(self, h) -> None:
        """Frozen topic weights must fit under the token caps of the proxies and of the final run."""
        if h is None or not h.frozen:
            return
        from mixopt.mixtures.design import token_caps

        cfg = self.cfg
        for what, tokens, epochs in (("design.proxy_max_epochs", self.proxy_budget(), cfg.design.proxy_max_epochs),
                                     ("proposer.final_max_epochs", cfg.final.tokens, cfg.proposer.final_max_epochs)):
            caps = token_caps(self.train_tokens, tokens, epochs)
            if caps.sum() < 1:
                continue  # infeasible without any freeze: reported where the caps are used
            try:
                h.reduced_caps(caps)
            except ValueError as e:
                frozen = ", ".join(f"design.hierarchy.sources.{h.sources[j]}.frozen" for j in sorted(h.frozen))
                raise ConfigError(f"{frozen}: {e} at {what} = {epochs}") from None

    def target_weights(self) -> np.ndarray:
        """Normalised weights of the per-domain losses in the target (default: the mean). A target
        on eval sets alone points at no domain: then the uniform mixture (the design's centre)."""
        terms = self.target_terms()
        v = np.array([terms[n] for n in self.domain_names])
        if v.sum() <= 0:
            return np.full(len(v), 1.0 / len(v))
        return v / v.sum()

    def design_centre(self) -> np.ndarray:
        """Where the target-centred share of the design is drawn: the target's own domain weights when
        it names domains only; when eval sets carry some of it (text no domain owns), the similarity
        prior's mixture, which weighs every domain by how well it explains the target's text."""
        terms = self.target_terms()
        if not any(terms.get(e, 0.0) > 0 for e in self.eval_set_names):
            return self.target_weights()
        return self.similarity_weights()

    def target_loss(self, val_losses: dict[str, float]) -> float | None:
        """The target for one run's measured losses, or None if a needed domain or eval set is missing."""
        return weighted_loss(self.target_terms(), val_losses)

    def group_losses(self, val_losses: dict[str, float]) -> dict[str, float]:
        """Each `target.groups` entry's loss for one run (empty without groups)."""
        return group_losses(self.cfg.target, val_losses)

    def run_spec(self, role: str, label: str, weights: Sequence[float], seed: int, train: TrainConfig,
                 aioli: dict | None = None) -> RunSpec:
        """The spec of one run; its id hashes everything that makes the run unique.

        `aioli` (an AioliConfig dumped to a dict) makes the run adapt its mixture online, starting
        from `weights`; it and the label (which selects Aioli's restricted mode) then enter the id,
        so the run never shares an id with a static run. Static runs' ids are unchanged.
        """
        cfg = self.cfg
        settings = train_settings(train)
        identity = {
            "experiment": self.experiment_id, "role": role, "weights": [round(float(w), 6) for w in weights],
            "seed": seed, "train": settings, "code": CODE_VERSION,
        }
        if aioli is not None:  # Aioli
            identity.update(aioli=aioli, label=label)
        domains = self.run_domains(role, train)
        if any(d.pool_tokens for d in domains):  # a matched proxy: its subsamples are part of it
            identity["pools"] = [d.pool_tokens for d in domains]
        key = _hash(identity, 24)
        spec = RunSpec(
            run_id=f"{role[0]}{key[:12]}",
            role=role,
            label=label,
            domains=domains,
            weights=[float(w) for w in weights],
            train=settings,
            vocab_size=self.vocab_size,
            seed=seed,
            device=cfg.runtime.device,
            out_dir=str(Path(self.out_dir)),
            experiment=self.experiment_id,
            wandb_mode=cfg.runtime.wandb_mode,
            threads=cfg.runtime.threads,
            compile=cfg.runtime.compile,
            progress=cfg.runtime.progress,
            save_checkpoint=(role == "final"),
            devices=cfg.final.devices if role == "final" else 1,
            aioli=aioli,
        )
        spec.eval_sets = list(self.eval_sets)
        if role == "final":  # held-out curves (and, on the proposal, gradient cosines); not identity
            f = cfg.final
            spec.curve_points, spec.curve_eval_batches = f.curve_points, f.curve_eval_batches
            spec.interaction_points = f.interaction_points if label == "proposed" else 0
        return spec

    def spool_dir(self) -> Path:
        return Path(self.out_dir) / "spool" / self.experiment_id

    def report_dir(self) -> Path:
        return Path(self.out_dir) / "reports" / self.experiment_id

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Experiment":
        d = dict(d)
        d["domains"] = [x if isinstance(x, DomainShard) else DomainShard(**x) for x in d["domains"]]
        d["eval_sets"] = [x if isinstance(x, DomainShard) else DomainShard(**x) for x in d.get("eval_sets", [])]
        return cls(**d)
