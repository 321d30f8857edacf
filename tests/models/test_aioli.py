"""Aioli on a real (tiny) run: the trajectory, the budget, LearnParams and restricted mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import mixopt.models.aioli as aioli_mod
from mixopt.config import AioliConfig
from mixopt.models.data import MixtureDataModule
from mixopt.models.train import train_run
from mixopt.runspec import RunResult, RunSpec

MakeSpec = Callable[..., RunSpec]
STEPS = 20  # tokens = 20 * batch 4 * seq 16
CFG = dict(update_steps=6, lp_rounds=1, lp_steps=2, one_hot_factor=1.0, eta=2.0, eval_batches=1, warmup_fraction=0.0)


class SpyCallback(aioli_mod.AioliCallback):
    """Also records, for every step, the weights in force and the domain of each sequence trained."""

    instances: list["SpyCallback"] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.steps: list[tuple[int, list[float], list[int]]] = []
        SpyCallback.instances.append(self)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
        self.steps.append((trainer.global_step, self.data.weights.tolist(), batch[2].tolist()))


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[SpyCallback]:
    SpyCallback.instances = []
    monkeypatch.setattr(aioli_mod, "AioliCallback", SpyCallback)
    return SpyCallback.instances


def _aioli_spec(make_spec: MakeSpec, label: str = "aioli", **cfg: Any) -> RunSpec:
    return make_spec(tokens=STEPS * 64, role="final", label=label, aioli=AioliConfig(**{**CFG, **cfg}).model_dump())


def _on_simplex(w: dict[str, float]) -> bool:
    return all(v >= 0 for v in w.values()) and abs(sum(w.values()) - 1) < 1e-9


def test_aioli_run_records_a_trajectory_on_the_simplex(make_spec: MakeSpec, spy: list[SpyCallback]) -> None:
    r = train_run(_aioli_spec(make_spec))
    assert r.status == "ok", r.error
    # k=2, lp_rounds 1, lp_steps 2 -> 4 LearnParams steps per round; rounds of 6 in 20 steps
    assert [(e["round"], e["step"]) for e in r.trajectory] == [(0, 0), (1, 4), (2, 10), (3, 16)]
    assert r.trajectory[0]["weights"] == {"a": 0.5, "b": 0.5} and r.trajectory[0]["A"] is None
    for e in r.trajectory:
        assert set(e["weights"]) == {"a", "b"} and _on_simplex(e["weights"])
    for e in r.trajectory[1:]:
        A = np.array(e["A"])
        assert A.shape == (2, 2) and np.all(A >= 0) and A.sum() == pytest.approx(1.0)
        assert e["lp_steps"] == 4 and set(e["losses"]) == {"a", "b"}
    w0, w1 = (np.array(list(r.trajectory[i]["weights"].values())) for i in (0, 1))
    assert not np.allclose(w0, w1, atol=1e-6)  # the first round moved the mixture
    RunResult.from_json(r.to_json())  # the trajectory is JSON


def test_unrestricted_aioli_waits_for_its_warmup_fraction(make_spec: MakeSpec, spy: list[SpyCallback]) -> None:
    r = train_run(_aioli_spec(make_spec, warmup_fraction=0.2))  # 20 steps: rounds start at step 4
    assert r.status == "ok", r.error
    assert [(e["round"], e["step"]) for e in r.trajectory][:2] == [(0, 0), (1, 8)]
    assert all(w == [0.5, 0.5] for step, w, _ in spy[0].steps if step < 4)


def test_aioli_trains_the_same_budget_as_a_static_run(make_spec: MakeSpec, spy: list[SpyCallback]) -> None:
    static = train_run(make_spec(tokens=STEPS * 64, role="final", label="stratified"))
    adaptive = train_run(_aioli_spec(make_spec))
    assert static.status == adaptive.status == "ok"
    assert adaptive.steps == static.steps == STEPS and adaptive.tokens == static.tokens == STEPS * 64
    assert [row[0] for row in adaptive.curve] == list(range(STEPS))
    assert [row[3] for row in adaptive.curve] == [row[3] for row in static.curve]  # same LR schedule
    assert static.trajectory == []
    (cb,) = spy
    assert cb.lp_steps_trained == 3 * 4 and len(cb.steps) == STEPS  # LearnParams steps are training steps


def test_learnparams_steps_train_on_the_visited_domain(make_spec: MakeSpec, spy: list[SpyCallback]) -> None:
    """one_hot_factor 1: each LearnParams step must draw every sequence from the visited domain --
    in the step itself, not a prefetched batch late."""
    r = train_run(_aioli_spec(make_spec))
    assert r.status == "ok", r.error
    (cb,) = spy
    for rnd in cb.rounds:
        visits = aioli_mod.visit_orders(2, 1, seed=0, round_index=rnd.index)
        for step in range(rnd.begin, rnd.lp_end):
            j = visits[(step - rnd.begin) // 2]
            s, weights, doms = cb.steps[step]
            assert s == step and weights == np.eye(2)[j].tolist() and doms == [j] * 4
        for step in range(rnd.lp_end, rnd.end):  # the rest of the round trains on the new mixture
            assert cb.steps[step][1] == pytest.approx(list(r.trajectory[rnd.index]["weights"].values()))


def test_restricted_mode_keeps_the_given_mixture_first(make_spec: MakeSpec, spy: list[SpyCallback]) -> None:
    spec = _aioli_spec(make_spec, label="aioli_restricted", restricted_fraction=0.5, update_steps=5)
    spec.weights = [0.9, 0.1]
    r = train_run(spec)
    assert r.status == "ok", r.error
    assert r.steps == STEPS
    (cb,) = spy
    S = STEPS // 2
    assert all(w == pytest.approx([0.9, 0.1]) for _, w, _ in cb.steps[:S])
    assert [(e["round"], e["step"]) for e in r.trajectory] == [(0, 0), (1, S + 4), (2, S + 9)]
    assert r.trajectory[0]["weights"] == pytest.approx({"a": 0.9, "b": 0.1})
    assert cb.steps[S][1] in ([1.0, 0.0], [0.0, 1.0])  # LearnParams starts right at S
    assert cb.lp_steps_trained == 4 + 4


def test_ema_variant_runs(make_spec: MakeSpec) -> None:
    r = train_run(_aioli_spec(make_spec, ema=0.5, one_hot_factor=0.75))
    assert r.status == "ok", r.error
    assert len(r.trajectory) == 4
    assert all(_on_simplex(e["weights"]) for e in r.trajectory)


def test_live_data_module_draws_each_batch_when_consumed(make_spec: MakeSpec) -> None:
    spec = make_spec()
    dm = MixtureDataModule(spec.domains, [1.0, 0.0], 16, 4, seed=0, total_steps=3, live=True)
    it = iter(dm.train_dataloader())
    placeholders = [next(it), next(it)]  # prefetched before the weights change
    assert all(isinstance(p, torch.Tensor) and p.ndim == 0 for p in placeholders)
    dm.set_weights([0.0, 1.0])
    x, y, dom = dm.on_before_batch_transfer(placeholders[0], 0)
    assert x.shape == (4, 16) and dom.tolist() == [1, 1, 1, 1]
    static = MixtureDataModule(spec.domains, [1.0, 0.0], 16, 4, seed=0, total_steps=3)
    batch = next(iter(static.train_dataloader()))
    assert static.on_before_batch_transfer(batch, 0) is batch  # static runs: untouched


def test_aioli_val_windows_differ_from_the_scoring_windows(make_spec: MakeSpec) -> None:
    spec = make_spec()
    dm = MixtureDataModule(spec.domains, [0.5, 0.5], 16, 4, seed=0, total_steps=3, eval_batches=2)
    scoring = {tuple(row.tolist()) for x, _ in dm.val_batches(0) for row in x}
    ours = aioli_mod.aioli_val_batches(dm, 0, n_batches=1)
    assert len(ours) == 1 and ours[0][0].shape == (4, 16)
    assert not scoring & {tuple(row.tolist()) for row in ours[0][0]}


def test_aioli_needs_a_live_data_module(make_spec: MakeSpec) -> None:
    spec = make_spec()
    dm = MixtureDataModule(spec.domains, [0.5, 0.5], 16, 4, seed=0, total_steps=3)
    with pytest.raises(ValueError, match="live"):
        aioli_mod.AioliCallback(dm, AioliConfig(), 3, 0)
