"""The GPT: parameter counts, causality, tied weights and deterministic initialisation."""

from __future__ import annotations

import math

import pytest
import torch

from mixopt.models.gpt import GPT, count_params, expected_params


@pytest.mark.parametrize(
    "vocab,block,n_layer,n_embd,n_head",
    [(2048, 128, 2, 64, 4), (2048, 128, 4, 160, 4), (64, 16, 1, 16, 2), (300, 32, 3, 24, 3)],
)
def test_param_counts_match_formula(vocab: int, block: int, n_layer: int, n_embd: int, n_head: int) -> None:
    model = GPT(vocab, block, n_layer=n_layer, n_embd=n_embd, n_head=n_head)
    total, non_emb = count_params(model)
    d = n_embd
    assert non_emb == n_layer * (12 * d * d + 13 * d) + 2 * d
    assert total == non_emb + (vocab + block) * d
    assert (total, non_emb) == expected_params(vocab, block, n_layer, n_embd)


def test_default_sizes() -> None:
    """The proxy and final defaults: the final model has ~10x the proxy's non-embedding params."""
    proxy = count_params(GPT(2048, 128, 2, 64, 4))
    final = count_params(GPT(2048, 128, 4, 160, 4))
    assert proxy == (239_360, 100_096)
    assert final == (1_585_600, 1_237_440)
    assert 10 <= final[1] / proxy[1] <= 15


def test_lm_head_is_tied_to_token_embedding() -> None:
    model = GPT(64, 16, 1, 16, 2)
    assert model.lm_head.weight is model.wte.weight
    assert sum(p.numel() for p in model.parameters()) == count_params(model)[0]


def test_causal_mask_later_tokens_do_not_change_earlier_logits() -> None:
    model = GPT(64, 16, 2, 32, 4, seed=1).eval()
    idx = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))
    changed = idx.clone()
    changed[:, 10:] = (changed[:, 10:] + 7) % 64
    with torch.no_grad():
        a, b = model(idx), model(changed)
    assert a.shape == (2, 16, 64)
    assert torch.equal(a[:, :10], b[:, :10])
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_init_is_deterministic_and_seeded() -> None:
    torch.manual_seed(123)  # the global RNG must not matter
    a = GPT(64, 16, 2, 16, 2, seed=5)
    torch.manual_seed(456)
    b = GPT(64, 16, 2, 16, 2, seed=5)
    c = GPT(64, 16, 2, 16, 2, seed=6)
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), name
        if pa.dim() >= 2:
            assert not torch.equal(pa, pc), name


def test_init_scales() -> None:
    model = GPT(2048, 128, 4, 160, 4, seed=0)
    assert model.wte.weight.std().item() == pytest.approx(0.02, rel=0.05)
    resid = model.blocks[0].mlp.proj.weight.std().item()
    assert resid == pytest.approx(0.02 / math.sqrt(8), rel=0.05)
    assert torch.all(model.blocks[0].ln1.weight == 1) and torch.all(model.blocks[0].attn.qkv.bias == 0)


def test_rejects_too_long_input() -> None:
    with pytest.raises(ValueError, match="block size"):
        GPT(64, 8, 1, 16, 2)(torch.zeros(1, 9, dtype=torch.long))
