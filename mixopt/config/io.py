"""Reading and validating the experiment config: the only place YAML is read.

`load_config(path)` reads a YAML file (duplicate keys refused) and `parse_config(data)` validates a
parsed mapping; both raise `ConfigError` naming the file and the field. Re-exported by
`mixopt.config`, so `from mixopt.config import load_config` keeps working.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from mixopt.config.base import ConfigError
from mixopt.config.experiment import ExperimentConfig, moved_keys


def _format_validation_error(source: str, err: ValidationError) -> str:
    lines = [f"{source}: invalid config"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def parse_config(data: object, source: str = "<config>", base_dir: Path | None = None) -> ExperimentConfig:
    """Validate a parsed mapping; relative domain globs resolve against `base_dir`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a mapping of keys to values, got {type(data).__name__}")
    moved = moved_keys(data)
    if moved:
        raise ConfigError(f"{source}: " + "; ".join(moved))
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(source, err)) from None
    if base_dir is not None:
        for d in [*cfg.corpus.domains, *cfg.target.eval_sets]:
            if d.format != "builtin":  # a built-in eval set's path is its name
                d.paths = [p if Path(p).is_absolute() else str(base_dir / p) for p in d.paths]
            d.held_out = [p if Path(p).is_absolute() else str(base_dir / p) for p in d.held_out]
        if cfg.tokenizer.path and not Path(cfg.tokenizer.path).is_absolute():
            cfg.tokenizer.path = str(base_dir / cfg.tokenizer.path)
    return cfg


class _UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: list = []  # a list: keys may be unhashable (SafeLoader reports those)
        for key_node, _ in node.value:  # `<<: *anchor` merges may be overridden, as YAML intends
            key = None if key_node.tag == "tag:yaml.org,2002:merge" else self.construct_object(key_node, deep=True)
            if key is not None and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark)
            seen.append(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path | None) -> ExperimentConfig:
    """Read and validate a YAML config; None gives the defaults (the built-in demo)."""
    if path is None:
        return ExperimentConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:  # a folder, no permission, ...
        raise ConfigError(f"{p}: cannot read the config ({e.strerror or e})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise ConfigError(f"{where}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    except RecursionError:
        raise ConfigError(f"{p}: not valid YAML (nested too deeply)") from None
    except ValueError as e:  # e.g. an integer with more digits than Python converts
        raise ConfigError(f"{p}: not valid YAML ({str(e)[:120]})") from None
    return parse_config(data, source=str(p), base_dir=p.parent.resolve())


# `mixopt run` with no config: the built-in corpus and a question a team would ask. The model is to help
# with scientific-Python library code (the pinned numpy, scipy and scikit-learn source, an eval set that no
# training domain holds and nothing trains on). Which mix of standard-library code, C headers, reference
# docs, licences and package READMEs serves it best? No domain is "the target's own", so the answer is not
# obvious. The hand-picked anchor is what a careful person would try first: mostly Python code, with a
# quarter of reference prose for the docstrings. The final comparison pits the proposal against it, the
# token-proportional (natural) and uniform (stratified) mixtures, UniMax and the data-similarity prior.
DEMO = {
    "name": "demo",
    "target": {"eval_sets": [{"name": "scientific_python", "format": "builtin", "paths": ["scientific_python"]}],
               "weights": {"scientific_python": 1.0}},
    "design": {"anchors": {"hand_picked": {"python_stdlib": 0.75, "python_docs": 0.25}}},
    # fewer tokens than the defaults (150k, 200k) so five baselines, the pilot and three seeds fit in
    # about ten minutes on two cores
    "swarm": {"tokens": 100_000},
    "final": {"tokens": 120_000, "baselines": ["natural", "stratified", "unimax", "similarity", "hand_picked"]},
}


def demo_config() -> "ExperimentConfig":
    """The demo's config (`DEMO` over the defaults)."""
    from mixopt.config.experiment import ExperimentConfig

    return ExperimentConfig.model_validate(DEMO)
