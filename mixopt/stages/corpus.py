"""The corpus stage without Prefect: ingest and tokenise the domains, register the experiment."""

from __future__ import annotations

from pathlib import Path

from mixopt.config import ExperimentConfig
from mixopt.corpus.ingest import prepare_corpus
from mixopt.experiment import Experiment
from mixopt.warehouse import Warehouse


def prepare_experiment(cfg: ExperimentConfig, wh: Warehouse, progress: bool = False) -> Experiment:
    """Build (or reuse, after checking their checksums) the token shards; record the experiment.

    Everything that can fail on bad input (reading, tokenising, target names) happens before the
    first write to the warehouse, so a bad config or corpus leaves the warehouse unchanged.
    """
    info = prepare_corpus(cfg, Path(cfg.runtime.out_dir), progress=progress)
    exp = Experiment.create(cfg, info.domains, info.vocab_size, info.fingerprint)
    wh.record_experiment(
        exp.experiment_id, exp.name, exp.config_hash, exp.fingerprint, exp.config, exp.domains, exp.prior
    )
    return exp
