"""Aioli on a training run: a Lightning callback that adapts the mixture online.

`AioliCallback` drives the `MixtureDataModule`'s weights step by step. It needs the data module in
live mode (`live=True`): each batch is then drawn when its step starts, from the weights in force
at that moment, so LearnParams' short visits really train on the intended mixtures.

Schedule of a run of T steps (see `mixopt.mixtures.aioli.plan_rounds`):

* restricted mode (`restricted=True`, the "aioli_restricted" run): steps ``[0, S)`` with
  ``S = round(restricted_fraction * T)`` train on the starting mixture (the swarm's proposal);
  Aioli's rounds start at S. Otherwise rounds start after ``warmup_fraction * T`` steps on the
  starting mixture (the "aioli" run, from uniform).
* each round of ``update_steps`` steps starts by measuring every domain's held-out loss, then runs
  LearnParams: for each domain j in ``lp_rounds`` seeded random orders, ``lp_steps`` ordinary
  optimizer steps on the smoothed one-hot mixture ``W[j]``, a new measurement, and the loss
  decrease added to column j of delta. Then ``A = normalise_A(solve_A(delta / lp_rounds, W))``,
  the proportions are updated (or recomputed from uniform with an EMA of A) and the rest of the
  round trains on them. LearnParams steps are real training steps and count towards the run's
  budget: an Aioli run trains exactly as many steps and tokens as a static run of the same spec,
  with the same learning-rate schedule.

Held-out data for Aioli's measurements (`aioli_val_batches`): the same validation shards that score
the run at the end, but different windows -- the midpoints between consecutive scoring windows,
``eval_batches`` (AioliConfig) batches of them per domain. They share no token with a scoring
window when a domain's val shard holds at least ``2 * (seq_len + 1)`` tokens per scoring window;
on smaller shards they overlap partly.

`trajectory` holds one entry for the starting mixture (round 0, step 0, A None) and one per round:
``{"round": r, "step": first step trained on the new mixture, "weights": {domain: w}, "A": the
k x k matrix that drove the update (the EMA when `ema` is set), "lp_begin": first LearnParams step,
"lp_steps": LearnParams steps of the round, "losses": the held-out losses measured before the
round}``. The warehouse stores the first four keys.

Aioli ignores the token caps of the static mixtures (a domain may be read more than `proposer.final_max_epochs`
times), and a domain whose starting weight is 0 stays at 0 outside LearnParams (the update is
multiplicative).
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from mixopt.config import AioliConfig
from mixopt.mixtures.aioli import (
    Round,
    ema_A,
    normalise_A,
    plan_rounds,
    proportions_from_ema,
    smoothed_one_hot,
    solve_A,
    update_proportions,
    visit_orders,
)
from mixopt.models.data import MixtureDataModule, open_tokens
from mixopt.runspec import RunSpec

ValBatches = list[tuple[torch.Tensor, torch.Tensor]]


def aioli_val_batches(data: MixtureDataModule, domain: int, n_batches: int) -> ValBatches:
    """Aioli's held-out batches of one domain: windows halfway between the scoring windows.

    The run is scored on `data.val_batches`, whose windows start at evenly spaced offsets; these
    windows start at the midpoints between consecutive such offsets, and ``n_batches * batch_size``
    of the midpoints (evenly spread) are kept. A shard with a single scoring window gives that window.
    A run scored on the whole held-out set (`eval_batches` 0) has no disjoint windows left: these then
    straddle two consecutive scoring windows.
    """
    d = data.domains[domain]
    tokens = open_tokens(d.val_path, d.val_tokens, f"val shard of {d.name!r}")
    scoring, n = data.val_offsets(len(tokens))
    mids = np.unique((scoring[:-1] + scoring[1:]) // 2) if len(scoring) > 1 else scoring
    keep = np.unique(np.linspace(0, len(mids) - 1, min(len(mids), n_batches * data.batch_size)).round())
    offsets = mids[keep.astype(np.int64)]
    windows = torch.from_numpy(np.stack([np.asarray(tokens[o : o + n], dtype=np.int64) for o in offsets]))
    b = data.batch_size
    return [(windows[i : i + b, :-1], windows[i : i + b, 1:]) for i in range(0, len(windows), b)]


class AioliCallback(pl.Callback):
    """Runs Aioli's rounds on a live `MixtureDataModule` and records the mixture trajectory."""

    def __init__(
        self, data: MixtureDataModule, cfg: AioliConfig, total_steps: int, seed: int, restricted: bool = False
    ) -> None:
        if not data.live:
            raise ValueError("Aioli needs the data module in live mode (MixtureDataModule(..., live=True))")
        self.data, self.cfg, self.seed = data, cfg, int(seed)
        self.names = data.names
        self.k = len(self.names)
        self.W = smoothed_one_hot(self.k, cfg.one_hot_factor)
        self.lp_len = cfg.lp_rounds * self.k * cfg.lp_steps
        self.start = round((cfg.restricted_fraction if restricted else cfg.warmup_fraction) * total_steps)
        self.rounds: list[Round] = plan_rounds(total_steps, self.start, cfg.update_steps, self.lp_len)
        self.p = data.weights.copy()
        self.A_ema: np.ndarray | None = None
        self.lp_steps_trained = 0
        self.trajectory: list[dict[str, Any]] = [self._entry(0, 0, None)]
        self._next = 0  # index in self.rounds of the next round to start
        self._round: Round | None = None
        self._orders: list[int] = []
        self._delta = np.zeros((self.k, self.k))
        self._losses = np.zeros(self.k)
        self._round_losses = np.zeros(self.k)
        self._val: list[ValBatches] = []

    # ------------------------------------------------------------------ Lightning hooks
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._val = [aioli_val_batches(self.data, i, self.cfg.eval_batches) for i in range(self.k)]
        self._prepare(0, pl_module)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._in_learnparams(trainer.global_step):
            self.lp_steps_trained += 1

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not trainer.should_stop:  # a diverged run stops here; nothing more to plan
            self._prepare(trainer.global_step, pl_module)

    # ------------------------------------------------------------------ the schedule
    def _in_learnparams(self, step: int) -> bool:
        r = self._round
        return r is not None and r.begin <= step < r.lp_end

    def _prepare(self, step: int, module: pl.LightningModule) -> None:
        """Everything due before `step` trains: close a visit, finish LearnParams, open a round,
        and set the data module's weights for `step`."""
        r = self._round
        if r is not None and r.begin < step <= r.lp_end and (step - r.begin) % self.cfg.lp_steps == 0:
            visited = self._orders[(step - r.begin) // self.cfg.lp_steps - 1]
            losses = self._evaluate(module)
            self._delta[:, visited] += self._losses - losses  # column j: what training on j did
            self._losses = losses
        if r is not None and step == r.lp_end:
            self._update_mixture(r)
        if self._next < len(self.rounds) and step == self.rounds[self._next].begin:
            self._start_round(self.rounds[self._next], module)
            self._next += 1
        if self._in_learnparams(step):
            r = self._round
            assert r is not None
            self.data.set_weights(self.W[self._orders[(step - r.begin) // self.cfg.lp_steps]])
        else:
            self.data.set_weights(self.p)

    def _start_round(self, r: Round, module: pl.LightningModule) -> None:
        self._round = r
        self._orders = visit_orders(self.k, self.cfg.lp_rounds, self.seed, r.index)
        self._delta = np.zeros((self.k, self.k))
        self._losses = self._evaluate(module)
        self._round_losses = self._losses.copy()

    def _update_mixture(self, r: Round) -> None:
        A = normalise_A(solve_A(self._delta / self.cfg.lp_rounds, self.W))
        if self.cfg.ema is not None:
            self.A_ema = ema_A(self.A_ema, A, self.cfg.ema)
            A = self.A_ema
            self.p = proportions_from_ema(A, self.cfg.eta)
        else:
            self.p = update_proportions(self.p, A, self.cfg.eta)
        self.trajectory.append(self._entry(r.index, r.lp_end, A, r))

    def _evaluate(self, module: pl.LightningModule) -> np.ndarray:
        """Every domain's held-out loss on Aioli's windows (eval mode, no gradients)."""
        return np.array([module.mean_loss(batches) for batches in self._val])  # type: ignore[operator]

    def _entry(self, index: int, step: int, A: np.ndarray | None, r: Round | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "round": index,
            "step": step,
            "weights": {n: float(w) for n, w in zip(self.names, self.p)},
            "A": None if A is None else A.tolist(),
        }
        if r is not None:
            entry.update(lp_begin=r.begin, lp_steps=r.lp_end - r.begin,
                         losses={n: float(v) for n, v in zip(self.names, self._round_losses)})
        return entry


def make_aioli_callback(spec: RunSpec, data: MixtureDataModule, total_steps: int) -> AioliCallback | None:
    """The callback for a spec with `aioli` set (restricted when its label is "aioli_restricted"),
    starting from `spec.weights`; None for a static run."""
    if not spec.aioli:
        return None
    cfg = AioliConfig.model_validate(spec.aioli)
    return AioliCallback(data, cfg, total_steps, spec.seeds()[1], restricted=spec.label == "aioli_restricted")
