"""The experiment config: one YAML file, validated once at the edge.

Every model forbids unknown keys and documents each field with a docstring, so the Prefect UI
renders the deployment form with help text and a typo in a YAML key is an error, not a silent
default. `load_config(path)` (in `io.py`) is the only entry point that reads YAML; errors come back as a
`ConfigError` naming the file and the field. One module per part, all re-exported here: `base.py`
(the strict model, one model's shape and training), `data.py` (domains, corpus, tokenizer, target),
`search.py` (swarm, regressor, proposer), `runtime.py`, `design.py` (design, anchors, ladder), `final.py`
(final comparison, pilot, Aioli), `experiment.py` (the whole, its cross-checks and hash), `io.py`
(YAML and the demo's config), `file.py` (a deployment's `config_file`).
"""


from mixopt.config.base import _NAME, BUILTIN_BASELINES, RESERVED_LABELS, ConfigError, ModelConfig, TrainConfig, _Strict
from mixopt.config.data import CorpusConfig, DomainConfig, TargetConfig, TokenizerConfig
from mixopt.config.design import DesignConfig, LadderConfig, LadderScale, ProxySizeConfig
from mixopt.config.experiment import MOVED_KEYS, ExperimentConfig, moved_keys  # noqa: I001  (after its sections)
from mixopt.config.final import AioliConfig, FinalConfig, PilotConfig
from mixopt.config.io import DEMO, demo_config, load_config, parse_config
from mixopt.config.runtime import RuntimeConfig
from mixopt.config.search import ProposerConfig, RegressorConfig, SwarmConfig

__all__ = [
    "_NAME", "BUILTIN_BASELINES", "RESERVED_LABELS", "ConfigError", "ModelConfig", "TrainConfig", "_Strict",
    "CorpusConfig", "DomainConfig", "TargetConfig", "TokenizerConfig", "DesignConfig", "LadderConfig",
    "LadderScale", "ProxySizeConfig", "AioliConfig", "FinalConfig", "PilotConfig", "ProposerConfig",
    "RegressorConfig", "RuntimeConfig", "SwarmConfig", "MOVED_KEYS", "ExperimentConfig", "moved_keys",
    "DEMO", "demo_config", "load_config", "parse_config",
]
