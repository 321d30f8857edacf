"""Train and evaluate one GPT on one mixture: `train_run(RunSpec) -> RunResult`.

`train_run` never raises for a training failure: an exception gives status "failed" with a short
error, a non-finite loss stops training and gives status "diverged". The loss curve (step, tokens
seen, loss, lr) is recorded every step; after training every domain's held-out loss is measured.

Model initialisation and the data stream are seeded from `spec.seed` with their own generators, so a
run is reproducible even when several runs share a process (torch's global RNG is also seeded).
`spec.init_seed` / `data_seed` / `eval_seed` replace the seed of one source alone (the model with torch's
global RNG, the data stream, the held-out windows; `benchmarks/noise.py`); unset, nothing changes.

A spec with `aioli` set adapts its mixture online (`mixopt.models.aioli`): the data module
runs in live mode, an `AioliCallback` drives its weights, and `RunResult.trajectory` records them.
"""

from __future__ import annotations

import logging
import math
import os
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from mixopt.config import TrainConfig
from mixopt.models.aioli import AioliCallback, make_aioli_callback
from mixopt.models.data import MixtureDataModule
from mixopt.models.gpt import count_params
from mixopt.models.heldout import HeldoutCurve
from mixopt.models.module import GPTModule
from mixopt.runspec import RunResult, RunSpec

_QUIET_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.pytorch.accelerators.cuda",
    "lightning.fabric",
)
_QUIET_WARNINGS = (
    r".*does not have many workers.*",
    r".*Your `IterableDataset` has `__len__` defined.*",
    r".*There is a wandb run already in progress.*",
    r".*Starting from v1\.9\.0, `tensorboardX` has been removed.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
)


def quiet_lightning() -> None:
    """Keep Lightning's console noise (device banners, known-harmless warnings) out of the output."""
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


def parse_fault(fault: str | None) -> tuple[str, int] | None:
    """`"nan@3"` -> `("nan", 3)`; None or "" -> None; anything else is a ValueError."""
    if not fault:
        return None
    kind, _, step = fault.partition("@")
    if kind not in ("nan", "raise", "exit") or not step.isdigit():
        raise ValueError(f"bad fault {fault!r}: expected 'nan@STEP', 'raise@STEP' or 'exit@STEP'")
    return kind, int(step)


def describe_exception(exc: BaseException, limit: int = 500) -> str:
    """`Type: message (at file:line in function)`, naming the last traceback frame."""
    msg = str(exc)
    if len(msg) > limit:
        msg = msg[:limit] + "..."
    text = f"{type(exc).__name__}: {msg}"
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        f = frames[-1]
        text += f" (at {Path(f.filename).name}:{f.lineno} in {f.name})"
    return text


def train_config(spec: RunSpec) -> TrainConfig:
    """The spec's `TrainConfig`, ignoring keys that subclasses (swarm, final) add.

    `eval_batches` 0 (a final run scored on its whole held-out sets, `MixtureDataModule.val_offsets`) passes
    although TrainConfig itself asks for >= 1: read it with `eval_batches(spec)`."""
    d = {k: v for k, v in spec.train.items() if k in TrainConfig.model_fields}
    if d.get("eval_batches") == 0:
        return TrainConfig.model_validate(d | {"eval_batches": 1}).model_copy(update={"eval_batches": 0})
    return TrainConfig.model_validate(d)


def resolve_device(device: str) -> str:
    """Map "auto" to "cuda" when available, else "cpu"; "cpu" and "cuda" pass through."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; expected 'auto', 'cpu' or 'cuda'")
    return device


class CurveRecorder(pl.Callback):
    """Records (step, tokens, loss, lr) every step and stops training on a non-finite loss."""

    def __init__(self, tokens_per_step: int) -> None:
        self.tokens_per_step = tokens_per_step
        self.curve: list[list[float]] = []
        self.last_good_step = -1
        self.diverged_at: int | None = None
        self.train_s = 0.0
        self._lr = 0.0
        self._t0 = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.train_s = time.perf_counter() - self._t0

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._lr = float(trainer.optimizers[0].param_groups[0]["lr"])  # the LR this step uses

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        value = float(loss.detach().float().item())
        step = trainer.global_step - 1  # global_step already counts this step's optimizer update
        if not math.isfinite(value):
            self.diverged_at = step
            trainer.should_stop = True
            return
        self.last_good_step = step
        self.curve.append([step, (step + 1) * self.tokens_per_step, value, self._lr])


class FaultInjector(pl.Callback):
    """Test-only faults at a given step: raise RuntimeError, or kill the process (`os._exit(137)`)."""

    def __init__(self, kind: str, step: int) -> None:
        self.kind, self.step = kind, step

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step != self.step:
            return
        if self.kind == "raise":
            raise RuntimeError(f"injected fault at step {self.step}")
        if self.kind == "exit":
            os._exit(137)


def wandb_config(spec: RunSpec, cfg: TrainConfig) -> dict[str, Any]:
    """The config every wandb run of mixopt carries (solo and batched trainings alike)."""
    return {
        "role": spec.role,
        "label": spec.label,
        "seed": spec.seed,
        "vocab_size": spec.vocab_size,
        "weights": {d.name: w for d, w in zip(spec.domains, spec.weights)},
        "train": cfg.model_dump(),
    }


def _make_logger(spec: RunSpec, cfg: TrainConfig) -> Any:
    """A WandbLogger for this run, or False when wandb is disabled."""
    if spec.wandb_mode == "disabled":
        return False
    os.environ.setdefault("WANDB_SILENT", "true")
    from lightning.pytorch.loggers import WandbLogger

    save_dir = Path(spec.out_dir) / "wandb"
    save_dir.mkdir(parents=True, exist_ok=True)
    config = wandb_config(spec, cfg)
    # create_new: each run is its own wandb run, even with several trainings in one process.
    logger = WandbLogger(
        project="mixopt",
        group=spec.experiment,
        name=spec.run_id,
        mode=spec.wandb_mode,
        save_dir=str(save_dir),
        config=config,
        reinit="create_new",
    )
    # Lightning passes `anonymous=None`, which wandb >= 0.2x answers with a deprecation warning.
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    return logger


def _finish_wandb(logger: Any, result: RunResult) -> None:
    """Log the held-out losses and close the run (its own run, not the process-global one)."""
    run = getattr(logger, "_experiment", None)
    if run is None:
        return
    try:
        if result.val_losses:
            run.log({f"val_loss/{k}": v for k, v in result.val_losses.items()})
        summary = {"status": result.status, "tokens": result.tokens, "tokens_per_s": result.tokens_per_s}
        run.summary.update(summary)
        run.finish(exit_code=0 if result.status == "ok" else 1)
    except Exception as exc:  # logging must not turn a finished training into a failure
        logging.getLogger(__name__).warning("wandb finish failed: %s", describe_exception(exc))


@dataclass
class _Parts:
    """What a training built so far (read back into the result even when the training failed)."""

    logger: Any = False
    recorder: CurveRecorder | None = None
    aioli: AioliCallback | None = None
    heldout: HeldoutCurve | None = None
    data: MixtureDataModule | None = None


def _callbacks(spec: RunSpec, parts: _Parts, module: GPTModule, fault: Any, steps: int, tokens_per_step: int,
               ckpt_dir: Path) -> list[pl.Callback]:
    """The training's callbacks: the curve recorder, an injected fault, Aioli, the held-out curve, a checkpoint."""
    parts.recorder = CurveRecorder(tokens_per_step)
    callbacks: list[pl.Callback] = [parts.recorder]
    if fault and fault[0] == "nan":
        module.nan_at_step = fault[1]
    elif fault:
        callbacks.append(FaultInjector(*fault))
    parts.aioli = make_aioli_callback(spec, parts.data, steps)  # Aioli: None for a static run
    if parts.aioli is not None:
        callbacks.append(parts.aioli)
    if spec.curve_points > 0:  # the held-out curve (and gradient cosines) during training
        parts.heldout = HeldoutCurve(parts.data, steps, tokens_per_step, spec.curve_points,
                                     spec.curve_eval_batches, spec.interaction_points)
        callbacks.append(parts.heldout)
    if spec.save_checkpoint:
        from lightning.pytorch.callbacks import ModelCheckpoint

        callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, filename=spec.run_id, enable_version_counter=False))
    return callbacks


def _trainer(spec: RunSpec, cfg: TrainConfig, device: str, steps: int, logger: Any,
             callbacks: list[pl.Callback]) -> pl.Trainer:
    return pl.Trainer(
        max_steps=steps,
        max_epochs=1,  # the stream yields exactly `steps` batches; keeps the bar from "Epoch 0/-2"
        accelerator=device,
        devices=spec.devices,
        strategy="ddp" if spec.devices > 1 else "auto",
        precision="bf16-mixed" if device == "cuda" else "32-true",
        enable_checkpointing=spec.save_checkpoint,
        enable_progress_bar=spec.progress,
        enable_model_summary=False,
        logger=logger,
        log_every_n_steps=max(1, steps // 100),
        callbacks=callbacks,
        gradient_clip_val=cfg.grad_clip or None,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        default_root_dir=spec.out_dir,
    )


def _fit(spec: RunSpec, result: RunResult, parts: _Parts) -> None:
    """Build the data, model and trainer of `spec`, train, and fill `result` (status, losses, checkpoint)."""
    cfg = train_config(spec)
    fault = parse_fault(spec.fault)
    device = resolve_device(spec.device)
    if spec.threads > 0:
        torch.set_num_threads(spec.threads)
    init_seed, data_seed, eval_seed = spec.seeds()  # each `spec.seed` unless overridden (benchmarks/noise.py)
    pl.seed_everything(init_seed, verbose=False)
    tokens_per_step = cfg.batch_size * cfg.seq_len * spec.devices  # DDP: every device takes a batch
    steps = math.ceil(cfg.tokens / tokens_per_step)

    data = parts.data = MixtureDataModule(
        spec.domains, spec.weights, cfg.seq_len, cfg.batch_size, data_seed, steps, cfg.eval_batches,
        live=spec.aioli is not None,  # Aioli: batches drawn when their step starts
        eval_sets=spec.eval_sets,  # measured like the domains, never trained on
        eval_seed=eval_seed,
    )
    module = GPTModule.from_config(cfg, spec.vocab_size, steps, init_seed)
    result.n_params, result.n_params_non_embedding = count_params(module.model)
    ckpt_dir = Path(spec.out_dir) / "checkpoints"
    callbacks = _callbacks(spec, parts, module, fault, steps, tokens_per_step, ckpt_dir)
    if device == "cuda":
        torch.set_float32_matmul_precision("high")

    parts.logger = _make_logger(spec, cfg)
    trainer = _trainer(spec, cfg, device, steps, parts.logger, callbacks)
    trainer.fit(module, datamodule=data)

    recorder = parts.recorder
    result.steps = trainer.global_step
    result.tokens = trainer.global_step * tokens_per_step
    result.tokens_per_s = result.tokens / recorder.train_s if recorder.train_s > 0 else 0.0
    if recorder.diverged_at is not None:
        result.status = "diverged"
        result.error = f"non-finite loss at step {recorder.diverged_at}"
        return
    module.to(torch.device(device))
    result.val_losses = {d.name: module.mean_loss(data.val_batches(d.name))
                         for d in [*spec.domains, *spec.eval_sets]}  # and the eval sets
    if spec.save_checkpoint:
        path = ckpt_dir / f"{spec.run_id}.ckpt"
        trainer.save_checkpoint(path)
        result.checkpoint = str(path)
    result.status = "ok"


def _collect(result: RunResult, parts: _Parts) -> None:
    """Read what the callbacks measured into `result` (also after a failure)."""
    recorder = parts.recorder
    if recorder is not None:
        result.curve = recorder.curve
        result.last_good_step = recorder.last_good_step
        if result.status == "failed" and recorder.curve:  # what was trained before the failure
            result.steps = recorder.last_good_step + 1
            result.tokens = int(recorder.curve[-1][1])
    if parts.aioli is not None:  # Aioli: the mixture trajectory, also of a failed run
        result.trajectory = parts.aioli.trajectory
    heldout = parts.heldout
    if heldout is not None:
        result.heldout_curve, result.grad_cosines, result.curve_eval_s = (heldout.curve, heldout.cosines,
                                                                          heldout.seconds)
    data = parts.data
    if data is not None:  # the tokens drawn from each domain (the achieved mixture)
        result.domain_tokens = {n: int(c) * data.seq_len for n, c in zip(data.names, data.sampled_sequences)}
    if parts.logger:
        _finish_wandb(parts.logger, result)


def train_run(spec: RunSpec) -> RunResult:
    """Train `spec`'s model on its mixture and measure every domain's held-out loss."""
    t_start = time.perf_counter()
    result = RunResult(run_id=spec.run_id, status="failed")
    parts = _Parts()
    try:
        quiet_lightning()
        _fit(spec, result, parts)
    except Exception as exc:
        result.status = "failed"
        result.error = describe_exception(exc)
    finally:
        _collect(result, parts)
        result.wall_s = time.perf_counter() - t_start
    return result
