"""The whole experiment: every section together, the checks across sections, and the config hash."""

from __future__ import annotations

import hashlib
import json

from pydantic import Field, model_validator

from mixopt.config.base import _Strict
from mixopt.config.data import CorpusConfig, TargetConfig, TokenizerConfig
from mixopt.config.design import DesignConfig
from mixopt.config.final import FinalConfig
from mixopt.config.runtime import RuntimeConfig
from mixopt.config.search import ProposerConfig, RegressorConfig, SwarmConfig

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


NEW_FIELDS = {"proposer": {"bootstrap_search": "pool", "scale_gate": True, "hedge_transfer": True},
              "design": {"match_repetition": False},
              "final": {"max_seeds": 0, "power": 0.8}}
"""Fields added after configs were stored, with their defaults: left out of the hash at them."""
HASHED_AS = {("proposer", "hedge_kappa"): 1.0, ("final", "pilot", "seeds"): [0, 1]}
"""Settings that change no proxy (the hedge only re-proposes on the same swarm; the pilot's seeds change
no proxy, fit or proposal) and whose default changed: the hash always sees their first default, so
stored experiment ids stand."""


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
            from mixopt.mixtures.registry import REGRESSORS

            if "low_fidelity" in REGRESSORS.get(self.regressor.kind).needs:
                raise ValueError(f"regressor.kind {self.regressor.kind!r} needs design.low_fidelity "
                                 f"(a second proxy size)")
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
        from mixopt.mixtures.baselines import builtin_baselines

        allowed = set(builtin_baselines()) | set(self.design.anchors)
        bad = sorted(set(self.final.baselines or []) - allowed)
        if bad:
            raise ValueError(f"final.baselines: unknown {bad}; choose from {sorted(allowed)}")
        return self

    @model_validator(mode="after")
    def _check_hierarchy(self) -> "ExperimentConfig":
        from mixopt.config.design import design_hierarchy

        if self.corpus.source == "files":
            design_hierarchy(self.design, [d.name for d in self.corpus.domains])
        return self

    def baselines(self) -> list[str]:
        """The final comparison's baselines (`final.baselines`, or the default built-ins, natural and
        stratified, and every anchor)."""
        if self.final.baselines is not None:
            return list(self.final.baselines)
        from mixopt.mixtures.baselines import default_baselines

        return list(default_baselines()) + list(self.design.anchors)

    def config_hash(self) -> str:
        """Hash of what defines the experiment's results: runtime settings and what only says what a run
        also measures (held-out curves, gradient cosines) are left out, as are new fields at defaults."""
        payload = self.model_dump(mode="json", exclude=_MEASUREMENT_ONLY)
        from mixopt.targets import drop_new_defaults

        drop_new_defaults(payload)
        for *path, key in HASHED_AS:
            node = payload
            for part in path:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict) and key in node:
                node[key] = HASHED_AS[(*path, key)]
        for section, fields in NEW_FIELDS.items():  # fields added later, at their defaults: the hash as before
            for key, default in fields.items():
                if payload.get(section, {}).get(key, default) == default:
                    payload.get(section, {}).pop(key, None)
        if payload["design"].get("hierarchy") is None:  # hierarchical domains' settings unset: the hash as before
            payload["design"].pop("hierarchy", None)
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
