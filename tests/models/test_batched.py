"""Batched proxies: a proxy trained in a batch of K behaves exactly as when trained alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from mixopt.config import ModelConfig, TrainConfig
from mixopt.models.batched_gpt import BatchedGPT, clip_grad_norm_per_proxy
from mixopt.models.fused_loss import linear_cross_entropy
from mixopt.models.gpt import GPT
from mixopt.models.module import GPTModule, loss_fn
from mixopt.models.swarm_sizing import choose_batch_k, estimate_memory_bytes, recommended_threads
from mixopt.models.swarm_trainer import can_batch, train_batch
from mixopt.models.train import train_run
from mixopt.runspec import RunResult, RunSpec

MakeSpec = Callable[..., RunSpec]
TOKENS = 64 * 30  # 30 steps of 4 x 16 tokens


def assert_same_run(solo: RunResult, batched: RunResult, rtol: float = 1e-4) -> None:
    """Same status, counts, curve (steps, tokens, lr exactly; loss to rtol) and held-out losses."""
    assert batched.status == solo.status, batched.error
    assert (batched.steps, batched.tokens, batched.last_good_step) == (solo.steps, solo.tokens, solo.last_good_step)
    assert (batched.n_params, batched.n_params_non_embedding) == (solo.n_params, solo.n_params_non_embedding)
    assert [r[:2] for r in batched.curve] == [r[:2] for r in solo.curve]
    np.testing.assert_allclose([r[3] for r in batched.curve], [r[3] for r in solo.curve], rtol=1e-12)
    np.testing.assert_allclose([r[2] for r in batched.curve], [r[2] for r in solo.curve], rtol=rtol)
    assert batched.val_losses.keys() == solo.val_losses.keys()
    for name, value in solo.val_losses.items():
        assert batched.val_losses[name] == pytest.approx(value, rel=rtol)


def three_specs(make_spec: MakeSpec, **overrides: object) -> list[RunSpec]:
    mixtures = [[0.5, 0.5], [0.9, 0.1], [0.0, 1.0]]
    return [
        make_spec(tokens=TOKENS, run_id=f"p{i}", seed=seed, weights=w, **overrides)
        for i, (seed, w) in enumerate(zip([0, 11, 5], mixtures))
    ]


def test_batched_model_matches_single_gpts() -> None:
    seeds = [0, 3, 9]
    model = BatchedGPT.from_seeds(seeds, vocab_size=50, block_size=12, n_layer=2, n_embd=16, n_head=2)
    x = torch.randint(0, 50, (3, 2, 12))
    y = torch.randint(0, 50, (3, 2, 12))
    logits, losses = model(x), model.loss(x, y)
    for k, seed in enumerate(seeds):
        gpt = GPT(50, 12, n_layer=2, n_embd=16, n_head=2, seed=seed)
        torch.testing.assert_close(logits[k], gpt(x[k]), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(losses[k], loss_fn(gpt(x[k]), y[k]), rtol=1e-5, atol=1e-6)
        exported = GPT(50, 12, n_layer=2, n_embd=16, n_head=2, seed=99)
        exported.load_state_dict(model.export(k))
        torch.testing.assert_close(exported(x[k]), gpt(x[k]))


@pytest.mark.parametrize("chunk", [7, 100, 10**6])
def test_fused_loss_matches_cross_entropy_in_value_and_gradient(chunk: int) -> None:
    h = torch.randn(3, 20, 8, requires_grad=True)
    w = torch.randn(3, 30, 8, requires_grad=True)
    t = torch.randint(0, 30, (3, 20))
    scale = torch.tensor([1.0, 2.0, -0.5])
    (linear_cross_entropy(h, w, t, chunk_elements=chunk) * scale).sum().backward()
    got = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    ref = torch.stack([torch.nn.functional.cross_entropy(h[k] @ w[k].T, t[k]) for k in range(3)])
    (ref * scale).sum().backward()
    torch.testing.assert_close(got[0], h.grad)
    torch.testing.assert_close(got[1], w.grad)
    with torch.no_grad():
        sums = linear_cross_entropy(h, w, t, reduction="sum", chunk_elements=chunk)
    torch.testing.assert_close(sums, ref.detach() * 20)


def test_k3_batch_equals_solo_runs(make_spec: MakeSpec) -> None:
    specs = three_specs(make_spec)
    batched = train_batch(specs)
    assert [r.run_id for r in batched] == ["p0", "p1", "p2"]
    for spec, b in zip(specs, batched):
        assert_same_run(train_run(spec), b)
    assert batched[0].curve != batched[1].curve  # different seeds and mixtures really differ


def test_per_proxy_clipping_equals_solo_clipping(make_spec: MakeSpec) -> None:
    train = TrainConfig(
        model=ModelConfig(n_layer=1, n_embd=16, n_head=2), tokens=TOKENS, seq_len=16, batch_size=4, lr=1e-2,
        eval_batches=2, grad_clip=0.05,
    ).model_dump()  # fmt: skip
    specs = three_specs(make_spec, train=train)[:2]
    unclipped = train_run(make_spec(tokens=TOKENS, run_id="p0", seed=0, weights=[0.5, 0.5]))
    solo = [train_run(s) for s in specs]
    assert [r[2] for r in solo[0].curve] != pytest.approx([r[2] for r in unclipped.curve], rel=1e-3)  # it binds
    for s, b in zip(solo, train_batch(specs)):
        assert_same_run(s, b)


def test_clip_helper_matches_torch_per_model() -> None:
    grads = [torch.randn(3, 4, 5), torch.randn(3, 5) * torch.tensor([[10.0], [0.01], [1.0]])]
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    singles = [[torch.nn.Parameter(torch.zeros_like(g[k])) for g in grads] for k in range(3)]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    for k, ps in enumerate(singles):
        for p, g in zip(ps, grads):
            p.grad = g[k].clone()
    norms = clip_grad_norm_per_proxy(params, 3, max_norm=2.0)
    for k, ps in enumerate(singles):
        assert norms[k] == pytest.approx(float(torch.nn.utils.clip_grad_norm_(ps, 2.0)), rel=1e-5)
        for p, q in zip(params, ps):
            torch.testing.assert_close(p.grad[k], q.grad)


def test_nan_fault_diverges_one_proxy_and_spares_the_others(make_spec: MakeSpec) -> None:
    specs = three_specs(make_spec)
    specs[1].fault = "nan@5"
    batched = train_batch(specs)
    bad = batched[1]
    assert bad.status == "diverged" and bad.error == "non-finite loss at step 5"
    assert bad.last_good_step == 4 and bad.steps == 6 and bad.val_losses == {}
    RunResult.from_json(bad.to_json())
    for spec, b in zip(specs, batched):
        assert_same_run(train_run(spec), b)


def test_raise_fault_fails_the_whole_batch(make_spec: MakeSpec) -> None:
    specs = three_specs(make_spec)
    specs[2].fault = "raise@2"
    for r in train_batch(specs):
        assert r.status == "failed" and r.error is not None
        assert r.error.startswith("RuntimeError: injected fault at step 2")
        assert r.last_good_step == 1 and r.steps == 2 and r.val_losses == {}


def test_an_invalid_spec_fails_alone(make_spec: MakeSpec) -> None:
    specs = three_specs(make_spec)[:2]
    specs[0].weights = [0.0, 0.0]
    bad, good = train_batch(specs)
    assert bad.status == "failed" and bad.error is not None and bad.error.startswith("ValueError")
    assert good.status == "ok", good.error


def test_can_batch_rejects_mismatched_shapes(make_spec: MakeSpec) -> None:
    base = make_spec()
    assert can_batch([base, make_spec(seed=4, weights=[0.2, 0.8])]) and can_batch([base]) and can_batch([])

    def with_train(**changes: object) -> RunSpec:
        return make_spec(train={**base.train, **changes})

    wider = {"n_layer": 1, "n_embd": 32, "n_head": 2}
    for other in (with_train(model=wider), with_train(seq_len=32), with_train(batch_size=8),
                  with_train(tokens=base.train["tokens"] * 2), make_spec(vocab_size=128)):  # fmt: skip
        assert not can_batch([base, other])


def test_mismatched_specs_are_trained_in_groups(make_spec: MakeSpec) -> None:
    a, b = make_spec(run_id="a"), make_spec(run_id="b", train={**make_spec().train, "seq_len": 8})
    results = train_batch([a, b])
    assert [r.run_id for r in results] == ["a", "b"] and all(r.status == "ok" for r in results)
    assert_same_run(train_run(b), results[1])


@pytest.mark.slow
def test_checkpoint_and_wandb_per_proxy(make_spec: MakeSpec, tmp_path: Path) -> None:
    specs = [make_spec(run_id=f"w{i}", seed=i, wandb_mode="offline", save_checkpoint=True) for i in range(2)]
    results = train_batch(specs)
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    runs = list((tmp_path / "out" / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(any(r.rglob("*.wandb")) for r in runs)
    module = GPTModule.load_from_checkpoint(results[1].checkpoint, map_location="cpu")
    assert module.hparams.seed == 1 and results[1].checkpoint.endswith("w1.ckpt")


def test_choose_batch_k_is_sane() -> None:
    cpu = [choose_batch_k(n, "cpu", free_memory_bytes=16 * 2**30) for n in (30_000, 240_000, 1_000_000, 20_000_000)]
    assert all(isinstance(k, int) and k >= 1 for k in cpu)
    assert cpu == sorted(cpu, reverse=True) and cpu[0] > 1  # smaller proxies: more of them at once
    gpu = choose_batch_k(240_000, "cuda", free_memory_bytes=70 * 2**30)
    assert gpu >= choose_batch_k(240_000, "cpu", free_memory_bytes=70 * 2**30)
    assert choose_batch_k(1_000_000, "cuda", free_memory_bytes=2**20) == 1  # no room: one at a time
    k = choose_batch_k(240_000, "cuda", free_memory_bytes=4 * 2**30)
    assert estimate_memory_bytes(240_000, k) <= 4 * 2**30
    assert 1 <= recommended_threads(30_000, "cpu") <= max(1, torch.get_num_threads(), 1 << 10)
    assert recommended_threads(240_000, "cuda") >= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.gpu
def test_cuda_batch_trains_close_to_cpu(make_spec: MakeSpec) -> None:
    specs = three_specs(make_spec)
    gpu = train_batch([RunSpec(**{**s.__dict__, "device": "cuda"}) for s in specs])
    cpu = train_batch(specs)
    for g, c in zip(gpu, cpu):
        assert g.status == "ok", g.error
        np.testing.assert_allclose([r[2] for r in g.curve], [r[2] for r in c.curve], rtol=0.05)
        assert g.val_losses["a"] == pytest.approx(c.val_losses["a"], rel=0.05)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_compiled_loss_route_matches_cross_entropy(monkeypatch: pytest.MonkeyPatch, reduction: str) -> None:
    """The route `compiled=True` takes (per-chunk `_chunk_grad`), checked eagerly: compiling it only
    fuses kernels, so its algebra is what must be right."""
    from mixopt.models import fused_loss

    monkeypatch.setattr(fused_loss, "_compiled", lambda: fused_loss._chunk_grad)
    h = torch.randn(4, 30, 8, requires_grad=True)
    w = torch.randn(4, 50, 8, requires_grad=True)
    t = torch.randint(0, 50, (4, 30))
    scale = torch.tensor([1.0, 3.0, -0.5, 0.0])
    (linear_cross_entropy(h, w, t, reduction, chunk_elements=30 * 50 * 2 + 7, compiled=True) * scale).sum().backward()
    got = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    red = "mean" if reduction == "mean" else "sum"
    ref = torch.stack([torch.nn.functional.cross_entropy(h[k] @ w[k].T, t[k], reduction=red) for k in range(4)])
    (ref * scale).sum().backward()
    torch.testing.assert_close(got[0], h.grad)
    torch.testing.assert_close(got[1], w.grad)


@pytest.mark.slow
def test_batch_in_a_child_process_equals_in_process(make_spec: MakeSpec, tmp_path: Path) -> None:
    from mixopt.models.launch import run_batch_in_subprocess

    specs = three_specs(make_spec, threads=1)
    here = train_batch(specs)
    child = run_batch_in_subprocess(specs, tmp_path / "work")
    for a, b in zip(here, child):
        assert_same_run(a, b)


@pytest.mark.slow
def test_a_killed_batch_child_fails_every_proxy_with_the_reason(make_spec: MakeSpec, tmp_path: Path) -> None:
    from mixopt.models.launch import run_batch_in_subprocess

    specs = three_specs(make_spec, threads=1)
    specs[2].fault = "exit@3"
    out = run_batch_in_subprocess(specs, tmp_path / "work")
    assert [r.status for r in out] == ["failed"] * 3
    assert all("exited with code 137" in r.error for r in out)
    assert (tmp_path / "work" / f"{specs[0].run_id}.batch.stderr.log").exists()
