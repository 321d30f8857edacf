"""A small decoder-only transformer (GPT) in plain torch.

Token embedding tied with the LM head, learned position embedding, pre-LayerNorm blocks with causal
self-attention (`F.scaled_dot_product_attention`) and a 4x GELU MLP, and a final LayerNorm. No
dropout: proxies and final runs see each token only a few times.

Initialisation is deterministic given `seed` and does not touch torch's global RNG, so models built
in concurrent threads of one process are reproducible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with a fused QKV projection."""

    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_head ({n_head}) must divide n_embd ({n_embd})")
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        # (b, t, c) -> (b, heads, t, head_dim)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).contiguous().view(b, t, c))


class MLP(nn.Module):
    """Position-wise feed-forward network: Linear(4x) -> GELU -> Linear."""

    def __init__(self, n_embd: int) -> None:
        super().__init__()
        self.fc = nn.Linear(n_embd, 4 * n_embd)
        self.proj = nn.Linear(4 * n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head)
        self.ln2 = nn.LayerNorm(n_embd)
        self.mlp = MLP(n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """A GPT language model; `forward(idx)` returns logits of shape (batch, time, vocab)."""

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_layer: int = 2,
        n_embd: int = 64,
        n_head: int = 4,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.block_size = block_size
        self.n_layer = n_layer
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying
        self.reset_parameters(seed)

    @torch.no_grad()
    def reset_parameters(self, seed: int) -> None:
        """Initialise every weight from `seed`: normal(0, 0.02), residual projections scaled by
        1/sqrt(2 * n_layer), biases zero, LayerNorms identity."""
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        resid_std = 0.02 / math.sqrt(2 * self.n_layer)
        for name, p in self.named_parameters():  # deterministic order; tied weight appears once
            if p.dim() >= 2:
                std = resid_std if name.endswith(("attn.proj.weight", "mlp.proj.weight")) else 0.02
                p.copy_(torch.randn(p.shape, generator=gen) * std)
            elif name.startswith("ln") or ".ln" in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            else:
                p.zero_()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits for every position of `idx` (batch, time) of token ids."""
        t = idx.shape[1]
        if t > self.block_size:
            raise ValueError(f"sequence length {t} exceeds the model's block size {self.block_size}")
        pos = torch.arange(t, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def count_params(model: GPT) -> tuple[int, int]:
    """(total, non_embedding) parameter counts; tied weights count once, and the non-embedding
    count excludes the token and position embeddings."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.wte.weight.numel() + model.wpe.weight.numel()
    return total, total - embedding


def expected_params(vocab_size: int, block_size: int, n_layer: int, n_embd: int) -> tuple[int, int]:
    """The closed-form parameter counts of `GPT` (same convention as `count_params`).

    Per block: QKV 3d^2+3d, attention output d^2+d, MLP 8d^2+5d, two LayerNorms 4d, i.e. 12d^2+13d;
    plus the final LayerNorm 2d, and embeddings (V + T) * d.
    """
    d = n_embd
    non_embedding = n_layer * (12 * d * d + 13 * d) + 2 * d
    return non_embedding + (vocab_size + block_size) * d, non_embedding
