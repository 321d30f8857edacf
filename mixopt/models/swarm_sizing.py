"""How many proxies to batch (`choose_batch_k`) and how many threads to give a process.

The rules are read off `benchmarks/swarm_throughput.py`; see each function's docstring for the
numbers behind them.
"""

from __future__ import annotations

import os

DEFAULT_TOKENS_PER_STEP = 16 * 128
"""Batch size x sequence length of the default proxy (TrainConfig defaults)."""


def free_memory_bytes(device: str = "cpu") -> int:
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
    return 1 << max(0, int(x).bit_length() - 1) if x >= 1 else 1


def choose_batch_k(
    n_params: int,
    device: str,
    free_memory_bytes: int | None = None,
    *,
    tokens_per_step: int = DEFAULT_TOKENS_PER_STEP,
    n_layer: int | None = None,
    n_embd: int | None = None,
) -> int:
    """How many proxies of `n_params` parameters to train together (`SwarmConfig.batch_k` = 0).

    PROVISIONAL: rule to be filled in from the benchmark.
    """
    work = 6 * n_params * tokens_per_step  # FLOPs of one proxy's step
    if device.startswith("cuda"):
        want, cap = 2e12 / work, 256
    else:
        want, cap = 4e10 / work, 64
    k = max(1, min(cap, _power_of_two_at_most(want)))
    if free_memory_bytes is None:
        free_memory_bytes = globals()["free_memory_bytes"](device)
    per = estimate_memory_bytes(n_params, 1, tokens_per_step, n_layer, n_embd)
    room = max(1, int(0.5 * free_memory_bytes // max(1, per)))
    return max(1, min(k, _power_of_two_at_most(room)))


def recommended_threads(n_params: int, device: str = "cpu", cores: int | None = None) -> int:
    """Torch threads for one training process. PROVISIONAL."""
    cores = cores or os.cpu_count() or 1
    if device.startswith("cuda"):
        return min(4, cores)
    return 1
