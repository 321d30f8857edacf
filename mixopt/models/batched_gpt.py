"""K independent GPTs of one shape, stored as stacked weights and run with batched kernels.

`BatchedGPT(k, ...)` holds, for every parameter of `mixopt.models.gpt.GPT`, one tensor with a
leading proxy dimension: `wte.weight` is (K, V, D), `blocks.0.attn.qkv.weight` is (K, 3D, D), and so
on, under the same names and in the same order as `GPT.named_parameters()`. Proxy k is exactly the
GPT whose weights are the k-th slices: `from_gpts` stacks K GPTs and `export(k)` returns proxy k's
`GPT` state dict. Nothing mixes the proxies: every op is batched over the leading dimension, so a
proxy's forward and backward pass equal (up to float rounding) what it would compute alone.

The layers: linear layers are one `baddbmm` over all K; the K models' attention is one
`scaled_dot_product_attention` call over a (K * batch, heads, time, head_dim) view (the K models'
heads are just more batch entries); LayerNorm runs one native kernel per proxy on a CPU
(`_LoopLayerNorm`) and, on a GPU, one normalisation plus one `addcmul` for every proxy's scale and
shift; the tied LM head and the loss are fused and chunked (`fused_loss.linear_cross_entropy`), so
the (tokens x vocab) logits are never materialised.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mixopt.models.fused_loss import linear_cross_entropy
from mixopt.models.gpt import GPT


class BatchedLinear(nn.Module):
    """K linear layers: weight (K, out, in), bias (K, out); input (K, N, in) -> (K, N, out)."""

    def __init__(self, k: int, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(k, n_out, n_in))
        self.bias = nn.Parameter(torch.zeros(k, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class _LoopLayerNorm(torch.autograd.Function):
    """LayerNorm of (K, N, D) with per-proxy affine, as K native LayerNorm kernels (CPU).

    On a CPU this is 1.4-2.5x faster (forward + backward) than a shared normalisation followed by a
    broadcast `addcmul`, whose backward needs extra passes and slow reductions over N; and it runs
    exactly the kernel `nn.LayerNorm` runs for a proxy alone.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:  # type: ignore[override]
        k, n, d = x.shape
        y = torch.empty_like(x)
        mean, rstd = x.new_empty(k, n, 1), x.new_empty(k, n, 1)
        for i in range(k):  # out= into slices of the stacked outputs: no copies
            torch.ops.aten.native_layer_norm.out(x[i], [d], weight[i], bias[i], eps,
                                                 out0=y[i], out1=mean[i], out2=rstd[i])
        ctx.save_for_backward(x, weight, bias, mean, rstd)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:  # type: ignore[override]
        x, weight, bias, mean, rstd = ctx.saved_tensors
        grad = grad.contiguous()
        gx, gw, gb = torch.empty_like(x), torch.empty_like(weight), torch.empty_like(bias)
        for i in range(x.shape[0]):
            torch.ops.aten.native_layer_norm_backward.out(
                grad[i], x[i], [x.shape[2]], mean[i], rstd[i], weight[i], bias[i], [True, True, True],
                out0=gx[i], out1=gw[i], out2=gb[i],
            )
        return gx, gw, gb, None


class BatchedLayerNorm(nn.Module):
    """K LayerNorms over the last dimension, each with its own scale and shift: (K, N, D)."""

    def __init__(self, k: int, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(k, d))
        self.bias = nn.Parameter(torch.zeros(k, d))
        self.d = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:  # one batched kernel each: on a GPU kernel launches are what costs
            normed = F.layer_norm(x, (self.d,))
            return torch.addcmul(self.bias.unsqueeze(1), normed, self.weight.unsqueeze(1))
        return _LoopLayerNorm.apply(x.contiguous(), self.weight, self.bias, 1e-5)


class BatchedAttention(nn.Module):
    """K causal self-attentions; the K models' heads go through one SDPA call."""

    def __init__(self, k: int, n_embd: int, n_head: int) -> None:
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_head ({n_head}) must divide n_embd ({n_embd})")
        self.n_head = n_head
        self.qkv = BatchedLinear(k, n_embd, 3 * n_embd)
        self.proj = BatchedLinear(k, n_embd, n_embd)

    def forward(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        k, n, c = x.shape
        t, h = n // batch, self.n_head
        qkv = self.qkv(x).view(k * batch, t, 3, h, c // h)
        q, kk, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))  # (K*B, heads, T, head_dim)
        y = F.scaled_dot_product_attention(q, kk, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(k, n, c))


class BatchedMLP(nn.Module):
    """K position-wise MLPs: Linear(4x) -> GELU -> Linear."""

    def __init__(self, k: int, n_embd: int) -> None:
        super().__init__()
        self.fc = BatchedLinear(k, n_embd, 4 * n_embd)
        self.proj = BatchedLinear(k, 4 * n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class BatchedBlock(nn.Module):
    """K pre-LayerNorm transformer blocks."""

    def __init__(self, k: int, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.ln1 = BatchedLayerNorm(k, n_embd)
        self.attn = BatchedAttention(k, n_embd, n_head)
        self.ln2 = BatchedLayerNorm(k, n_embd)
        self.mlp = BatchedMLP(k, n_embd)

    def forward(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), batch)
        return x + self.mlp(self.ln2(x))


class _Embedding(nn.Module):
    """A stacked embedding table (K, rows, D) under the name `<name>.weight`, as in `GPT`."""

    def __init__(self, k: int, rows: int, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(k, rows, d))


class BatchedGPT(nn.Module):
    """K GPTs of one shape; `loss(idx, targets)` gives each one's mean next-token loss, shape (K,)."""

    def __init__(
        self, k: int, vocab_size: int, block_size: int, n_layer: int = 2, n_embd: int = 64, n_head: int = 4
    ) -> None:
        super().__init__()
        self.k, self.vocab_size, self.block_size = k, vocab_size, block_size
        self.n_layer, self.n_embd, self.n_head = n_layer, n_embd, n_head
        self.wte = _Embedding(k, vocab_size, n_embd)  # tied with the LM head
        self.wpe = _Embedding(k, block_size, n_embd)
        self.blocks = nn.ModuleList(BatchedBlock(k, n_embd, n_head) for _ in range(n_layer))
        self.ln_f = BatchedLayerNorm(k, n_embd)
        self.compiled = False  # see `use_compile`
        self._hidden_fn = self.hidden

    def use_compile(self) -> BatchedGPT:
        """Run `hidden` and the loss's softmax work through torch.compile from now on (fuses the
        many small elementwise kernels of K tiny models; pays on a GPU). The weights are untouched."""
        self.compiled = True
        self._hidden_fn = torch.compile(self.hidden, dynamic=False)
        return self

    @classmethod
    def from_seeds(
        cls, seeds: list[int], vocab_size: int, block_size: int, n_layer: int = 2, n_embd: int = 64, n_head: int = 4
    ) -> BatchedGPT:
        """Stack `GPT(..., seed=s)` for every seed: proxy k starts exactly as that GPT would."""
        gpts = [GPT(vocab_size, block_size, n_layer, n_embd, n_head, seed=s) for s in seeds]
        return cls.from_gpts(gpts)

    @classmethod
    def from_gpts(cls, gpts: list[GPT]) -> BatchedGPT:
        """Stack the weights of K GPTs of the same shape."""
        g = gpts[0]
        attn = g.blocks[0].attn
        model = cls(len(gpts), g.vocab_size, g.block_size, g.n_layer, g.wte.weight.shape[1], attn.n_head)
        states = [x.state_dict() for x in gpts]
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.stack([s[name] for s in states]))
        return model

    def export(self, k: int) -> dict[str, torch.Tensor]:
        """Proxy k's weights as a `GPT` state dict (CPU copies, tied head included)."""
        state = {name: p.detach()[k].cpu().clone() for name, p in self.named_parameters()}
        state["lm_head.weight"] = state["wte.weight"]
        return state

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """Final-LayerNorm hidden states (K, B*T, D) for token ids `idx` (K, B, T)."""
        k, b, t = idx.shape
        if k != self.k:
            raise ValueError(f"expected inputs for {self.k} proxies, got {k}")
        if t > self.block_size:
            raise ValueError(f"sequence length {t} exceeds the model's block size {self.block_size}")
        offsets = torch.arange(k, device=idx.device).view(k, 1, 1) * self.vocab_size
        table = self.wte.weight.view(k * self.vocab_size, self.n_embd)
        x = F.embedding(idx + offsets, table) + self.wpe.weight[:, None, :t]
        x = x.view(k, b * t, self.n_embd)
        for block in self.blocks:
            x = block(x, b)
        return self.ln_f(x)

    def loss(self, idx: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Per-proxy next-token cross-entropy (float32, shape (K,)); "sum" sums over tokens."""
        compiled = self.compiled and torch.is_grad_enabled()  # evaluation stays eager: no recompiles
        h = self._hidden_fn(idx) if compiled else self.hidden(idx)
        return linear_cross_entropy(h, self.wte.weight, targets.reshape(self.k, -1), reduction, compiled=compiled)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (K, B, T, V) — for inspection and tests; training uses `loss`, which never
        materialises them."""
        k, b, t = idx.shape
        logits = torch.bmm(self.hidden(idx), self.wte.weight.transpose(1, 2))
        return logits.view(k, b, t, self.vocab_size)


def per_proxy_grad_norm(params: list[torch.Tensor], k: int) -> torch.Tensor:
    """Each proxy's total gradient 2-norm over `params` (stacked, leading dim K): shape (K,).
    Computed as `clip_grad_norm_` does: the norm of the per-tensor norms."""
    norms = [torch.linalg.vector_norm(p.grad.detach().reshape(k, -1), 2, dim=1) for p in params if p.grad is not None]
    if not norms:
        return torch.zeros(k)
    return torch.linalg.vector_norm(torch.stack(norms, 1), 2, dim=1)


@torch.no_grad()
def clip_grad_norm_per_proxy(params: list[torch.Tensor], k: int, max_norm: float) -> torch.Tensor:
    """Clip each proxy's gradients to norm `max_norm` as `torch.nn.utils.clip_grad_norm_` would
    for that proxy alone (coefficient max_norm / (norm + 1e-6), capped at 1); returns the norms."""
    norms = per_proxy_grad_norm(params, k)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for p in params:
        if p.grad is not None:
            p.grad.mul_(coef.to(p.grad.dtype).view(k, *([1] * (p.grad.dim() - 1))))
    return norms
