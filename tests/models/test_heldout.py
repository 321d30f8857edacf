"""Held-out curves, achieved mixtures and gradient cosines measured during training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mixopt.config import ModelConfig, TrainConfig
from mixopt.models.heldout import curve_steps, select_batches
from mixopt.models.train import train_run
from mixopt.runspec import RunSpec
from tests.models.conftest import write_shard


def _chain(rng: np.random.Generator, n: int, low: int, high: int, table: np.ndarray) -> np.ndarray:
    """A first-order chain over [low, high): each token has two likely successors (`table`)."""
    out = np.empty(n, dtype=np.int64)
    t = int(rng.integers(low, high))
    for k in range(n):
        out[k] = t
        t = int(table[t - low, int(rng.random() < 0.3)])
    return out


def planted_shards(folder: Path) -> list:
    """a and b: the same language (one vocabulary, one chain; different draws); c: its own vocabulary
    and chain. Training on a should help b and vice versa; c should help neither."""
    rng = np.random.default_rng(0)
    shared = rng.integers(1, 32, size=(31, 2))
    other = rng.integers(32, 64, size=(32, 2))
    mk = {"a": (1, 32, shared), "b": (1, 32, shared), "c": (32, 64, other)}
    return [write_shard(folder, name, _chain(rng, 6000, lo, hi, tab), _chain(rng, 1200, lo, hi, tab))
            for name, (lo, hi, tab) in mk.items()]


def _spec(tmp_path: Path, shards: list, **fields) -> RunSpec:
    train = TrainConfig(model=ModelConfig(n_layer=1, n_embd=32, n_head=2), tokens=16 * 8 * 60, seq_len=16,
                        batch_size=8, lr=1e-2, eval_batches=4).model_dump()
    return RunSpec(run_id="r", role="final", label="proposed", domains=shards, weights=[1 / 3] * 3, train=train,
                   vocab_size=64, seed=0, out_dir=str(tmp_path / "out"), threads=1, **fields)


def test_curve_steps_are_even_and_end_at_the_last_step():
    assert curve_steps(60, 4) == [15, 30, 45, 60]
    assert curve_steps(3, 8) == [1, 2, 3] and curve_steps(10, 0) == []
    assert select_batches(list(range(32)), 2) == [0, 31] and select_batches([1, 2], 4) == [1, 2]


def test_the_curve_changes_nothing_in_training_and_measures_every_domain(tmp_path):
    shards = planted_shards(tmp_path / "s")
    plain = train_run(_spec(tmp_path, shards))
    measured = train_run(_spec(tmp_path, shards, curve_points=4, curve_eval_batches=2, interaction_points=2))
    assert plain.status == measured.status == "ok", (plain.error, measured.error)
    assert [r[2] for r in plain.curve] == [r[2] for r in measured.curve]  # bit-identical training
    assert plain.val_losses == measured.val_losses
    assert not plain.heldout_curve and not plain.grad_cosines
    assert [p[0] for p in measured.heldout_curve] == [15, 30, 45, 60]
    assert [p[1] for p in measured.heldout_curve] == [15 * 128, 30 * 128, 45 * 128, 60 * 128]
    assert all(set(p[2]) == {"a", "b", "c"} for p in measured.heldout_curve)
    first, last = measured.heldout_curve[0][2], measured.heldout_curve[-1][2]
    assert all(last[d] < first[d] for d in "abc")  # the model learns: held-out losses fall
    assert [c["step"] for c in measured.grad_cosines] == [45, 60] and measured.curve_eval_s > 0
    # the achieved mixture: tokens drawn per domain, all of the run's tokens, near the uniform request
    assert sum(measured.domain_tokens.values()) == measured.tokens == plain.tokens
    frac = np.array([measured.domain_tokens[d] for d in "abc"]) / measured.tokens
    assert np.all(np.abs(frac - 1 / 3) < 0.08) and measured.domain_tokens == plain.domain_tokens


def test_gradient_cosines_recover_the_planted_interaction(tmp_path):
    r = train_run(_spec(tmp_path, planted_shards(tmp_path / "s"), curve_points=4, curve_eval_batches=4,
                        interaction_points=2))
    assert r.status == "ok", r.error
    M = np.mean([c["matrix"] for c in r.grad_cosines], axis=0)
    assert r.grad_cosines[0]["domains"] == ["a", "b", "c"]
    ab, ac, bc = M[0, 1], M[0, 2], M[1, 2]
    assert np.allclose(M, M.T)
    assert ab > 0.5, M  # one language: the gradients point the same way
    assert ab > ac + 0.3 and ab > bc + 0.3, M  # the unrelated domain helps neither
    assert abs(ac) < 0.3 and abs(bc) < 0.3, M
    assert np.all(np.diag(M) > 0), M  # split-half: each domain agrees with itself (halves are noisier)


def test_curve_settings_are_not_part_of_any_id():
    from mixopt.config import ExperimentConfig
    from mixopt.experiment import Experiment
    from mixopt.runspec import DomainShard

    domains = [DomainShard(n, f"/x/{n}.train", f"/x/{n}.val", 1000, 100) for n in "abc"]

    def ids(final):
        cfg = ExperimentConfig.model_validate({"final": final})
        exp = Experiment.create(cfg, domains, 512, "fp")
        spec = exp.run_spec("final", "proposed", [0.2, 0.3, 0.5], 0, cfg.final)
        other = exp.run_spec("final", "natural", [0.2, 0.3, 0.5], 1, cfg.final)
        return exp.experiment_id, spec.run_id, (spec.curve_points, spec.interaction_points, other.interaction_points)

    default = ids({})
    changed = ids({"curve_points": 0, "curve_eval_batches": 5, "interaction_points": 0})
    assert default[:2] == changed[:2]
    assert default[2] == (12, 3, 0) and changed[2] == (0, 0, 0)  # gradients only on the proposal's runs


def test_batched_proxies_measure_the_curve_of_the_sample_and_their_achieved_mixture(tmp_path):
    from mixopt.models.swarm_trainer import train_batch

    shards = planted_shards(tmp_path / "s")
    base = _spec(tmp_path, shards)
    train = {**base.train, "tokens": 16 * 8 * 20, "eval_batches": 2}
    specs = [RunSpec(**{**base.__dict__, "run_id": f"p{k}", "role": "proxy", "label": "design", "train": train,
                        "weights": w, "curve_points": 4 if k == 0 else 0, "curve_eval_batches": 2})
             for k, w in enumerate([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])]
    r0, r1 = train_batch(specs)
    assert r0.status == r1.status == "ok", (r0.error, r1.error)
    assert [p[0] for p in r0.heldout_curve] == [5, 10, 15, 20] and not r1.heldout_curve
    assert r0.heldout_curve[-1][2] == r0.val_losses  # the same windows as the final evaluation here
    for r, main in ((r0, "a"), (r1, "c")):  # each proxy's own draws, near its own request
        assert sum(r.domain_tokens.values()) == r.tokens
        assert r.domain_tokens[main] / r.tokens > 0.65
