"""The torch-free parameter count equals the GPT's own formula and a built GPT's count."""

from __future__ import annotations

import pytest

from mixopt.mixtures.sizing import expected_params

SHAPES = [(2048, 128, 2, 64, 4), (300, 64, 3, 96, 4), (64, 16, 1, 16, 2), (300, 32, 3, 24, 3)]


@pytest.mark.parametrize("vocab,block,n_layer,n_embd,n_head", SHAPES)
def test_the_count_matches_the_gpt(vocab: int, block: int, n_layer: int, n_embd: int, n_head: int) -> None:
    pytest.importorskip("torch")
    from mixopt.models.gpt import GPT, count_params
    from mixopt.models.gpt import expected_params as gpt_expected

    ours = expected_params(vocab, block, n_layer, n_embd)
    assert ours == gpt_expected(vocab, block, n_layer, n_embd)
    assert ours == count_params(GPT(vocab, block, n_layer=n_layer, n_embd=n_embd, n_head=n_head))


def test_the_default_proxy_size() -> None:
    assert expected_params(2048, 128, 2, 64) == (239_360, 100_096)
