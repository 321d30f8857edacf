"""The corpus step: ingest and tokenise the domains, register the experiment (plain function and Prefect task)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from mixopt.config import ExperimentConfig
from mixopt.corpus.ingest import prepare_corpus
from mixopt.corpus.readers import CorpusError
from mixopt.experiment import Experiment
from mixopt.warehouse import Warehouse, reads, writer


def prepare_experiment(cfg: ExperimentConfig, wh: Warehouse, progress: bool = False) -> Experiment:
    """Build (or reuse, after checking their checksums) the token shards; record the experiment.

    Shards are also compared with the checksums the warehouse recorded for this experiment
    (`check_recorded_shards`), so the swarm never trains on data other than its earlier proxies'.

    Everything that can fail on bad input (reading, tokenising, target names) happens before the
    first write to the warehouse, so a bad config or corpus leaves the warehouse unchanged.
    """
    info = prepare_corpus(cfg, Path(cfg.runtime.out_dir), progress=progress)
    for d in info.domains:  # the content checksum of each domain's text, for the report
        d.text_sha256 = info.domain_checksums.get(d.name, "")
    exp = Experiment.create(cfg, info.domains, info.vocab_size, info.fingerprint, info.eval_sets)
    check_recorded_shards(exp, wh)
    wh.record_experiment(
        exp.experiment_id, exp.name, exp.config_hash, exp.fingerprint, exp.config, exp.domains, exp.prior
    )
    return exp


def check_recorded_shards(exp: Experiment, wh: Warehouse) -> None:
    """Refuse shards whose checksums differ from those recorded when the experiment's runs trained.

    The experiment id hashes the corpus inputs, not the token shards, so a rebuild that produced
    different tokens (another tokenizer version, a damaged file rebuilt differently) would otherwise
    mix proxies trained on different data in one experiment.
    """
    rows = reads.domain_checksums(wh, exp.experiment_id).iter_rows(named=True)
    recorded = {r["domain"]: (r["train_sha256"], r["val_sha256"]) for r in rows}
    for d in exp.domains:
        old = recorded.get(d.name)
        if old is None or not all(old):
            continue
        for split, path, was, now in (("train", d.train_path, old[0], d.train_sha256),
                                      ("val", d.val_path, old[1], d.val_sha256)):
            if was != now:
                raise CorpusError(
                    f"{path}: {split} shard of domain '{d.name}' has sha256 {now[:12]}..., but experiment "
                    f"{exp.experiment_id} recorded {was[:12]}... when its runs trained; restore the corpus, "
                    "or rename the experiment (`name`) to start a new one"
                )


@task(name="prepare-corpus", cache_policy=NONE)
def prepare_experiment_task(config: ExperimentConfig) -> Experiment:
    """Tokenise the domains (reusing shards whose inputs did not change) and record the experiment."""
    return prepare_experiment(config, writer(config.runtime.warehouse), progress=config.runtime.progress)
