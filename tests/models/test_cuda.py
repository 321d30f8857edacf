"""The batched trainer on a CUDA GPU (bf16 autocast): skipped without one.

On a GPU, a proxy's step in a batch of K runs other kernels than alone (batched GEMMs, bf16
rounding in another order), so curves agree to bf16 tolerance, not bit for bit; per-proxy clipping
and divergence masking are exact decisions and are checked as such.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from mixopt.models.batched_gpt import BatchedGPT, clip_grad_norm_per_proxy
from mixopt.models.fused_loss import linear_cross_entropy
from mixopt.models.swarm_trainer import train_batch
from mixopt.models.train import train_run
from mixopt.runspec import RunSpec

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
MakeSpec = Callable[..., RunSpec]
TOKENS = 64 * 30


def _specs(make_spec: MakeSpec, n: int, **overrides: object) -> list[RunSpec]:
    return [
        make_spec(tokens=TOKENS, run_id=f"g{i}", seed=7 * i, weights=[(i + 1) / (n + 1), 1 - (i + 1) / (n + 1)],
                  device="cuda", **overrides)
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("compile_mode", ["on", "off"])
def test_cuda_batch_matches_cuda_solo_runs(make_spec: MakeSpec, compile_mode: str) -> None:
    specs = _specs(make_spec, 4, compile=compile_mode)
    batched = train_batch(specs)
    for spec, b in zip(specs, batched):
        solo = train_run(spec)
        assert b.status == solo.status == "ok", (b.error, solo.error)
        assert [r[:2] for r in b.curve] == [r[:2] for r in solo.curve]
        np.testing.assert_allclose([r[2] for r in b.curve], [r[2] for r in solo.curve], rtol=0.03)
        for name, value in solo.val_losses.items():
            assert b.val_losses[name] == pytest.approx(value, rel=0.03)


def test_cuda_fused_loss_under_autocast_matches_reference() -> None:
    g = torch.Generator(device="cuda").manual_seed(0)
    h = torch.randn(5, 300, 32, device="cuda", generator=g, requires_grad=True)
    w = torch.randn(5, 700, 32, device="cuda", generator=g, requires_grad=True)
    t = torch.randint(0, 700, (5, 300), device="cuda", generator=g)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = linear_cross_entropy(h, w, t, chunk_elements=300 * 700 * 2)
    loss.sum().backward()
    got = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    ref = torch.stack([torch.nn.functional.cross_entropy(h[k] @ w[k].T, t[k]) for k in range(5)])
    ref.sum().backward()
    torch.testing.assert_close(loss, ref.detach(), rtol=0.02, atol=0.02)
    torch.testing.assert_close(got[0], h.grad, rtol=0.05, atol=2e-3)
    torch.testing.assert_close(got[1], w.grad, rtol=0.05, atol=2e-3)


def test_cuda_per_proxy_clipping_matches_torch() -> None:
    model = BatchedGPT.from_seeds([0, 1, 2], vocab_size=40, block_size=8, n_layer=1, n_embd=16, n_head=2).cuda()
    x = torch.randint(0, 40, (3, 2, 8), device="cuda")
    (model.loss(x, x) * torch.tensor([1.0, 50.0, 0.01], device="cuda")).sum().backward()
    params = list(model.parameters())
    expected = []
    for k in range(3):
        grads = [p.grad[k].clone() for p in params]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        expected.append([g * min(1.0, 0.5 / (float(norm) + 1e-6)) for g in grads])
    clip_grad_norm_per_proxy(params, 3, 0.5)
    for k in range(3):
        for p, e in zip(params, expected[k]):
            torch.testing.assert_close(p.grad[k], e)


def test_cuda_nan_fault_spares_the_other_proxies(make_spec: MakeSpec) -> None:
    specs = _specs(make_spec, 3)
    specs[1].fault = "nan@5"
    clean = train_batch([specs[0], specs[2]])
    out = train_batch(specs)
    assert [r.status for r in out] == ["ok", "diverged", "ok"]
    assert out[1].last_good_step == 4
    for a, b in zip([out[0], out[2]], clean):
        np.testing.assert_allclose([r[2] for r in a.curve], [r[2] for r in b.curve], rtol=0.03)
