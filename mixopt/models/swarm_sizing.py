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
    peak RSS growth per proxy at K = 64 on the CPU (benchmarks/swarm_throughput.py): 4.9 MB small,
    23 MB default, 88 MB large, against 5.3, 34 and 122 MB from this formula. Without the shape, the width is
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
core): beyond it per-step overheads (Python, Lightning, op dispatch) are amortised."""
GPU_STEP_FLOPS = 4e12
"""The same on a GPU: ~4 TFLOP per step. Measured on an H100 (benchmarks/swarm_throughput_h100.md,
compiled, bf16): tokens/s still rose from K=64 to K=256 at every size (default 9.6M -> 16.4M,
large 7.2M -> 9.2M), so K is as large as this, memory and `MAX_K` allow."""
MAX_K = {"cpu": 16, "cuda": 256}
"""On a CPU, K = 64 was slower than K = 16 at every size measured (the batch's activations no longer
fit in cache); on a GPU memory is the real limit."""
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
    """How many proxies of `n_params` parameters to train in one batch (`runtime.batch_k` = 0).

    Rule: K = the largest power of two with K x 6 x n_params x tokens_per_step <= 12 GFLOP on a CPU
    (`CPU_STEP_FLOPS`) or 4 TFLOP on a GPU (`GPU_STEP_FLOPS`), at most 16 on a CPU and 256 on a GPU
    (`MAX_K`), at least 1, and small enough that `estimate_memory_bytes` of the batch fits in half
    of `free_memory_bytes` (default: what is free now on `device`; when several training processes
    share the machine, pass each its share). Proxies of the default shape
    get K = 4 on a CPU; 31k-parameter proxies 16; 1M-parameter proxies 1.

    Measured on the 2-core CPU (benchmarks/swarm_throughput.md, 2026-11-23, idle machine; 2
    processes x 1 thread; tokens per CPU-second): small proxy (31k parameters, 1024 tokens per step)
    sequential 68k, K=1 74k, K=4 111k, K=16 125k, K=64 116k; default (239k, 2048 tokens) sequential
    21.4k, K=1 25.7k, K=4 25.8k, K=16 24.4k, K=64 17.0k; large (1.07M) sequential 7.1k, K=1 7.4k,
    K=4 7.5k, K=16 5.5k, K=64 4.8k (an earlier run under load gave the same ordering). Batching pays where a
    proxy's step is small (per-step overheads), the fused loss and LayerNorm pay at every size, and
    past ~12 GFLOP per step larger batches lose to cache misses. On a GPU the same proxies leave the
    device idle unless thousands of GFLOPs go into each step: on an H100, K=256 beat K=64 by
    1.3-1.7x at every size (benchmarks/swarm_throughput_h100.md).
    """
    cuda = device.startswith("cuda")
    work = 6 * max(1, n_params) * tokens_per_step  # model FLOPs of one proxy's step
    step_flops = GPU_STEP_FLOPS if cuda else CPU_STEP_FLOPS
    k = min(MAX_K["cuda" if cuda else "cpu"], _power_of_two_at_most(step_flops / work))
    free = available_memory_bytes(device) if free_memory_bytes is None else free_memory_bytes
    per_proxy = estimate_memory_bytes(n_params, 1, tokens_per_step, n_layer, n_embd)
    room = _power_of_two_at_most(MEMORY_FRACTION * free / max(1, per_proxy))
    return max(1, min(k, room))


COMPILE_MIN_TOKENS = 2.5e8
"""`runtime.compile: auto` compiles a batch on CUDA only when it trains at least this many tokens in
all (K x steps x tokens per step): compiling costs ~15 s, and only a long batch earns it back.
Measured on an H100 (benchmarks/swarm_wall.py; proxies of 2 layers x 128 wide, 8192 tokens per step,
300 steps, wall time including start-up and compile): 16 proxies (39M tokens) eager 8.3 s, compiled
21.3 s; 128 proxies (315M tokens) eager 58.8 s, compiled 43.6 s. In steady state compiling is 1.7-2x
faster (swarm_throughput.py, default size K=64: 25 -> 14 ms per step)."""


def should_compile(device: str, batch_tokens: float) -> bool:
    """Whether `runtime.compile: auto` compiles a batch that trains `batch_tokens` tokens in all:
    on CUDA from `COMPILE_MIN_TOKENS` on; never on a CPU, where compiled steps were slower (2-core
    CPU, small size, K=16, benchmarks/swarm_profile.py: 76 ms per step eager, 137 ms compiled) and
    compiling takes about a minute."""
    return device.startswith("cuda") and batch_tokens >= COMPILE_MIN_TOKENS


def auto_workers(device: str, cores: int | None = None) -> int:
    """Swarm tasks at once for `runtime.workers: 0`: one per core on a CPU (each trains its batch in its
    own single-threaded process: the fastest layout measured, see `recommended_threads`), one on a GPU
    (a single process fills the device with one large batch)."""
    if device.startswith("cuda"):
        return 1
    return max(1, cores or os.cpu_count() or 1)


def recommended_threads(n_params: int, device: str = "cpu", workers: int = 1, cores: int | None = None) -> int:
    """Torch threads for one training process when `workers` such processes share the machine.

    On a CPU: cores // workers (at least 1); the recommended layout is one single-threaded process
    per core (`workers` = cores), each training its own batch, because proxy-sized ops are too small
    to split well across threads. Measured on the 2-core CPU, tokens/s of 2 processes x 1 thread
    against 1 process x 2 threads, idle machine: small 1.9x (sequential 126k vs 66k), default 1.6x
    (42.2k vs 26.8k; K=16 47.6k vs 33.1k), large 1.2x (14.1k vs 12.1k). On a machine shared with other jobs, start any
    multi-threaded training process with OMP_WAIT_POLICY=PASSIVE (it must be set before torch is
    imported): with spinning OpenMP threads a 2-thread process ran 4-12x slower than one thread.
    On a GPU the CPU only samples data and launches kernels: at most 4 threads per process.
    `n_params` is accepted for future rules; the measurements gave no size dependence worth one.
    """
    cores = cores or os.cpu_count() or 1
    share = max(1, cores // max(1, workers))
    if device.startswith("cuda"):
        return min(4, share)
    return share
