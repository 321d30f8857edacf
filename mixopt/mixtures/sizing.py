"""Parameter counts of the GPT without importing torch (the fit step and the planners only count).

:func:`expected_params` is the closed form of :class:`mixopt.models.gpt.GPT`'s parameters (the same
formula as :func:`mixopt.models.gpt.expected_params`; a test checks both against a built model).
"""

from __future__ import annotations


def expected_params(vocab_size: int, block_size: int, n_layer: int, n_embd: int) -> tuple[int, int]:
    """``(total, non_embedding)`` parameters of the GPT: tied LM head counted once, the non-embedding
    count without the token and position embeddings.

    Per block: QKV 3d^2+3d, attention output d^2+d, MLP 8d^2+5d, two LayerNorms 4d, i.e. 12d^2+13d;
    plus the final LayerNorm 2d, and embeddings (V + T) * d.
    """
    d = int(n_embd)
    non_embedding = int(n_layer) * (12 * d * d + 13 * d) + 2 * d
    return non_embedding + (int(vocab_size) + int(block_size)) * d, non_embedding
