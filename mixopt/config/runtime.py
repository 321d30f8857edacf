"""Where and how things run: settings that change no result and stay outside every id."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mixopt.config.base import _Strict


class RuntimeConfig(_Strict):
    """Where things run and where they are written."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto` uses CUDA when available, else CPU."""
    warehouse: str = "out/mixopt.duckdb"
    """Path of the DuckDB warehouse file (the default, one machine), or the URL of a shared PostgreSQL
    store (`postgresql://user@host:5432/db`; several machines and readers at once, and Dask workers
    record their own results). Credentials: give them to libpq, which reads PGPASSWORD, ~/.pgpass
    (PGPASSFILE) or a PGSERVICE entry of ~/.pg_service.conf when the URL has no password. A password in
    the URL (`user:pw@`) and the `password`, `sslpassword` and `sslkey` parameters are taken out here,
    before the config is hashed, stored, exported, logged or passed to Prefect, and kept only in this
    process and the processes it starts (Dask's local workers); workers on other machines need
    PGPASSWORD, ~/.pgpass or PGSERVICE of their own."""
    out_dir: str = "out"
    """Output folder: corpus shards, tokenizer, spooled results, reports, plots, wandb."""
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    """Weights & Biases logging mode for every run (offline writes under `out_dir/wandb`)."""
    threads: int = Field(0, ge=0)
    """torch intra-op threads per training (0: leave torch's default)."""
    progress: bool = True
    """Show progress bars (swarm bar and Lightning's bar)."""
    dask_address: str | None = None
    """Train proxies on a Dask cluster through Prefect's Dask task runner: a scheduler address
    (`tcp://host:8786`), or `local:N` for a LocalCluster of N worker processes. Null: threads here."""
    compile: Literal["auto", "on", "off"] = "auto"
    """torch.compile the batched proxies' model and loss (fuses their many small kernels; ~15 s to
    compile): `auto` compiles on CUDA for batches long enough to earn that back (README, swarm
    throughput), never on a CPU."""
    workers: int = Field(0, ge=0)
    """Proxy tasks running at the same time on the flow's task runner (threads, or Dask workers).
    0 (auto): one per core on a CPU, each task training its batch in its own single-threaded
    process (the fastest layout measured), and 1 on a GPU. A number N: N tasks on threads here."""
    retries: int = Field(1, ge=0)
    """Retries of a failed proxy task (exponential backoff: 2 s, 4 s, 8 s, ...); a proxy still failing
    after them is recorded as failed and the swarm goes on."""
    batch_k: int = Field(0, ge=0)
    """Proxies trained together as one batched model in one task (0: chosen automatically from the
    model size and the device; 1: one proxy at a time)."""
    isolate: bool = Field(False)
    """Train each proxy in its own process: a crash or kill -9 of one proxy cannot take down the
    flow; costs ~5 s of start-up per proxy."""
    final_workers: int = Field(0, ge=0)
    """Final (and pilot) runs trained at the same time, each in its own process. 0 (auto): one
    single-threaded process per core on a CPU, 1 on a GPU. DDP runs (`final.devices` > 1) go one at a time."""

    @field_validator("warehouse")
    @classmethod
    def _no_secret_in_warehouse(cls, v: str) -> str:
        """A store URL's password and secret parameters stay in the process (`warehouse/credentials.py`)."""
        from mixopt.warehouse.postgres import is_url

        if not is_url(v):
            return v
        from mixopt.warehouse.credentials import strip_secret

        return strip_secret(v)
