"""Experiments kept as files: a deployment's `config_file` parameter, merged with its form.

Every deployment takes `config` (the form) and `config_file`, the path of an experiment YAML in the
project (relative paths resolve against the flow's working folder, the repo root under `prefect
deploy`). With a file, the run's config is the file's, with every field given in the form on top: a
field counts as given when the form set it to a value other than its default (the form may send
every default back, and a default must not undo the file). Nested sections merge field by field;
lists and mappings (`corpus.domains`, `target.weights`) are replaced whole. A scheduled deployment
with only `config_file` set follows the file as it changes in git.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field

from mixopt.config.experiment import ExperimentConfig
from mixopt.config.io import load_config, parse_config

ConfigFile = Annotated[str | None, Field(description=(
    "Path of an experiment YAML in the project (relative: to the flow's working folder, the repo root); the "
    "config fields given in the form (set to other than their default) override the file's."))]
"""The `config_file` parameter every deployment takes."""


def _default(model: BaseModel, name: str) -> Any:
    info = type(model).model_fields[name]
    return info.get_default(call_default_factory=True)


def form_overrides(model: BaseModel) -> dict[str, Any]:
    """The fields the form gave: set, and not at their default; sub-models recursively (JSON values)."""
    out: dict[str, Any] = {}
    for name in model.model_fields_set:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            inner = form_overrides(value)
            if inner:
                out[name] = inner
            continue
        if value != _default(model, name):
            out[name] = model.model_dump(mode="json", include={name})[name]
    return out


def _apply(base: dict[str, Any], overrides: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """`base` (a dumped config) with `overrides` on top; sub-models merge, other values are replaced."""
    for key, value in overrides.items():
        sub = model.model_fields[key].annotation
        if isinstance(value, dict) and isinstance(sub, type) and issubclass(sub, BaseModel) \
                and isinstance(base.get(key), dict):
            base[key] = _apply(dict(base[key]), value, sub)
        else:
            base[key] = value
    return base


def resolve_config(config: ExperimentConfig | None, config_file: str | None) -> ExperimentConfig:
    """The config a flow runs: `config` alone, or `config_file` with the form's given fields on top.

    A missing or invalid file, or a merge that does not validate, is a `ConfigError` naming the file."""
    if config is None:
        config = ExperimentConfig()
    if not config_file:
        return config
    path = Path(config_file).expanduser()
    base = load_config(path)
    overrides = form_overrides(config)
    if not overrides:
        return base
    merged = _apply(base.model_dump(mode="json"), overrides, ExperimentConfig)
    return parse_config(merged, source=f"{path} with the form's fields")
