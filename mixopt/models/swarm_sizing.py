"""How many proxies to batch (`choose_batch_k`), how many threads per process, memory estimates.

The rules are read off `benchmarks/swarm_throughput.py` (2-core CPU, shared with other jobs, so
its CPU-time columns are the reliable ones); each function's docstring gives the numbers.
"""

from __future__ import annotations

import os

DEFAULT_TOKENS_PER_STEP = 16 * 128
"""Batch size x sequence length of the default proxy (TrainConfig defaults)."""


def available_memory_bytes(device: str = "cpu") -> int:
    """Memory available for training now: free GPU memory on CUDA, MemAvailable on the CPU."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info()[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def estimate_memory_bytes(
    n_params: int,
    k: int,
    tokens_per_step: int = DEFAULT_TOKENS_PER_STEP,
    n_layer: int | None = None,
    n_embd: int | None = None,
    vocab_size: int | None = None,
) -> int:
    """Rough (on the high side) peak training memory of K batched proxies of `n_params` each.

    Per proxy: 20 bytes per parameter (weights, gradients, two AdamW moments, the fused loss's head
    gradient) plus saved activations of 4 x tokens x width x (20 x layers + 16) bytes. Measured
    marginal RSS per proxy on the CPU (benchmarks/swarm_throughput.py): 4.7 MB small, 21 MB default,
    101 MB large, against 5.3, 34 and 122 MB from this formula. Without the shape, the width is
    guessed from `n_params` (as if 12 x layers x width^2 + vocab x width, vocab 2048, 2 layers).
    """
    if n_embd is None or n_layer is None:
        n_layer = n_layer or 2
        v = vocab_size or 2048
        n_embd = n_embd or max(16, int(((v * v + 48 * n_layer * n_params) ** 0.5 - v) / (24 * n_layer)))
    per_proxy = 20 * n_params + 4 * tokens_per_step * n_embd * (20 * n_layer + 16)
    return int(k * per_proxy)


def _power_of_two_at_most(x: float) -> int:
    """The largest power of two <= x (at least 1)."""
    return 1 << (int(x).bit_length() - 1) if x >= 2 else 1


CPU_STEP_FLOPS = 12e9
"""Batch proxies on a CPU until one batched step holds about this many model FLOPs (~0.25 s of one
core): beyond it per-step overheads (Python, Lightning, op dispatch) are amortised and more K only
costs memory."""
GPU_STEP_FLOPS = 2e12
"""The same on a GPU: ~2 TFLOP per step (several ms of H100 time per step, so kernel launches
stop mattering). Not measured (no GPU was available): an estimate."""
MAX_K = {"cpu": 64, "cuda": 256}
MEMORY_FRACTION = 0.5
"""Use at most this fraction of the free memory for the batch."""


def choose_batch_k(
    n_params: int,
    device: str,
    free_memory_bytes: int | None = None,
    *,
    tokens_per_step: int = DEFAULT_TOKENS_PER_STEP,
    n_layer: int | None = None,
    n_embd: int | None = None,
) -> int:
    """How many proxies of `n_params` parameters to train in one batch (`SwarmConfig.batch_k` = 0).

    Rule: K = the largest power of two with K x 6 x n_params x tokens_per_step <= CPU_STEP_FLOPS
    (12 GFLOP) on a CPU or GPU_STEP_FLOPS (2 TFLOP) on a GPU, at most MAX_K (64 / 256), at least
    1, and small enough that `estimate_memory_bytes` of the batch fits in half of
    `free_memory_bytes` (default: what is free now on `device`).

    Measured on the 2-core CPU (tokens per CPU-second, one thread, median of interleaved rounds;
    `benchmarks/swarm_throughput.md`): small proxy (31k parameters, 1024 tokens per step)
    sequential 64-80k, batched K=16 126-163k (about 2x), K=64 no better than 16; default (239k,
    2048 tokens) sequential 24k, K=1 28k (the fused loss), K=4 30k, K=16 27k (flat from K=4);
    large (1.07M) K=1 to 16 within noise of each other. Hence K=32 small, 4 default, 1 large.
    On a GPU the same proxies run far below the device's speed unless thousands of GFLOPs go into
    each step, so K is as large as memory and MAX_K allow (unmeasured here).
    """
    cuda = device.startswith("cuda")
    work = 6 * max(1, n_params) * tokens_per_step  # model FLOPs of one proxy's step
    k = min(MAX_K["cuda" if cuda else "cpu"], _power_of_two_at_most((GPU_STEP_FLOPS if cuda else CPU_STEP_FLOPS) / work))
    free = available_memory_bytes(device) if free_memory_bytes is None else free_memory_bytes
    per_proxy = estimate_memory_bytes(n_params, 1, tokens_per_step, n_layer, n_embd)
    room = _power_of_two_at_most(MEMORY_FRACTION * free / max(1, per_proxy))
    return max(1, min(k, room))


def recommended_threads(n_params: int, device: str = "cpu", workers: int = 1, cores: int | None = None) -> int:
    """Torch threads for one training process when `workers` such processes share the machine.

    On a CPU: cores // workers (at least 1). Proxy-sized ops are too small to split well across
    threads, so the most efficient layout is one single-threaded process per core (`workers` =
    cores), each training its own batch: measured at the small size, 2 processes x 1 thread gave
    1.2-1.5x the tokens/s of 1 process x 2 threads. On a machine shared with other jobs, give
    multi-threaded processes OMP_WAIT_POLICY=PASSIVE (before torch is imported): with spinning
    OpenMP threads a 2-thread process ran 4-12x slower than with one thread. On a GPU the CPU only
    samples data and launches kernels: a few threads (at most 4) per process.
    """
    cores = cores or os.cpu_count() or 1
    share = max(1, cores // max(1, workers))
    if device.startswith("cuda"):
        return min(4, share)
    return share
