"""Per-proxy results of a batched training: statuses, checkpoints and one wandb run per proxy.

Split from `swarm_trainer` to keep the training loop short. `finish_results` turns the trained
`SwarmModule` into one `RunResult` per spec (as `train_run` fills it); `log_wandb_runs` writes each
proxy's curve and held-out losses to its own wandb run after the batch has finished.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mixopt.config import TrainConfig
from mixopt.models.gpt import expected_params
from mixopt.models.train import describe_exception, train_config, wandb_config
from mixopt.runspec import RunResult, RunSpec

if TYPE_CHECKING:
    from mixopt.models.swarm_trainer import SwarmModule


def save_proxy_checkpoint(module: SwarmModule, k: int, spec: RunSpec, cfg: TrainConfig, steps: int) -> str:
    """Write proxy k as a `GPTModule` checkpoint (`GPTModule.load_from_checkpoint` reads it) to
    `<out_dir>/checkpoints/<run_id>.ckpt`, the path `train_run` uses; returns the path."""
    import lightning

    from mixopt.models.module import GPTModule

    single = GPTModule.from_config(cfg, spec.vocab_size, steps, spec.seed)
    single.model.load_state_dict(module.model.export(k))
    path = Path(spec.out_dir) / "checkpoints" / f"{spec.run_id}.ckpt"
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "state_dict": single.state_dict(),
        "hyper_parameters": dict(single.hparams),
        "global_step": steps,
        "epoch": 0,
        "pytorch-lightning_version": lightning.__version__,
    }
    torch.save(checkpoint, path)
    return str(path)


def finish_results(
    results: list[RunResult],
    specs: list[RunSpec],
    module: SwarmModule,
    val: dict[str, list[float]],
    global_step: int,
    tokens_per_step: int,
    cfg: TrainConfig,
) -> None:
    """Fill each proxy's result after a batch trained without an exception."""
    m = cfg.model
    n_params = expected_params(specs[0].vocab_size, cfg.seq_len, m.n_layer, m.n_embd)
    for k, (r, spec) in enumerate(zip(results, specs)):
        r.n_params, r.n_params_non_embedding = n_params
        bad = module.diverged_at[k]
        if bad is not None:
            r.status, r.error = "diverged", f"non-finite loss at step {bad}"
            r.steps = bad + 1  # as train_run: training stops right after the bad step
            r.val_losses = {}
        else:
            r.status, r.error = "ok", None
            r.steps = global_step
            r.val_losses = {name: losses[k] for name, losses in val.items()}
            if spec.save_checkpoint:
                r.checkpoint = save_proxy_checkpoint(module, k, spec, cfg, global_step)
        r.tokens = r.steps * tokens_per_step
        r.tokens_per_s = r.tokens / module.train_s if module.train_s > 0 else 0.0


def _wandb_config(spec: RunSpec) -> dict[str, Any]:
    """The run config `train_run` gives wandb, plus how the proxy was trained."""
    return {**wandb_config(spec, train_config(spec)), "batched": True}


def log_wandb_runs(specs: list[RunSpec], results: list[RunResult]) -> None:
    """One wandb run per spec whose `wandb_mode` is not "disabled": its curve (train_loss, lr per
    step), held-out losses and summary. Never raises: logging must not fail a finished training."""
    todo = [(s, r) for s, r in zip(specs, results) if s.wandb_mode != "disabled"]
    if not todo:
        return
    os.environ.setdefault("WANDB_SILENT", "true")
    for spec, result in todo:
        try:
            import wandb

            save_dir = Path(spec.out_dir) / "wandb"
            save_dir.mkdir(parents=True, exist_ok=True)
            run = wandb.init(
                project="mixopt",
                group=spec.experiment,
                name=spec.run_id,
                mode=spec.wandb_mode,
                dir=str(save_dir),
                config=_wandb_config(spec),
                reinit="create_new",
            )
            for step, _tokens, loss, lr in result.curve:
                run.log({"train_loss": loss, "lr": lr, "trainer/global_step": int(step)}, step=int(step))
            if result.val_losses:
                run.log({f"val_loss/{k}": v for k, v in result.val_losses.items()})
            run.summary.update({"status": result.status, "tokens": result.tokens, "tokens_per_s": result.tokens_per_s})
            run.finish(exit_code=0 if result.status == "ok" else 1)
        except Exception as exc:
            logging.getLogger(__name__).warning("wandb logging of %s failed: %s", spec.run_id, describe_exception(exc))
