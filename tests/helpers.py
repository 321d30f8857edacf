"""Helpers shared by tests (import as `from tests.helpers import ...`)."""

from mixopt.config import ExperimentConfig


def tiny_config(tmp_path, **overrides) -> ExperimentConfig:
    """A whole experiment small enough to run end to end in seconds on a CPU."""
    data = {
        "name": "tiny",
        "corpus": {"source": "synthetic", "synthetic_domains": 3, "synthetic_docs": 60},
        "tokenizer": {"vocab_size": 300, "sample_bytes_per_domain": 50_000},
        "swarm": {"n_proxies": 6, "model": {"n_layer": 1, "n_embd": 16, "n_head": 2}, "tokens": 4096,
                  "seq_len": 32, "batch_size": 8, "eval_batches": 2, "lr": 1e-2},
        # no seed repeats, anchors, ladder or target-centred draws unless a test asks (they add proxies)
        "design": {"noise_mixtures": 0, "anchor_proxies": False, "ladder": None, "target_fraction": 0.0},
        "regressor": {"candidates": ["linear", "lightgbm"], "cv_folds": 3},
        "proposer": {"n_samples": 2000, "top_k": 20, "bootstrap": 5, "bootstrap_samples": 1000},
        "final": {"model": {"n_layer": 1, "n_embd": 32, "n_head": 2}, "tokens": 8192, "seq_len": 32,
                  "batch_size": 8, "eval_batches": 2, "seeds": [0], "pilot": {"enabled": False}},
        "runtime": {"warehouse": str(tmp_path / "wh.duckdb"), "out_dir": str(tmp_path / "out"),
                    "wandb_mode": "disabled", "progress": False, "threads": 1,
                    # one task on a thread here (workers 0 = auto: a child process per core)
                    "batch_k": 1, "workers": 1},
    }
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return ExperimentConfig.model_validate(data)
