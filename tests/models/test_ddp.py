"""A final run with devices > 1 trains with Lightning's DDP in its own process (gloo on CPU)."""

import pytest

from mixopt.models.launch import run_in_subprocess

pytestmark = pytest.mark.slow


def test_ddp_final_run_keeps_the_token_budget(make_spec, tmp_path):
    tokens = 16 * 4 * 8  # 8 steps of batch 4 x seq 16 on one device
    single = run_in_subprocess(make_spec(tokens=tokens), tmp_path / "one", timeout_s=300)
    ddp = run_in_subprocess(make_spec(tokens=tokens, devices=2), tmp_path / "two", timeout_s=300)
    assert single.status == "ok", single.error
    assert ddp.status == "ok", ddp.error
    assert single.steps == 8 and ddp.steps == 4  # two ranks, each a batch per step
    assert ddp.tokens == single.tokens == tokens
    assert set(ddp.val_losses) == set(single.val_losses)
    assert ddp.val_losses != single.val_losses  # the ranks drew different batches than one device did
