"""Tied LM head + next-token cross-entropy for K stacked models, fused and computed in chunks.

The plain route (`logits = h @ W^T`, then `F.cross_entropy`) materialises a (tokens x vocab) logits
tensor and its gradient per model: 16 MB per proxy at vocab 2048 and 2048 tokens per step. On a CPU
that is pure memory traffic (and page faults for every fresh large allocation); measured at the
default proxy size, `log_softmax` and its backward took about a quarter of the step.

`linear_cross_entropy(h, w, targets)` instead walks over chunks of rows small enough to stay in
cache: it computes a chunk of logits, their softmax and the loss, turns the softmax into the
gradient of the loss w.r.t. the logits (softmax minus one-hot), and immediately folds that into the
gradients w.r.t. the hidden states and the head weight. The forward pass thus computes the
gradients too (as Liger's fused linear cross-entropy does); the backward pass only scales them by the
incoming gradient of each model's loss. Without grad mode it only computes losses.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

CHUNK_ELEMENTS = {"cpu": 1 << 18, "cuda": 1 << 25}
"""Target logits per chunk: on the CPU 1 MiB in float32 (half a core's L2 cache here; 2^17 to 2^18
measured best at the default and small proxy sizes), on a GPU large enough for few, big kernels."""


def _chunks(k: int, n: int, vocab: int, elements: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield (k0, k1, r0, r1): proxies [k0, k1) and rows [r0, r1) with about `elements` logits.

    Long rows are split per proxy; when one proxy's rows are fewer than a chunk holds, several whole
    proxies go into one chunk (so small models still make few, larger matmuls).
    """
    rows = max(1, elements // max(1, vocab))
    if n >= rows:
        for k0 in range(k):
            for r0 in range(0, n, rows):
                yield k0, k0 + 1, r0, min(n, r0 + rows)
    else:
        per = max(1, rows // n)
        for k0 in range(0, k, per):
            yield k0, min(k, k0 + per), 0, n


def _chunk_grad(logits: torch.Tensor, tc: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One chunk's per-row loss (g, c, 1) in float32 and the loss's gradient w.r.t. the logits
    (softmax minus one-hot, times `scale`) in the logits' dtype. Written as plain tensor algebra so
    that torch.compile fuses it into two kernels (a row reduction and one pointwise pass), instead of
    the eager route's float32 copy, softmax, log-sum-exp, scatter and scale over the whole chunk."""
    x = logits.float()
    lse = torch.logsumexp(x, -1, keepdim=True)
    rows = lse - x.gather(-1, tc)
    onehot = torch.arange(x.shape[-1], device=x.device) == tc
    grad = (torch.exp(x - lse) - onehot.to(x.dtype)) * scale
    return rows, grad.to(logits.dtype)


_compiled_chunk_grad: object | None = None


def _compiled() -> object:
    """`_chunk_grad` under torch.compile, built on first use (shapes fixed: a few chunk shapes)."""
    global _compiled_chunk_grad
    if _compiled_chunk_grad is None:
        _compiled_chunk_grad = torch.compile(_chunk_grad, dynamic=False)
    return _compiled_chunk_grad


class _LinearCrossEntropy(torch.autograd.Function):
    """Autograd wrapper: the forward pass returns per-model losses and keeps their gradients."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        h: torch.Tensor,
        w: torch.Tensor,
        targets: torch.Tensor,
        reduction: str,
        elements: int,
        compiled: bool,
    ) -> torch.Tensor:
        if compiled:
            loss, grad_h, grad_w = _forward_compiled(h, w, targets, reduction, elements)
        else:
            loss, grad_h, grad_w = _forward(h, w, targets, reduction, elements, need_grad=True)
        ctx.save_for_backward(grad_h, grad_w)
        return loss

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_loss: torch.Tensor):  # type: ignore[override]
        grad_h, grad_w = ctx.saved_tensors
        if grad_h.is_cuda or not bool((grad_loss == 1).all()):  # usual case: d(sum of losses) = 1
            scale = grad_loss.view(-1, 1, 1)
            grad_h.mul_(scale.to(grad_h.dtype))  # the saved gradients are this Function's own
            grad_w.mul_(scale.to(grad_w.dtype))
        return grad_h, grad_w, None, None, None, None


@torch.no_grad()
def _forward(
    h: torch.Tensor,
    w: torch.Tensor,
    targets: torch.Tensor,
    reduction: str,
    elements: int,
    need_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    k, n, _ = h.shape
    vocab = w.shape[1]
    loss = torch.zeros(k, dtype=torch.float32, device=h.device)
    grad_h = torch.empty(h.shape, dtype=torch.float32, device=h.device) if need_grad else None
    grad_w = torch.zeros(w.shape, dtype=torch.float32, device=w.device) if need_grad else None
    scale = 1.0 / n if reduction == "mean" else 1.0
    h32, w32 = h.float(), w.float()
    wt = w.transpose(1, 2)
    for k0, k1, r0, r1 in _chunks(k, n, vocab, elements):
        hc = h[k0:k1, r0:r1]
        tc = targets[k0:k1, r0:r1].unsqueeze(-1)
        logits = torch.bmm(hc, wt[k0:k1]).float()  # (g, c, V); float32 even under autocast
        probs = torch.softmax(logits, -1)  # one fused pass (cheaper than max, exp, sum, div)
        rows = _target_nll(logits, probs, tc)
        loss[k0:k1] += rows.sum(dim=(1, 2))
        if not need_grad:
            continue
        probs.scatter_add_(-1, tc, torch.full_like(rows, -1.0))  # softmax - one-hot
        if scale != 1.0:
            probs.mul_(scale)
        # Rows [r0, r1) of one proxy, or whole proxies: the slices are contiguous, so out= works.
        torch.bmm(probs, w32[k0:k1], out=grad_h[k0:k1, r0:r1])
        grad_w[k0:k1].baddbmm_(probs.transpose(1, 2), h32[k0:k1, r0:r1])
    if grad_h is not None and grad_h.dtype != h.dtype:
        grad_h = grad_h.to(h.dtype)
    if grad_w is not None and grad_w.dtype != w.dtype:
        grad_w = grad_w.to(w.dtype)
    return loss.mul_(scale), grad_h, grad_w


@torch.no_grad()
def _forward_compiled(
    h: torch.Tensor, w: torch.Tensor, targets: torch.Tensor, reduction: str, elements: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`_forward` with gradients, the per-chunk softmax work in one compiled `_chunk_grad` (for
    CUDA): the logits' gradient stays in the logits' dtype (bf16 under autocast), so the two gradient
    GEMMs run on bf16 tensor cores; the head's gradient is accumulated in float32. (Loss-only calls
    take the eager `_forward`: they skip the gradient work that `_chunk_grad` always does.)"""
    k, n, _ = h.shape
    vocab = w.shape[1]
    loss = torch.zeros(k, dtype=torch.float32, device=h.device)
    grad_h = torch.empty(h.shape, dtype=h.dtype, device=h.device)
    grad_w = torch.zeros(w.shape, dtype=torch.float32, device=w.device)
    scale = 1.0 / n if reduction == "mean" else 1.0
    wt = w.transpose(1, 2)
    chunk_grad = _compiled()
    for k0, k1, r0, r1 in _chunks(k, n, vocab, elements):
        hc = h[k0:k1, r0:r1]
        logits = torch.bmm(hc, wt[k0:k1])  # bf16 under autocast
        rows, g = chunk_grad(logits, targets[k0:k1, r0:r1].unsqueeze(-1), scale)  # type: ignore[operator]
        loss[k0:k1] += rows.sum(dim=(1, 2))
        grad_h[k0:k1, r0:r1] = torch.bmm(g, w[k0:k1].to(g.dtype))
        grad_w[k0:k1] += torch.bmm(g.transpose(1, 2), hc.to(g.dtype))
    if grad_w.dtype != w.dtype:
        grad_w = grad_w.to(w.dtype)
    return loss.mul_(scale), grad_h, grad_w


def _target_nll(logits: torch.Tensor, probs: torch.Tensor, tc: torch.Tensor) -> torch.Tensor:
    """-log softmax at the targets, (g, c, 1). On the CPU it is -log(p_target), exact unless
    p_target underflows, which is rare enough to recompute those rows from the log-sum-exp; on a GPU
    the log-sum-exp pass is cheap and avoids a host sync."""
    if logits.is_cuda:
        return torch.logsumexp(logits, -1, keepdim=True).sub_(logits.gather(-1, tc))
    p = probs.gather(-1, tc)
    rows = p.log().neg_()
    tiny = p < 1e-30
    if bool(tiny.any()):
        exact = torch.logsumexp(logits, -1, keepdim=True).sub_(logits.gather(-1, tc))
        rows = torch.where(tiny, exact, rows)
    return rows


def linear_cross_entropy(
    h: torch.Tensor,
    w: torch.Tensor,
    targets: torch.Tensor,
    reduction: str = "mean",
    chunk_elements: int | None = None,
    compiled: bool = False,
) -> torch.Tensor:
    """Per-model next-token loss of the tied head: `h` (K, N, D), `w` (K, V, D), `targets` (K, N).

    Returns a float32 tensor (K,): the mean (or, with reduction "sum", the summed) cross-entropy of
    `h[k] @ w[k].T` against `targets[k]`. Differentiable w.r.t. `h` and `w`. `chunk_elements`
    (logits per chunk) defaults to `CHUNK_ELEMENTS` of the device. `compiled` runs each chunk's
    softmax and gradient work through torch.compile (`_chunk_grad`; used on CUDA) when gradients
    are needed; loss-only calls are eager either way.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    if h.dim() != 3 or w.dim() != 3 or targets.shape != h.shape[:2] or w.shape[0] != h.shape[0]:
        raise ValueError(f"shape mismatch: h {tuple(h.shape)}, w {tuple(w.shape)}, targets {tuple(targets.shape)}")
    if chunk_elements is None:
        chunk_elements = CHUNK_ELEMENTS["cuda" if h.is_cuda else "cpu"]
    if torch.is_grad_enabled() and (h.requires_grad or w.requires_grad):
        return _LinearCrossEntropy.apply(h, w, targets, reduction, chunk_elements, compiled)
    return _forward(h, w, targets, reduction, chunk_elements, need_grad=False)[0]
