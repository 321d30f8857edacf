"""The config's shared pieces: the strict base model, names, and the shape and training of one model
(the swarm, the ladder and the final run all build on them)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mixopt.errors import MixoptError
from mixopt.mixtures.baselines import builtin_baselines

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
BUILTIN_BASELINES = builtin_baselines()  # the registered ones (`mixopt/mixtures/baselines/`), at import
RESERVED_LABELS = frozenset(BUILTIN_BASELINES + ("proposed",))


def reserved_labels() -> frozenset[str]:
    """Labels an anchor may not take: every registered baseline's (now) and `proposed`."""
    return frozenset(builtin_baselines() + ("proposed",))


def check_registered(what: str, name: str, names: list[str]) -> str:
    """`name` if it is one of `names`, else a one-line ``ValueError`` listing them (pydantic puts the
    field in front: "regressor.kind: Value error, unknown regressor 'x'; registered: ...")."""
    if name not in names:
        raise ValueError(f"unknown {what} {name!r}; registered: {', '.join(names)}")
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True,
                              allow_inf_nan=False)  # `.inf` / `.nan` in YAML are refused, not propagated


class ModelConfig(_Strict):
    """A small decoder-only transformer (GPT)."""

    n_layer: int = Field(2, ge=1, le=48)
    """Number of transformer blocks."""
    n_embd: int = Field(64, ge=8, le=4096)
    """Width of the residual stream."""
    n_head: int = Field(4, ge=1, le=64)
    """Number of attention heads (must divide `n_embd`)."""

    @model_validator(mode="after")
    def _check(self) -> "ModelConfig":
        if self.n_embd % self.n_head:
            raise ValueError(f"n_head ({self.n_head}) must divide n_embd ({self.n_embd})")
        return self


class TrainConfig(_Strict):
    """How one model is trained."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    """Model shape."""
    tokens: int = Field(100_000, gt=0)
    """Training tokens per run (steps = tokens / (batch_size * seq_len), rounded up)."""
    seq_len: int = Field(128, ge=8, le=8192)
    """Context length in tokens."""
    batch_size: int = Field(16, ge=1)
    """Sequences per optimizer step."""
    lr: float = Field(3e-3, gt=0, lt=1)
    """Peak learning rate (AdamW, linear warm-up then cosine decay to 10%)."""
    weight_decay: float = Field(0.1, ge=0)
    """AdamW weight decay on matrices."""
    grad_clip: float = Field(1.0, ge=0)
    """Gradient-norm clip (0 disables)."""
    eval_batches: int = Field(8, ge=1)
    """Held-out batches per domain when measuring validation loss."""


class ConfigError(MixoptError, ValueError):
    """A config that cannot be used; the message names the file and the field."""
