"""Divergence to +-inf is handled like NaN: status "diverged", the last good step, no held-out losses.

The NaN case end to end (recorded, excluded from every fit, shown in the report) is
tests/flows/test_search.py::test_a_diverging_proxy_is_recorded_and_excluded; NaN at the unit level
is tests/models/test_train.py::test_nan_fault_diverges; diverged runs are left out of the training
table by tests/warehouse/test_store.py::test_failed_and_diverged_runs_are_not_training_data.
"""

from __future__ import annotations

import numpy as np
import pytest

from mixopt.config import ModelConfig, TrainConfig
from mixopt.models.module import GPTModule
from mixopt.models.train import train_run
from mixopt.runspec import DomainShard, RunResult, RunSpec


def _spec(tmp_path) -> RunSpec:
    rng = np.random.default_rng(0)
    domains = []
    for name, (lo, hi) in {"a": (1, 32), "b": (32, 64)}.items():
        train, val = tmp_path / f"{name}.train.bin", tmp_path / f"{name}.val.bin"
        rng.integers(lo, hi, 4000).astype(np.uint16).tofile(train)
        rng.integers(lo, hi, 600).astype(np.uint16).tofile(val)
        domains.append(DomainShard(name, str(train), str(val), 4000, 600))
    train_cfg = TrainConfig(model=ModelConfig(n_layer=1, n_embd=16, n_head=2), tokens=16 * 4 * 8, seq_len=16,
                            batch_size=4, lr=1e-2, eval_batches=2)
    return RunSpec(run_id="inf", role="proxy", label="design", domains=domains, weights=[0.5, 0.5],
                   train=train_cfg.model_dump(), vocab_size=64, seed=0, out_dir=str(tmp_path / "out"), threads=1)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_an_infinite_loss_diverges_with_its_last_good_step(tmp_path, monkeypatch, sign):
    original = GPTModule.training_step

    def blows_up_at_step_3(self, batch, batch_idx):
        loss = original(self, batch, batch_idx)
        return loss * (sign * float("inf")) if self.global_step == 3 else loss

    monkeypatch.setattr(GPTModule, "training_step", blows_up_at_step_3)
    r = train_run(_spec(tmp_path))
    assert r.status == "diverged" and r.error == "non-finite loss at step 3"
    assert r.last_good_step == 2 and [row[0] for row in r.curve] == [0, 1, 2]
    assert r.val_losses == {}
    assert RunResult.from_json(r.to_json()) == r  # no inf leaks into the stored curve
