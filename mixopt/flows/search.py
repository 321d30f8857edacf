"""The parent flow: corpus → swarm → fit and propose → final comparison → report."""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect import flow

from mixopt.config import ExperimentConfig
from mixopt.config.file import ConfigFile, resolve_config
from mixopt.flows.final import run_final
from mixopt.flows.swarm import SwarmSummary, run_swarm
from mixopt.tasks.context import experiment_run
from mixopt.tasks.final import final_specs, pilot_specs, spec_labels
from mixopt.tasks.fit import FitOutcome, fit_and_propose_task
from mixopt.tasks.report import report_task


@dataclass
class SearchResult:
    """What `mixture_search` returns (and the CLI prints)."""

    experiment_id: str
    domains: list[str]
    prior: list[float]
    swarm: SwarmSummary
    fit: FitOutcome
    comparison: list[dict] = field(default_factory=list)
    verdict: str = ""
    report_path: str = ""
    warnings: list[str] = field(default_factory=list)  # the report's trust checks (noise floor, scale transfer)


@flow(name="mixture-search", log_prints=True)
def mixture_search(
    config: ExperimentConfig = ExperimentConfig(),
    config_file: ConfigFile = None,
) -> SearchResult:
    """The whole search: tokenise the corpus, train the proxy swarm, fit and propose, run the final comparison."""
    with experiment_run(resolve_config(config, config_file)) as exp:
        summary = run_swarm(exp)
        outcome = fit_and_propose_task(exp)
        final_ids, labels = None, None
        if exp.cfg.final.enabled:
            trained, _pilot, seeds = run_final(exp, outcome.weights)
            specs = final_specs(exp, trained, seeds)
            final_ids = [s.run_id for s in specs]
            labels = spec_labels(specs + pilot_specs(exp, outcome.weights))
        rep = report_task(exp, final_ids, labels)
        return SearchResult(
            experiment_id=exp.experiment_id, domains=exp.domain_names, prior=[float(p) for p in exp.prior],
            swarm=summary, fit=outcome, comparison=rep.comparison, verdict=rep.verdict, report_path=str(rep.path),
            warnings=rep.warnings,
        )
