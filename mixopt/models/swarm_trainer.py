"""Train K proxies at once as one `BatchedGPT`: `train_batch(specs) -> list[RunResult]`.

Each spec keeps the contract of `train_run`: proxy k starts exactly as `GPT(seed=spec.seed)` (or its
`init_seed`), reads exactly the batches its own `MixtureDataModule` would draw, and is updated by an AdamW step with the
same warm-up + cosine schedule, weight decay and gradient clipping as alone. AdamW is elementwise, so
one optimizer over the stacked weights is K independent optimizers; clipping is the only coupling and
is done per proxy (each proxy's own gradient norm). Lightning drives the loop (manual optimization:
one optimizer step updates all K).

Per-proxy failures: a proxy whose loss goes non-finite (or that has the test fault "nan@S") is marked
diverged at that step; from then on its loss is masked out, its gradients are zeroed and its weights
are restored after every optimizer step, so it stops while the others train on. Training ends early
only when every proxy has diverged. A "raise@S" or "exit@S" fault, or any exception, fails the whole
batch: every spec gets status "failed" with the error (and its curve up to the failure).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from mixopt.config import TrainConfig
from mixopt.models.batched_gpt import BatchedGPT, clip_grad_norm_per_proxy
from mixopt.models.data import MixtureDataModule, MixtureStream
from mixopt.models.heldout import SwarmHeldoutCurve
from mixopt.models.module import lr_lambda
from mixopt.models.swarm_report import finish_results, log_wandb_runs
from mixopt.models.swarm_sizing import should_compile
from mixopt.models.train import (
    FaultInjector,
    describe_exception,
    parse_fault,
    quiet_lightning,
    resolve_device,
    train_config,
)
from mixopt.runspec import RunResult, RunSpec


def batch_key(spec: RunSpec) -> tuple[Any, ...]:
    """What specs must share to train in one batch: model shape, sequence length, batch size, step
    count, optimizer settings, vocabulary, device, threads and domain names."""
    cfg = train_config(spec)
    steps = math.ceil(cfg.tokens / (cfg.batch_size * cfg.seq_len))
    m = cfg.model
    return (
        m.n_layer, m.n_embd, m.n_head, cfg.seq_len, cfg.batch_size, steps, cfg.lr, cfg.weight_decay,
        cfg.grad_clip, cfg.eval_batches, spec.vocab_size, resolve_device(spec.device), spec.threads, spec.compile,
        tuple(d.name for d in spec.domains), tuple(d.name for d in spec.eval_sets),
    )  # fmt: skip


def can_batch(specs: list[RunSpec]) -> bool:
    """True when all `specs` can train together in one `BatchedGPT` (same `batch_key`)."""
    try:
        return len({batch_key(s) for s in specs}) <= 1
    except (ValueError, TypeError):
        return False


class StackedStream(IterableDataset):
    """Yields `(x, y)` of shape (K, B, T): proxy k's slice is its own data module's next batch."""

    def __init__(self, modules: list[MixtureDataModule], steps: int) -> None:
        super().__init__()
        self.modules, self.steps = modules, steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        streams = [iter(MixtureStream(m)) for m in self.modules]  # seeded as each run alone
        for _ in range(self.steps):
            batches = [next(s) for s in streams]
            yield (torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches]),
                   torch.stack([b[2] for b in batches]))  # domain index per sequence: the achieved mixture


class SwarmModule(pl.LightningModule):
    """K stacked GPTs trained together; records every proxy's loss and handles divergence.

    Which proxies still train is decided on the device (a non-finite loss masks that proxy out in
    the same step), and the losses reach the host one step late, so the host never waits for the
    device in the middle of a step. Once the host knows a proxy diverged, its weights are restored
    after every optimizer step (its earlier masked steps only moved it by AdamW momentum and decay).
    """

    def __init__(
        self, cfg: TrainConfig, vocab_size: int, seeds: list[int], total_steps: int, compile_model: bool = False
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        m = cfg.model
        self.k = len(seeds)
        self.cfg, self.total_steps = cfg, total_steps
        self.model = BatchedGPT.from_seeds(seeds, vocab_size, cfg.seq_len, m.n_layer, m.n_embd, m.n_head)
        if compile_model:
            self.model.use_compile()
        self.nan_faults: dict[int, list[int]] = {}  # step -> proxies whose loss is made NaN there
        self.active = [True] * self.k  # host view, one step behind the device mask
        self.diverged_at: list[int | None] = [None] * self.k
        self.curves: list[list[list[float]]] = [[] for _ in range(self.k)]
        self.log_progress = False
        self.train_s = 0.0
        self._t0 = 0.0
        self._mask: torch.Tensor | None = None  # (K,) bool on the device: proxies still training
        # step, tokens, lr, losses (on the host, or being copied there), copy-done event (CUDA)
        self._pending: tuple[int, int, float, torch.Tensor, Any] | None = None
        self.domain_counts: torch.Tensor | None = None  # (K, domains) sequences drawn, on the device
        self.n_domains = 0

    def on_train_start(self) -> None:
        self._t0 = time.perf_counter()

    def on_train_end(self) -> None:
        self.flush()
        self.train_s = time.perf_counter() - self._t0

    def flush(self) -> None:
        """Record the last step's losses: curve rows for finite ones, divergence for the others."""
        if self._pending is None:
            return
        step, tokens, lr, losses, copied = self._pending
        self._pending = None
        if copied is not None:
            copied.synchronize()  # waits for that step's loss copy only, not for the device queue
        for k, v in enumerate(losses.tolist()):
            if not self.active[k]:
                continue
            if math.isfinite(v):
                self.curves[k].append([step, tokens, v, lr])
            else:
                self.active[k], self.diverged_at[k] = False, step

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        opt = self.optimizers()
        sched = self.lr_schedulers()
        step = self.global_step
        lr = float(opt.param_groups[0]["lr"])
        x, y = batch[0], batch[1]
        if len(batch) > 2 and self.n_domains:  # count each proxy's drawn sequences per domain (no host sync)
            counts = torch.nn.functional.one_hot(batch[2], self.n_domains).sum(1)
            self.domain_counts = counts if self.domain_counts is None else self.domain_counts + counts
        losses = self.model.loss(x, y)
        if step in self.nan_faults:
            poison = torch.ones(self.k, device=losses.device)
            poison[self.nan_faults[step]] = float("nan")
            losses = losses * poison
        if self._mask is None:
            self._mask = torch.ones(self.k, dtype=torch.bool, device=losses.device)
        live = self._mask & torch.isfinite(losses.detach())
        opt.zero_grad()
        self.manual_backward(torch.where(live, losses, torch.zeros_like(losses)).sum())
        self._optimizer_step(opt, live)
        sched.step()
        self._mask = live
        self.flush()  # the previous step's losses: by now the device is done with them
        self._pending = (step, (step + 1) * x.shape[1] * x.shape[2], lr, *self._to_host(losses.detach()))
        if not any(self.active):
            self.trainer.should_stop = True
        elif self.log_progress and self.curves[self.active.index(True)]:
            live_now = [c[-1][2] for c, a in zip(self.curves, self.active) if a and c]
            self.log("train_loss", sum(live_now) / len(live_now), prog_bar=True)

    @staticmethod
    def _to_host(losses: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Start copying a step's losses to the host. On CUDA the copy is asynchronous (pinned
        memory) with an event marking its end: reading the losses a step later then waits for that
        copy only, so the host prepares the next step while the device still runs this one."""
        if not losses.is_cuda:
            return losses, None
        host = torch.empty(losses.shape, dtype=losses.dtype, pin_memory=True)
        host.copy_(losses, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        return host, event

    def _optimizer_step(self, opt: Any, live: torch.Tensor) -> None:
        """Zero the gradients of proxies not training, clip per proxy, step, and keep proxies known
        to have diverged exactly where they were."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        for p in params:
            if p.grad is not None:  # masked_fill also clears NaN/inf gradients (a multiply would not)
                p.grad.masked_fill_(~live.view(self.k, *([1] * (p.dim() - 1))), 0.0)
        if self.cfg.grad_clip:
            clip_grad_norm_per_proxy(params, self.k, self.cfg.grad_clip)
        frozen = [k for k, a in enumerate(self.active) if not a]
        index = torch.tensor(frozen, device=params[0].device) if frozen else None
        saved = [p.detach().index_select(0, index) for p in params] if index is not None else []
        opt.step()
        if index is not None:
            with torch.no_grad():
                for p, s in zip(params, saved):
                    p.index_copy_(0, index, s)

    @torch.no_grad()
    def mean_losses(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> list[float]:
        """Token-weighted mean loss per proxy over `(x, y)` batches of shape (K, b, T) or (b, T)
        (the latter shared by all proxies), in eval mode and float32."""
        was_training = self.training
        self.eval()
        total = torch.zeros(self.k, dtype=torch.float64, device=self.device)
        count = 0
        for x, y in batches:
            if x.dim() == 2:
                x, y = x.expand(self.k, *x.shape), y.expand(self.k, *y.shape)
            total += self.model.loss(x.to(self.device), y.to(self.device), reduction="sum").double()
            count += y[0].numel()
        self.train(was_training)
        return (total / max(1, count)).tolist()

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() - 1 >= 2]  # as GPTModule: matrices, not vectors
        no_decay = [p for p in params if p.dim() - 1 < 2]
        groups = [
            {"params": decay, "weight_decay": self.cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        fused = bool(params) and params[0].is_cuda  # one kernel for all K proxies' updates
        opt = torch.optim.AdamW(groups, lr=self.cfg.lr, betas=(0.9, 0.95), fused=fused or None)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(self.total_steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _val_batches(modules: list[MixtureDataModule], name: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Held-out batches of domain `name`: shared (b, T) when every proxy reads the same windows of the
    same shard, else stacked (K, b, T) per proxy (shards of equal length)."""
    shards = {(d.val_path, d.val_tokens, m.eval_seed) for m in modules for d in [*m.domains, *m.eval_sets]
              if d.name == name}
    if len(shards) == 1:
        return modules[0].val_batches(name)
    per = [m.val_batches(name) for m in modules]
    if len({tuple(tuple(b[0].shape) for b in p) for p in per}) != 1:
        raise ValueError(f"the proxies' val shards of {name!r} differ in length; they cannot be batched")
    return [(torch.stack([p[i][0] for p in per]), torch.stack([p[i][1] for p in per])) for i in range(len(per[0]))]


def _group_callbacks(specs: list[RunSpec], module: SwarmModule, modules: list[MixtureDataModule], steps: int,
                     tokens_per_step: int) -> tuple[list[pl.Callback], SwarmHeldoutCurve | None]:
    """The batch's callbacks: injected faults (NaN per proxy; the earliest hard fault for all) and the
    held-out curve of a sample of proxies; returns the callbacks and the curve."""
    callbacks: list[pl.Callback] = []
    faults = [parse_fault(s.fault) for s in specs]
    for k, f in enumerate(faults):
        if f and f[0] == "nan":
            module.nan_faults.setdefault(f[1], []).append(k)
    hard = sorted((f[1], f[0]) for f in faults if f and f[0] != "nan")
    if hard:
        callbacks.append(FaultInjector(hard[0][1], hard[0][0]))
    curve = None
    if any(s.curve_points > 0 for s in specs):  # held-out curves of a sample of proxies
        sample = next(s for s in specs if s.curve_points > 0)
        curve = SwarmHeldoutCurve({d.name: _val_batches(modules, d.name) for d in specs[0].domains}, len(specs),
                                  steps, tokens_per_step, sample.curve_points, sample.curve_eval_batches)
        callbacks.append(curve)
    return callbacks, curve


def _group_trainer(specs: list[RunSpec], device: str, steps: int, progress: bool,
                   callbacks: list[pl.Callback]) -> pl.Trainer:
    return pl.Trainer(
        max_steps=steps,
        max_epochs=1,
        accelerator=device,
        devices=1,
        precision="bf16-mixed" if device == "cuda" else "32-true",
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        logger=False,
        callbacks=callbacks,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        default_root_dir=specs[0].out_dir,
    )


def _measured(results: list[RunResult], specs: list[RunSpec], module: SwarmModule,
              curve: SwarmHeldoutCurve | None, seq_len: int) -> None:
    """The achieved mixture of each proxy and the held-out curves of the sampled ones."""
    if module.domain_counts is not None:
        counts = module.domain_counts.tolist()
        for r, spec, c in zip(results, specs, counts):
            r.domain_tokens = {d.name: int(n) * seq_len for d, n in zip(spec.domains, c)}
    if curve is not None:
        for r, spec, c in zip(results, specs, curve.curves):
            if spec.curve_points > 0:
                r.heldout_curve, r.curve_eval_s = c, curve.seconds


def _fit_group(specs: list[RunSpec], results: list[RunResult], made: list[SwarmModule]) -> None:
    """Build the batched model of `specs` (appended to `made`), train it and fill `results`."""
    cfg = train_config(specs[0])
    for s in specs:
        parse_fault(s.fault)  # a bad fault string fails before anything is built
    device = resolve_device(specs[0].device)
    if specs[0].threads > 0:
        torch.set_num_threads(specs[0].threads)
    seeds = [s.seeds() for s in specs]  # (init, data, eval) of each spec: `seed` unless overridden
    pl.seed_everything(seeds[0][0], verbose=False)
    tokens_per_step = cfg.batch_size * cfg.seq_len
    steps = math.ceil(cfg.tokens / tokens_per_step)
    modules = [
        MixtureDataModule(s.domains, s.weights, cfg.seq_len, cfg.batch_size, data, steps, cfg.eval_batches,
                          eval_sets=s.eval_sets, eval_seed=ev)
        for s, (_, data, ev) in zip(specs, seeds)
    ]
    batch_tokens = len(specs) * steps * tokens_per_step
    compile_model = specs[0].compile == "on" or (specs[0].compile == "auto"
                                                 and should_compile(device, batch_tokens))
    module = SwarmModule(cfg, specs[0].vocab_size, [init for init, _, _ in seeds], steps, compile_model)
    made.append(module)
    callbacks, curve = _group_callbacks(specs, module, modules, steps, tokens_per_step)
    if device == "cuda":
        torch.set_float32_matmul_precision("high")
    module.log_progress = any(s.progress for s in specs)
    module.n_domains = len(specs[0].domains)
    trainer = _group_trainer(specs, device, steps, module.log_progress, callbacks)
    # On CUDA one worker process stacks the next batches (same order: one stream) while the
    # device trains; on a CPU the cores are better spent training.
    workers = 1 if device == "cuda" else 0
    loader = DataLoader(StackedStream(modules, steps), batch_size=None, num_workers=workers,
                        pin_memory=workers > 0, prefetch_factor=4 if workers else None)  # fmt: skip
    trainer.fit(module, train_dataloaders=loader)
    module.to(torch.device(device))
    val = {d.name: module.mean_losses(_val_batches(modules, d.name))
           for d in [*specs[0].domains, *specs[0].eval_sets]}  # and the eval sets
    finish_results(results, specs, module, val, trainer.global_step, tokens_per_step, cfg)
    _measured(results, specs, module, curve, cfg.seq_len)


def _read_curves(results: list[RunResult], module: SwarmModule | None, t_start: float) -> None:
    """Each proxy's training curve (also after a failure: what was trained before it) and the wall time."""
    if module is not None:
        module.flush()  # a failure can leave the last good step's losses unrecorded
    for k, r in enumerate(results):
        if module is not None:
            r.curve = module.curves[k]
            r.last_good_step = int(r.curve[-1][0]) if r.curve else -1
            if r.status == "failed" and r.curve:
                r.steps = r.last_good_step + 1
                r.tokens = int(r.curve[-1][1])
        r.wall_s = time.perf_counter() - t_start


def _train_group(specs: list[RunSpec]) -> list[RunResult]:
    """Train specs that `can_batch` together; never raises for a training failure."""
    t_start = time.perf_counter()
    results = [RunResult(run_id=s.run_id, status="failed") for s in specs]
    made: list[SwarmModule] = []
    try:
        quiet_lightning()
        _fit_group(specs, results, made)
    except Exception as exc:
        error = describe_exception(exc)
        for r in results:
            r.status, r.error, r.val_losses = "failed", error, {}
    finally:
        _read_curves(results, made[0] if made else None, t_start)
        log_wandb_runs(specs, results)
    return results


def _check_spec(spec: RunSpec) -> None:
    """Raise what `train_run` would fail with before training: a bad config, fault or mixture."""
    cfg = train_config(spec)
    parse_fault(spec.fault)
    resolve_device(spec.device)
    MixtureDataModule(spec.domains, spec.weights, cfg.seq_len, cfg.batch_size, spec.seed, 1, cfg.eval_batches)


def train_batch(specs: list[RunSpec]) -> list[RunResult]:
    """Train every spec, K at a time in one batched model; results in the order of `specs`.

    Specs that cannot share a batch (see `can_batch`) are split into groups of equal `batch_key`, each
    trained as its own batch, so this never raises for mismatched specs either. Each result follows
    `train_run`'s contract; `wall_s` is the batch's wall time and `tokens_per_s` the proxy's own share
    (its tokens over the batch's training time).
    """
    groups: dict[Any, list[int]] = {}
    early: dict[int, RunResult] = {}
    for i, s in enumerate(specs):
        try:
            _check_spec(s)
            groups.setdefault(batch_key(s), []).append(i)
        except Exception as exc:  # an invalid spec fails alone, as train_run would
            early[i] = RunResult(run_id=s.run_id, status="failed", error=describe_exception(exc))
    out: list[RunResult | None] = [early.get(i) for i in range(len(specs))]
    for idx in groups.values():
        for i, r in zip(idx, _train_group([specs[i] for i in idx])):
            out[i] = r
    return [r for r in out if r is not None]
