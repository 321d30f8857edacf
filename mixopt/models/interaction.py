"""How domains interact, seen from a trained model's gradients.

For each domain i, g_i is the gradient of its held-out loss with respect to every parameter (the
mean over a few fixed held-out batches). A small step on domain j's data moves the parameters along
-g_j and so changes domain i's loss by about -lr * g_i . g_j: a positive cosine between g_i and g_j
means that training on j lowers i's loss (helps), a negative one that it raises it (hurts), 0 that it
does neither. The diagonal is the split-half cosine of a domain with itself (the gradient of half of
its batches against the other half): how far the off-diagonal values stand above the noise.

`torch.autograd.grad` computes the gradients without touching `.grad` or the optimizer, so measuring
them during training changes nothing in the run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mixopt.models.module import loss_fn

Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]


def _batch_grads(model: torch.nn.Module, params: list[torch.Tensor], batches: Batches) -> list[torch.Tensor]:
    """Per batch: the gradient of its summed token loss, flattened (float32). Summing them gives the
    gradient of the token-weighted mean up to a positive scale, which cosines ignore."""
    device = params[0].device
    out = []
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        grads = torch.autograd.grad(loss_fn(model(x), y, reduction="sum"), params, allow_unused=True)
        out.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).float()
                              for g, p in zip(grads, params)]))
    return out


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    d = float(a.norm() * b.norm())
    return float(a @ b) / d if d > 0 else float("nan")


def gradient_cosines(model: torch.nn.Module, batches: Sequence[Batches]) -> np.ndarray:
    """(D, D) cosines between the per-domain held-out gradients of `model` (`batches[i]`: domain i's
    held-out `(x, y)` batches). Off the diagonal: cos(g_i, g_j); on it: the split-half cosine of
    domain i (NaN with a single batch). The model is left in the mode it was in."""
    params = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            per = [_batch_grads(model, params, b) for b in batches]
    finally:
        model.train(was_training)
    full = [torch.stack(g).sum(0) for g in per]  # cosines ignore the 1 / tokens scale
    halves = [(torch.stack(g[0::2]).sum(0), torch.stack(g[1::2]).sum(0)) if len(g) > 1 else None for g in per]
    n = len(batches)
    out = np.full((n, n), np.nan)
    for i in range(n):
        h = halves[i]
        out[i, i] = _cos(*h) if h is not None else float("nan")
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = _cos(full[i], full[j])
    return out
