"""train_run and run_in_subprocess: reproducibility, learning, faults, and results."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from mixopt.config import SwarmConfig
from mixopt.models.launch import run_in_subprocess
from mixopt.models.module import GPTModule, lr_lambda
from mixopt.models.train import parse_fault, train_run
from mixopt.runspec import DomainShard, RunResult, RunSpec

MakeSpec = Callable[..., RunSpec]


def test_ok_run_fills_the_result(make_spec: MakeSpec) -> None:
    r = train_run(make_spec(tokens=500))  # 500 / (4 * 16) -> 8 steps
    assert r.status == "ok", r.error
    assert r.steps == 8 and r.tokens == 8 * 64 and r.last_good_step == 7
    assert [row[0] for row in r.curve] == list(range(8))
    assert [row[1] for row in r.curve] == [64 * (i + 1) for i in range(8)]
    assert all(math.isfinite(row[2]) for row in r.curve)
    assert set(r.val_losses) == {"a", "b"} and all(0 < v < 10 for v in r.val_losses.values())
    assert r.n_params == 64 * 16 + 16 * 16 + (12 * 256 + 13 * 16) + 32
    assert r.n_params_non_embedding == 12 * 256 + 13 * 16 + 32
    assert r.wall_s > 0 and r.tokens_per_s > 0 and r.error is None


def test_lr_schedule_warms_up_then_decays_to_ten_percent() -> None:
    f = lr_lambda(100)
    assert f(0) == pytest.approx(0.2) and f(4) == pytest.approx(1.0)  # warm-up over 5 steps
    assert f(99) == pytest.approx(0.1)
    assert all(f(s) >= f(s + 1) for s in range(4, 99))
    assert lr_lambda(3)(0) == pytest.approx(1.0)  # at least one warm-up step


def test_curve_records_the_lr_schedule(make_spec: MakeSpec) -> None:
    r = train_run(make_spec(tokens=64 * 20))
    lrs = [row[3] for row in r.curve]
    assert lrs[0] == pytest.approx(1e-2) and lrs[-1] == pytest.approx(1e-3)


def test_same_seed_same_curve_different_seed_different(make_spec: MakeSpec) -> None:
    a, b = train_run(make_spec()), train_run(make_spec())
    c = train_run(make_spec(seed=1))
    assert a.curve == b.curve and a.val_losses == b.val_losses
    assert [row[2] for row in a.curve] != [row[2] for row in c.curve]


def test_training_on_a_repetitive_shard_reduces_loss(make_spec: MakeSpec, repetitive_shard: list[DomainShard]) -> None:
    r = train_run(make_spec(tokens=64 * 40, domains=repetitive_shard, weights=[1.0]))
    assert r.status == "ok", r.error
    first = sum(row[2] for row in r.curve[:3]) / 3
    assert first > 3.5  # about ln(64) at init
    assert r.curve[-1][2] < 0.5 * first
    assert r.val_losses["rep"] < 0.5 * first


def test_subclass_train_keys_are_ignored(make_spec: MakeSpec) -> None:
    train = SwarmConfig(tokens=128, seq_len=16, batch_size=4).model_dump()
    assert "n_proxies" in train
    assert train_run(make_spec(train=train)).status == "ok"


def test_nan_fault_diverges(make_spec: MakeSpec) -> None:
    r = train_run(make_spec(fault="nan@3"))
    assert r.status == "diverged"
    assert r.last_good_step == 2 and [row[0] for row in r.curve] == [0, 1, 2]
    assert r.val_losses == {}
    assert r.steps == 4  # training stopped right after the bad step
    RunResult.from_json(r.to_json())  # no NaN leaks into the JSON curve


def test_raise_fault_fails_with_message(make_spec: MakeSpec) -> None:
    r = train_run(make_spec(fault="raise@2"))
    assert r.status == "failed"
    assert r.error is not None and r.error.startswith("RuntimeError: injected fault at step 2")
    assert "train.py" in r.error  # names the last traceback frame
    assert r.last_good_step == 1 and r.val_losses == {}


def test_bad_inputs_fail_without_raising(make_spec: MakeSpec) -> None:
    assert "fault" in (train_run(make_spec(fault="boom@1")).error or "")
    r = train_run(make_spec(weights=[0.0, 0.0]))
    assert r.status == "failed" and r.error is not None and r.error.startswith("ValueError")
    assert parse_fault(None) is None and parse_fault("exit@7") == ("exit", 7)


def test_checkpoint_is_saved_and_loads(make_spec: MakeSpec, tmp_path: Path) -> None:
    r = train_run(make_spec(save_checkpoint=True, run_id="ck"))
    assert r.status == "ok", r.error
    assert r.checkpoint == str(tmp_path / "out" / "checkpoints" / "ck.ckpt")
    assert sorted(p.name for p in (tmp_path / "out" / "checkpoints").iterdir()) == ["ck.ckpt"]
    module = GPTModule.load_from_checkpoint(r.checkpoint, map_location="cpu")
    assert module.hparams.n_embd == 16
    data = torch.load(r.checkpoint, map_location="cpu", weights_only=False)
    assert data["global_step"] == r.steps


def test_result_json_round_trips(make_spec: MakeSpec) -> None:
    r = train_run(make_spec())
    assert RunResult.from_json(r.to_json()) == r
    spec = make_spec()
    assert RunSpec.from_json(spec.to_json()) == spec


@pytest.mark.slow
def test_subprocess_matches_in_process(make_spec: MakeSpec, tmp_path: Path) -> None:
    spec = make_spec(run_id="sub")
    local = train_run(spec)
    remote = run_in_subprocess(spec, tmp_path / "work", timeout_s=120)
    assert remote.status == "ok", remote.error
    assert remote.val_losses == local.val_losses
    assert remote.curve == local.curve
    assert (tmp_path / "work" / "sub.result.json").exists()


@pytest.mark.slow
def test_killed_subprocess_gives_failed_with_exit_code(make_spec: MakeSpec, tmp_path: Path) -> None:
    r = run_in_subprocess(make_spec(run_id="killed", fault="exit@2"), tmp_path / "work", timeout_s=120)
    assert r.status == "failed" and r.run_id == "killed"
    assert r.error is not None and "exit" in r.error and "137" in r.error


def test_wandb_offline_writes_a_run(make_spec: MakeSpec, tmp_path: Path) -> None:
    r = train_run(make_spec(wandb_mode="offline", run_id="wb"))
    assert r.status == "ok", r.error
    runs = list((tmp_path / "out" / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))
