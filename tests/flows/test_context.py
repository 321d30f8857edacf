"""experiment_run: the prepared experiment, and the warehouse writer closed on the way out (also on errors)."""

import pytest

from mixopt.tasks import context
from tests.helpers import tiny_config


def test_experiment_run_closes_the_writer_even_on_error(tmp_path, monkeypatch):
    cfg = tiny_config(tmp_path)
    closed, prepared = [], []
    monkeypatch.setattr(context, "prepare_experiment_task", lambda c: prepared.append(c) or "exp")
    monkeypatch.setattr(context, "close_writer", closed.append)
    with context.experiment_run(cfg) as exp:
        assert exp == "exp" and prepared == [cfg] and closed == []
    assert closed == [cfg.runtime.warehouse]
    with pytest.raises(RuntimeError, match="boom"):
        with context.experiment_run(cfg):
            raise RuntimeError("boom")
    assert closed == [cfg.runtime.warehouse] * 2


def test_a_failed_preparation_still_closes_the_writer(tmp_path, monkeypatch):
    cfg = tiny_config(tmp_path)
    closed = []

    def fails(c):
        raise ValueError("bad corpus")

    monkeypatch.setattr(context, "prepare_experiment_task", fails)
    monkeypatch.setattr(context, "close_writer", closed.append)
    with pytest.raises(ValueError, match="bad corpus"):
        with context.experiment_run(cfg):
            pytest.fail("the body must not run")
    assert closed == [cfg.runtime.warehouse]
