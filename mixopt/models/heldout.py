"""The held-out curve of one run: every domain's held-out loss at regular token counts.

The training loss of a run is measured on its own mixture, so curves of different mixtures measure
different things. `HeldoutCurve` instead evaluates a small fixed set of held-out windows of every
domain (`select_batches`: evenly spread over the run's final evaluation windows, the same for every
run of the same shards, sequence length and batch size) after `points` evenly spaced steps; the
last `interaction_points` of them also measure the per-domain gradient cosines
(`mixopt.models.interaction`). Evaluation runs in eval mode without touching the optimizer, the
data stream or any random generator, so a run's training and final losses are the same with or
without it; `seconds` is what it cost.
"""

from __future__ import annotations

import time
from typing import Any

import lightning.pytorch as pl
import torch

from mixopt.models.data import MixtureDataModule
from mixopt.models.interaction import gradient_cosines


def curve_steps(total_steps: int, points: int) -> list[int]:
    """The step counts after which the curve is measured: `points` evenly spaced, the last at the end."""
    if points <= 0 or total_steps <= 0:
        return []
    return sorted({max(1, round(total_steps * (i + 1) / points)) for i in range(points)})


def select_batches(batches: list[Any], n: int) -> list[Any]:
    """`n` of `batches`, evenly spread (all of them when there are no more than `n`)."""
    if len(batches) <= n:
        return list(batches)
    return [batches[round(i * (len(batches) - 1) / max(1, n - 1))] for i in range(n)]


class HeldoutCurve(pl.Callback):
    """Measures `curve` ([step, tokens, {domain: loss}]) and `cosines` during training."""

    def __init__(self, data: MixtureDataModule, total_steps: int, tokens_per_step: int, points: int,
                 eval_batches: int = 2, interaction_points: int = 0) -> None:
        self.data = data
        self.steps = curve_steps(total_steps, points)
        self.grad_steps = set(self.steps[-interaction_points:]) if interaction_points > 0 else set()
        self.tokens_per_step = tokens_per_step
        self.eval_batches = eval_batches
        self.curve: list[list[Any]] = []
        self.cosines: list[dict[str, Any]] = []
        self.seconds = 0.0
        self._batches: list[list[tuple[torch.Tensor, torch.Tensor]]] | None = None

    def batches(self) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
        if self._batches is None:
            self._batches = [select_batches(self.data.val_batches(name), self.eval_batches) for name in self.names]
        return self._batches

    @property
    def names(self) -> list[str]:
        """What the curve measures: every domain, then every eval set, so a target on eval sets
        has a curve too; the gradient cosines take the domains only."""
        return [*self.data.names, *(e.name for e in self.data.eval_sets)]

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        done = trainer.global_step  # optimizer steps taken so far
        if done not in self.steps or (self.curve and self.curve[-1][0] == done):
            return
        t0 = time.perf_counter()
        batches = self.batches()
        losses = {name: pl_module.mean_loss(b) for name, b in zip(self.names, batches)}
        self.curve.append([done, done * self.tokens_per_step, losses])
        if done in self.grad_steps:
            m = gradient_cosines(pl_module.model, batches[:len(self.data.names)])
            self.cosines.append({"step": done, "domains": self.data.names, "matrix": m.tolist()})
        self.seconds += time.perf_counter() - t0


class SwarmHeldoutCurve(pl.Callback):
    """The held-out curve of K proxies trained together (`swarm_trainer.SwarmModule`): one batched
    evaluation per point gives every proxy's losses; `curves[k]` as `HeldoutCurve.curve`."""

    def __init__(self, batches: dict[str, list[Any]], k: int, total_steps: int, tokens_per_step: int,
                 points: int, eval_batches: int = 2) -> None:
        self.batches = {name: select_batches(b, eval_batches) for name, b in batches.items()}
        self.steps = curve_steps(total_steps, points)
        self.tokens_per_step = tokens_per_step
        self.curves: list[list[list[Any]]] = [[] for _ in range(k)]
        self.seconds = 0.0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        done = trainer.global_step
        if done not in self.steps or (self.curves[0] and self.curves[0][-1][0] == done):
            return
        t0 = time.perf_counter()
        losses = {name: pl_module.mean_losses(b) for name, b in self.batches.items()}  # type: ignore[operator]
        for k, curve in enumerate(self.curves):
            curve.append([done, done * self.tokens_per_step, {name: v[k] for name, v in losses.items()}])
        self.seconds += time.perf_counter() - t0
