"""Prefect task: write the report and publish it as artifacts in the Prefect UI."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from mixopt.experiment import Experiment
from mixopt.report import Report, build_report
from mixopt.warehouse import writer


@task(name="report", cache_policy=NONE)
def report_task(exp: Experiment, final_run_ids: list[str] | None = None,
                labels: dict[str, list[tuple[str, int]]] | None = None) -> Report:
    """Markdown + PNG plots in the output folder; the summary, top mixtures and warnings (noise floor,
    scale transfer) as artifacts.
    `final_run_ids`: the final runs to compare (one final configuration; default the latest);
    `labels`: run_id -> [(label, seed)] of the final and pilot specs (runs several labels share)."""
    rep = build_report(writer(exp.warehouse), exp.experiment_id, exp.report_dir(), final_run_ids,
                       min_rho=exp.cfg.design.transfer_min_rho, labels=labels)
    for w in rep.warnings:
        print(f"warning: {w}")
    if rep.warnings:
        create_markdown_artifact(key="mixopt-warnings", markdown="\n".join(f"- **warning:** {w}" for w in rep.warnings),
                                 description=f"Trust checks of {exp.experiment_id}: noise floor and scale transfer")
    create_table_artifact(key="top-mixtures", table=rep.top_mixtures,
                          description=f"Best proxy mixtures of {exp.experiment_id}")
    if rep.comparison:
        create_table_artifact(key="final-comparison", table=rep.comparison, description=rep.verdict)
    create_markdown_artifact(key="mixopt-report", markdown=rep.markdown, description=f"Report of {exp.experiment_id}")
    publish_plots(rep)
    return rep


def plots_markdown(rep: Report) -> str:
    """Every plot of the report as a markdown image with a `data:` URI (the Prefect UI shows them
    without a file server), each under its name."""
    from mixopt.report.html import data_uri

    return "\n\n".join(f"### {p.stem.replace('_', ' ')}\n\n![{p.stem}]({data_uri(p)})"
                         for p in rep.plots if p.is_file())


def publish_plots(rep: Report) -> None:
    """The plots in the UI (`mixopt-plots`, images inlined) and a link to the self-contained HTML report."""
    if rep.plots:
        create_markdown_artifact(key="mixopt-plots", markdown=plots_markdown(rep),
                                 description=f"Plots of {rep.experiment_id} (the report's PNGs, inlined)")
    if rep.html is not None:
        create_link_artifact(key="mixopt-report-html", link=rep.html.resolve().as_uri(),
                             link_text=f"report.html of {rep.experiment_id}",
                             description="The whole report as one self-contained page (images inlined); "
                                         "`mixopt report --open` rebuilds and opens it")
