"""The component registries: names in catalogue order whatever the import order, one-line errors,
and a newly registered regressor reaching make_regressor, auto's defaults and the config."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from mixopt.config import ConfigError, ExperimentConfig, parse_config
from mixopt.mixtures.auto import AutoRegressor
from mixopt.mixtures.registry import (
    REGRESSORS,
    Registry,
    RegressorEntry,
    candidate_regressors,
    default_candidates,
    make_regressor,
    register_regressor,
)
from mixopt.mixtures.regressors import REGRESSOR_NAMES

ORDER = ["linear", "lightgbm", "mixing_law", "mixing_law_sqrt", "gp", "gp_multi_fidelity", "auto", "data_constrained"]
NEEDS_MORE = ("gp_multi_fidelity", "data_constrained")  # need inputs beyond (X, y)


def test_builtin_regressors_and_their_roles() -> None:
    assert REGRESSORS.names() == ORDER
    assert default_candidates() == ("linear", "lightgbm", "mixing_law", "mixing_law_sqrt", "gp")
    assert candidate_regressors() == list(default_candidates())
    assert REGRESSOR_NAMES == tuple(n for n in ORDER if n not in NEEDS_MORE)  # buildable from (X, y)
    assert REGRESSORS.get("gp_multi_fidelity").needs == ("low_fidelity",)
    assert REGRESSORS.get("data_constrained").needs == ("repetition",)
    assert make_regressor("mixing_law_sqrt", seed=4).features == "linear+sqrt"
    assert make_regressor("mixing_law").features == "linear"


@pytest.mark.parametrize("first", ["mixopt.mixtures.gp", "mixopt.mixtures.auto", "mixopt.mixtures.multifidelity",
                                   "mixopt.mixtures.cv", "mixopt.mixtures.regressors"])
def test_the_order_does_not_depend_on_which_module_is_imported_first(first: str) -> None:
    code = (f"import {first}; from mixopt.mixtures.registry import REGRESSORS; "
            "from mixopt.mixtures.regressors import REGRESSOR_NAMES; print(','.join(REGRESSORS.names())); "
            "print(','.join(REGRESSOR_NAMES))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [",".join(ORDER), ",".join(n for n in ORDER if n not in NEEDS_MORE)]


def test_errors_list_what_is_registered() -> None:
    with pytest.raises(ValueError, match=r"unknown regressor 'xgboost'; registered: linear, lightgbm, .*auto"):
        make_regressor("xgboost")
    with pytest.raises(ValueError, match="needs low_fidelity besides"):
        make_regressor("gp_multi_fidelity")
    with pytest.raises(ValueError, match="takes no"):
        make_regressor("linear", folds=3)
    with pytest.raises(ValueError, match="cannot be an auto candidate"):
        AutoRegressor(candidates=["gp_multi_fidelity"])
    with pytest.raises(ValueError, match="needs unknown inputs"):
        register_regressor("odd", needs=("tokens",))


def test_a_name_registered_from_two_modules_is_refused() -> None:
    @dataclass(frozen=True)
    class Thing:
        name: str

    reg: Registry[Thing] = Registry("thing", ("somewhere.a", "somewhere.b"))
    reg._loaded = True  # nothing to import
    reg.add(Thing("y"), "somewhere.b")
    reg.add(Thing("x"), "somewhere.a")
    reg.add(Thing("z"), "elsewhere")
    assert reg.names() == ["x", "y", "z"]  # catalogue order, then outsiders
    reg.add(Thing("x"), "somewhere.a")  # a reload re-registers in place
    assert reg.names() == ["x", "y", "z"]
    with pytest.raises(ValueError, match="registered twice"):
        reg.add(Thing("x"), "somewhere.b")


class _Mean:
    """Predicts the mean of y."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, X, y):
        self.m_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.m_)

    def predict_std(self, X):
        return None


@pytest.fixture
def mean_regressor(monkeypatch):
    """`mean` registered as a default candidate for the duration of a test."""
    entries = dict(REGRESSORS._entries)
    monkeypatch.setattr(REGRESSORS, "_entries", entries)
    register_regressor("mean", default_candidate=True)(_Mean)
    yield "mean"


def test_a_new_regressor_is_built_chosen_from_and_accepted_by_the_config(mean_regressor) -> None:
    assert "mean" in REGRESSORS.names() and default_candidates()[-1] == "mean"
    X = np.random.default_rng(0).dirichlet(np.ones(3), size=5)
    assert np.allclose(make_regressor("mean").fit(X, np.arange(5.0)).predict(X[:2]), 2.0)
    assert AutoRegressor().candidates[-1] == "mean"
    cfg = parse_config({"regressor": {"kind": "mean", "candidates": ["linear", "mean"]}})
    assert cfg.regressor.kind == "mean" and ExperimentConfig().regressor.candidates[-1] == "mean"


def test_the_default_config_is_unchanged_without_it() -> None:
    assert ExperimentConfig().regressor.candidates == ["linear", "lightgbm", "mixing_law", "mixing_law_sqrt", "gp"]
    assert ExperimentConfig().config_hash() == "5eaa59fd9756156e"
    assert "mean" not in REGRESSORS


@pytest.mark.parametrize("data, line", [
    ({"regressor": {"kind": "xgboost"}},
     "regressor.kind: Value error, unknown regressor 'xgboost'; registered: linear, lightgbm, mixing_law, "
     "mixing_law_sqrt, gp, gp_multi_fidelity, auto"),
    ({"regressor": {"candidates": ["gp", "auto"]}},
     "regressor.candidates: Value error, unknown candidate regressor 'auto'; registered: linear, lightgbm, "
     "mixing_law, mixing_law_sqrt, gp"),
    ({"proposer": {"kind": "argmin"}},
     "proposer.kind: Value error, unknown proposer 'argmin'; registered: regmix, exact, best_seen, bagged"),
])
def test_config_names_are_checked_in_one_line(data, line) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(data, source="exp.yaml")
    assert line in str(e.value).splitlines()[1]


def test_the_schema_stays_a_plain_string_for_forms() -> None:
    props = ExperimentConfig.model_json_schema()["$defs"]
    assert props["RegressorConfig"]["properties"]["kind"]["type"] == "string"
    assert props["RegressorConfig"]["properties"]["candidates"]["items"] == {"type": "string"}
    assert props["ProposerConfig"]["properties"]["kind"]["type"] == "string"


def test_entries_are_frozen_records() -> None:
    e = REGRESSORS.get("gp")
    assert isinstance(e, RegressorEntry) and e.default_candidate and e.candidate and not e.needs
    assert not REGRESSORS.get("auto").candidate and "candidates" in REGRESSORS.get("auto").options
