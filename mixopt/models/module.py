"""The Lightning wrapper around `GPT`: next-token loss, AdamW and a warm-up + cosine schedule."""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from mixopt.config import TrainConfig
from mixopt.models.gpt import GPT


def lr_lambda(total_steps: int, warmup_frac: float = 0.05, final_frac: float = 0.1):
    """Multiplier of the peak LR at step s: linear warm-up over the first ~5% of steps (at least 1),
    then cosine decay to `final_frac` of the peak at the last step."""
    total = max(1, int(total_steps))
    warmup = max(1, round(warmup_frac * total))

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - 1 - warmup))
        return final_frac + (1.0 - final_frac) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


def loss_fn(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy (in float32 whatever the logits' precision)."""
    flat = logits.float().reshape(-1, logits.shape[-1])
    return F.cross_entropy(flat, targets.reshape(-1), reduction=reduction)


class GPTModule(pl.LightningModule):
    """Trains a `GPT` on `(x, y, ...)` batches; logs `train_loss` and `lr` every step."""

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        n_layer: int = 2,
        n_embd: int = 64,
        n_head: int = 4,
        lr: float = 3e-3,
        weight_decay: float = 0.1,
        total_steps: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = GPT(vocab_size, seq_len, n_layer=n_layer, n_embd=n_embd, n_head=n_head, seed=seed)
        self.nan_at_step: int | None = None  # test-only fault: make the loss NaN at this step

    @classmethod
    def from_config(cls, cfg: TrainConfig, vocab_size: int, total_steps: int, seed: int) -> GPTModule:
        """Build from a `TrainConfig` (model shape, seq_len, lr, weight decay)."""
        m = cfg.model
        return cls(
            vocab_size=vocab_size,
            seq_len=cfg.seq_len,
            n_layer=m.n_layer,
            n_embd=m.n_embd,
            n_head=m.n_head,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            total_steps=total_steps,
            seed=seed,
        )

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch[0], batch[1]
        loss = loss_fn(self.model(x), y)
        if self.nan_at_step is not None and self.global_step == self.nan_at_step:
            loss = loss * float("nan")
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        self.log("train_loss", loss, on_step=True, prog_bar=True)
        self.log("lr", lr, on_step=True)
        return loss

    @torch.no_grad()
    def mean_loss(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
        """Token-weighted mean loss over `batches`, in eval mode without gradients."""
        was_training = self.training
        self.eval()
        total, count = 0.0, 0
        for x, y in batches:
            x, y = x.to(self.device), y.to(self.device)
            total += loss_fn(self.model(x), y, reduction="sum").item()
            count += y.numel()
        self.train(was_training)
        return total / max(1, count)

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        params = [p for p in self.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [
            {"params": decay, "weight_decay": hp.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        opt = torch.optim.AdamW(groups, lr=hp.lr, betas=(0.9, 0.95))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(hp.total_steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}
