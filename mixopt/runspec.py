"""What one training run needs and what it gives back, as plain JSON-serialisable dataclasses.

These cross process boundaries (a final run is its own process; a Dask worker may train a proxy),
so they hold only numbers, strings and lists, and round-trip through `to_json` / `from_json`.
Neither torch nor prefect is imported here.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class DomainShard:
    """One domain's tokenised data: two flat token files (documents separated by EOT), of `dtype`
    (uint16 up to 65,536 tokens of vocabulary, uint32 above). An eval set has no train file ("")."""

    name: str
    train_path: str
    val_path: str
    train_tokens: int
    val_tokens: int
    train_docs: int = 0
    val_docs: int = 0
    train_sha256: str = ""
    val_sha256: str = ""
    text_sha256: str = ""  # the domain's input text (the corpus's content checksum, printed by the report)
    dtype: str = "uint16"  # the token files' numpy dtype (little-endian): "uint16" or "uint32"
    pool_tokens: int = 0  # a repetition-matched proxy's subsample of the train shard (0: all of it)


@dataclass
class RunSpec:
    """Everything needed to train and evaluate one model on one mixture."""

    run_id: str
    role: str  # "proxy" or "final"
    label: str  # "design", "proposed", "natural", "stratified", ...
    domains: list[DomainShard]
    weights: list[float]  # one per domain, sums to 1
    train: dict[str, Any]  # a TrainConfig dumped to a dict
    vocab_size: int
    seed: int
    device: str = "cpu"
    out_dir: str = "out"
    experiment: str = "demo"
    wandb_mode: str = "disabled"
    threads: int = 0
    progress: bool = False
    save_checkpoint: bool = False
    devices: int = 1  # > 1: Lightning DDP, one process per device (started by Lightning itself)
    compile: str = "auto"  # torch.compile batched proxies: "on", "off", or "auto" (on CUDA only)
    aioli: dict[str, Any] | None = None  # an AioliConfig dumped to a dict: adapt the mixture online
    size: str = "target"  # a proxy's size (fidelity): "target" (the swarm's) or "low" (design.low_fidelity)
    fault: str | None = None  # test-only fault injection: "nan@STEP", "raise@STEP" or "exit@STEP"
    eval_sets: list[DomainShard] = field(default_factory=list)  # measured after training, never trained on
    curve_points: int = 0  # held-out evaluations during training, evenly spaced in steps (0: none)
    curve_eval_batches: int = 2  # held-out batches per domain at each curve point (a fixed subset)
    interaction_points: int = 0  # the last n curve points also measure per-domain gradient cosines
    # One source of seed-to-seed noise varied alone (benchmarks/noise.py); None: as without the field, so
    # nothing changes when unset (and none of them enters a run id).
    init_seed: int | None = None  # the model's initialisation (and torch's global RNG); None: `seed`
    data_seed: int | None = None  # the training data stream's random numbers; None: `seed`
    eval_seed: int | None = None  # held-out windows: None, the fixed evenly spaced grid; an int, that grid
    # shifted by a random phase drawn from it (the same number of windows); no effect when every window is read

    def seeds(self) -> tuple[int, int, int | None]:
        """(initialisation seed, data-stream seed, eval-window seed or None for the fixed grid)."""
        init = self.seed if self.init_seed is None else self.init_seed
        data = self.seed if self.data_seed is None else self.data_seed
        return int(init), int(data), None if self.eval_seed is None else int(self.eval_seed)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        d = json.loads(text)
        d["domains"] = [DomainShard(**x) for x in d["domains"]]
        d["eval_sets"] = [DomainShard(**x) for x in d.get("eval_sets", [])]
        return cls(**d)


@dataclass
class RunResult:
    """The outcome of one run. `status` is "ok", "failed" or "diverged"; failures carry `error`."""

    run_id: str
    status: str
    error: str | None = None
    n_params: int = 0
    n_params_non_embedding: int = 0
    tokens: int = 0
    steps: int = 0
    wall_s: float = 0.0
    tokens_per_s: float = 0.0
    last_good_step: int = -1
    curve: list[list[float]] = field(default_factory=list)  # [step, tokens, loss, lr]
    val_losses: dict[str, float] = field(default_factory=dict)  # domain -> held-out loss
    checkpoint: str | None = None
    trajectory: list[dict[str, Any]] = field(default_factory=list)  # online mixture updates (Aioli)
    heldout_curve: list[list[Any]] = field(default_factory=list)  # [step, tokens, {domain: held-out loss}]
    domain_tokens: dict[str, int] = field(default_factory=dict)  # training tokens drawn per domain (achieved)
    grad_cosines: list[dict[str, Any]] = field(default_factory=list)  # {"step", "domains", "matrix"} per point
    curve_eval_s: float = 0.0  # seconds spent on the held-out curve and gradient cosines

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "RunResult":
        return cls(**json.loads(text))


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file so that readers see either nothing or the whole text (rename is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
