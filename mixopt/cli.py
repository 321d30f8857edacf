"""The `mixopt` command line: run a search, query the warehouse, rebuild the report."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The ephemeral Prefect server may take well over its default 20 s to start on a busy 2-core machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.markup import escape  # noqa: E402
from rich.table import Table  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Choose a pretraining data mixture empirically.")
console = Console()
err = Console(stderr=True, soft_wrap=True)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors printed as one line: `MixoptError` (ConfigError, CorpusError, WarehouseError, NotEnoughProxies, ...)."""
    from mixopt.errors import MixoptError

    return (MixoptError,)


class _HideUserErrorTracebacks(logging.Filter):
    """Prefect logs a flow's exception with its traceback; for bad input the message is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], _user_errors()):
            return False
        return True


def _fail(message: str, code: int = 2) -> None:
    err.print("[bold red]error:[/] " + escape(message), highlight=False)
    raise typer.Exit(code)


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def run(
    config: Optional[Path] = typer.Argument(None, help="Experiment YAML; omit to run the demo on the built-in corpus."),
    warehouse: Optional[str] = typer.Option(None, "--warehouse", "-w", help="DuckDB warehouse file or "
                                            "postgresql:// URL (overrides runtime.warehouse)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (overrides runtime.out_dir)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run the whole search: corpus, proxy swarm, fit, proposal, final comparison, report."""
    from mixopt.config import load_config
    from mixopt.config.io import demo_config

    try:
        cfg = load_config(config) if config is not None else demo_config()
    except _user_errors() as e:
        _fail(str(e))
    if out is not None:
        cfg.runtime.out_dir = str(out)
        if warehouse is None:
            cfg.runtime.warehouse = str(out / "mixopt.duckdb")
    if warehouse is not None:
        cfg.runtime.warehouse = str(warehouse)
    if quiet:
        cfg.runtime.progress = False
    from mixopt.warehouse.postgres import check_reachable

    try:
        check_reachable(cfg.runtime.warehouse)  # a bad store URL: one line, before anything starts
    except _user_errors() as e:
        _fail(str(e))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    for name in ("prefect", "prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).addFilter(_HideUserErrorTracebacks())

    from mixopt.flows.search import mixture_search

    try:
        result = mixture_search(config=cfg)
    except _user_errors() as e:
        message = str(e)
        _drop_tracebacks(e)
        _fail(message)
    _print_summary(result)


def _drop_tracebacks(exc: BaseException | None) -> None:
    """Free the frames an exception keeps alive (they hold closed DuckDB handles, which the DuckDB
    bindings would otherwise report as leaked when the interpreter exits)."""
    import gc

    while exc is not None:
        exc.__traceback__ = None
        exc = exc.__cause__ or exc.__context__
    gc.collect()


def _print_summary(result) -> None:
    t = Table(title=f"Proposed mixture ({result.fit.method} on {result.fit.regressor}, "
                    f"{result.fit.n_train} proxies)")
    t.add_column("domain"); t.add_column("natural", justify="right"); t.add_column("proposed", justify="right")
    t.add_column("cap", justify="center")
    for name, p, w, c in zip(result.domains, result.prior, result.fit.weights, result.fit.caps_active):
        t.add_row(name, f"{p:.3f}", f"{w:.3f}", "active" if c else "")
    console.print(t)
    cv = Table(title="Regressors, k-fold CV on the proxies")
    for col in ("regressor", "spearman", "kendall", "r2"):
        cv.add_column(col, justify="right" if col != "regressor" else "left")
    for r in result.fit.cv:
        cv.add_row(r["regressor"] + (" (chosen)" if r["regressor"] == result.fit.regressor else ""),
                   *[("–" if r[k] is None else f"{r[k]:.3f}") for k in ("spearman", "kendall", "r2")])
    console.print(cv)
    if result.comparison:
        c = Table(title="Final runs: target loss (lower is better)")
        for col in ("mixture", "seeds", "mean", "std"):
            c.add_column(col, justify="right" if col != "mixture" else "left")
        for r in result.comparison:
            c.add_row(r["label"], str(r["seeds"]),
                      *[("–" if r[k] is None else f"{r[k]:.4f}") for k in ("mean_target", "std_target")])
        console.print(c)
    console.print(result.verdict.replace("**", ""))
    for w in getattr(result, "warnings", []):
        console.print(f"[bold yellow]warning:[/] {escape(w)}", highlight=False)
    s = result.swarm
    console.print(f"swarm: {s.trained} trained now, {s.reused} reused; "
                  f"{s.ok} ok, {s.failed} failed, {s.diverged} diverged")
    console.print(f"report: {result.report_path}")


@app.command()
def sql(
    query: str = typer.Argument(..., help="One read-only query, e.g. \"select * from proxy_runs\"."),
    warehouse: str = typer.Option("out/mixopt.duckdb", "--warehouse", "-w",
                                  help="DuckDB warehouse file, or the shared store's postgresql:// URL."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    timeout: float = typer.Option(60.0, "--timeout", "-t", min=0,
                                  help="Stop the query after this many seconds (0: no limit)."),
    as_admin: bool = typer.Option(False, "--as-admin", help="On the shared store: run even as a superuser or a "
                                  "role with server file or program rights (refused otherwise)."),
) -> None:
    """Query the warehouse (read-only: statements that change anything are refused). Answers while a
    run writes: it reads the latest committed state. On the shared store, connect as a read-only role
    (`mixopt store grant-reader`)."""
    from mixopt.warehouse import read_only_query

    try:
        cols, rows = read_only_query(warehouse, query, timeout_s=timeout or None, allow_admin=as_admin)
    except _user_errors() as e:
        _fail(str(e))
    if format is Format.json:
        typer.echo(json.dumps([dict(zip(cols, r)) for r in rows], default=str, indent=1))
    elif format is Format.csv:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(cols)
        w.writerows(rows)
        typer.echo(buf.getvalue().rstrip("\n"))
    else:
        t = Table(show_lines=False)
        for c in cols:
            t.add_column(c, overflow="fold")
        for r in rows:
            t.add_row(*[_cell(v) for v in r])
        console.print(t)


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return "[" + ", ".join(_cell(x) for x in v) + "]"
    return "" if v is None else str(v)


@app.command()
def report(
    warehouse: str = typer.Option("out/mixopt.duckdb", "--warehouse", "-w",
                                  help="DuckDB warehouse file, or the shared store's postgresql:// URL."),
    experiment: Optional[str] = typer.Option(None, "--experiment", "-e", help="Experiment id (default: the latest)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Folder for report.md and plots (default: next to the warehouse)."),
    open_: bool = typer.Option(False, "--open", help="Open report.html (one self-contained page, written next to "
                               "report.md) in a browser when one is available."),
) -> None:
    """Rebuild the markdown report and plots of an experiment from the warehouse (also while a run writes)."""
    from mixopt.report import build_report
    from mixopt.warehouse import ReadOnlyWarehouse, reads
    from mixopt.warehouse.postgres import is_url

    try:
        db = ReadOnlyWarehouse(warehouse)
    except _user_errors() as e:
        _fail(str(e))
    with db:
        exp_id = experiment or reads.latest_experiment(db)
        if exp_id is None:
            _fail(f"{warehouse}: no experiment recorded yet")
        folder = out or (Path("out") if is_url(warehouse) else Path(warehouse).parent) / "reports" / exp_id
        try:
            rep = build_report(db, exp_id, folder)
        except (ValueError, *_user_errors()) as e:
            _fail(str(e))
    console.print(rep.markdown)
    console.print(f"[dim]written to {rep.path} and {rep.html}[/]")
    if open_:
        from mixopt.report.html import open_in_browser

        if not open_in_browser(rep.html):
            console.print(f"[dim]no browser here: open {rep.html}[/]")


@app.command()
def export(
    experiment: Optional[str] = typer.Argument(None, help="Experiment id (default: the latest in the warehouse)."),
    format: str = typer.Option("yaml", "--format", "-f", help="yaml, json, megatron (a --data-path blend) or hf "
                               "(an interleave_datasets snippet)."),
    warehouse: Path = typer.Option(Path("out/mixopt.duckdb"), "--warehouse", "-w", help="DuckDB warehouse file."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="File to write (default: stdout)."),
    path_template: str = typer.Option("{domain}", "--path-template",
                                      help="Data path of a domain for megatron/hf, e.g. '/data/{domain}/text_document' "
                                           "({domain}, {source} and {topic} are filled in)."),
    tokens: Optional[int] = typer.Option(None, "--tokens", help="Token budget for the per-domain tokens and epochs "
                                         "(default: the final runs' budget, else final.tokens)."),
) -> None:
    """Write the chosen mixture with its provenance (ids, predicted and measured target, config hash,
    code version) and each domain's tokens and epochs at the final run's budget."""
    from mixopt.export import export_mixture
    from mixopt.warehouse import ReadOnlyWarehouse

    try:
        with ReadOnlyWarehouse(warehouse) as db:
            text = export_mixture(db, experiment, format, path_template, tokens)
    except _user_errors() as e:
        _fail(str(e))
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        err.print(f"[dim]written to {out}[/]")


@app.command()
def diff(
    experiment_a: str = typer.Argument(..., help="The earlier experiment's id."),
    experiment_b: str = typer.Argument(..., help="The later experiment's id."),
    warehouse: str = typer.Option("out/mixopt.duckdb", "--warehouse", "-w",
                                  help="DuckDB warehouse file, or the shared store's postgresql:// URL."),
) -> None:
    """Which domains of B are unchanged since A, added, removed or changed, by content checksum (the text's,
    or the shards' for pre-tokenized domains) and tokenizer, not by name: a renamed domain with the same
    content is unchanged (renamed). What `design.reuse` would keep frozen: the unchanged ones."""
    from mixopt.warehouse import ReadOnlyWarehouse

    try:
        with ReadOnlyWarehouse(warehouse) as db:
            result = _diff_experiments(db, experiment_a, experiment_b, warehouse)
    except _user_errors() as e:
        _fail(str(e))
    t = Table(title=f"Domains of {experiment_b} against {experiment_a}")
    for col in ("status", experiment_a, experiment_b):
        t.add_column(col, overflow="fold")
    for status, a, b in result.rows():
        t.add_row(status, a, b)
    console.print(t)
    console.print(f"{len(result.unchanged)} unchanged ({len(result.renamed)} renamed), {len(result.changed)} changed, "
                  f"{len(result.added)} added, {len(result.removed)} removed", highlight=False)


def _diff_experiments(db, a: str, b: str, where: str):
    """`diff_domains` of two recorded experiments (a WarehouseError naming the unknown id otherwise)."""
    from mixopt.errors import MixoptError
    from mixopt.mixtures.reuse import diff_domains, identities
    from mixopt.warehouse import reads
    from mixopt.warehouse.postgres import is_url, redact

    sides = []
    for exp_id in (a, b):
        rows = reads.domain_identities(db, exp_id).to_dicts()
        if not rows:
            known = reads.experiment_ids(db)
            shown = ", ".join(known[:5]) + (", ..." if len(known) > 5 else "")
            raise MixoptError(f"{redact(where) if is_url(where) else where}: no experiment {exp_id!r} recorded "
                              f"(known: {shown or 'none'})")
        sides.append(identities(rows, reads.experiment_config(db, exp_id)))
    return diff_domains(*sides)


store_app = typer.Typer(no_args_is_help=True, help="Administer the shared PostgreSQL store.")
app.add_typer(store_app, name="store")


@store_app.command("grant-reader")
def grant_reader(
    name: str = typer.Argument(..., help="The read-only role to create or update (lower-case letters, digits, _)."),
    warehouse: str = typer.Option("postgresql://", "--warehouse", "-w", help="The store's postgresql:// URL, "
                                  "connected as an administrator (default: libpq's PGHOST, PGDATABASE, PGSERVICE...)."),
    timeout: float = typer.Option(60.0, "--timeout", "-t", help="The role's statement timeout in seconds."),
) -> None:
    """Create (or update) a read-only login role for analysts: SELECT on mixopt's tables and views only,
    no server file or program rights, every transaction read-only, a statement timeout. Set its password
    yourself (psql's \\password NAME) or allow it in pg_hba.conf."""
    from mixopt.warehouse.postgres import redact
    from mixopt.warehouse.roles import grant_reader as grant

    try:
        relations = grant(warehouse, name, timeout)
    except _user_errors() as e:
        _fail(str(e))
    console.print(f"role {name}: read-only, SELECT on {len(relations)} tables and views of {redact(warehouse)}, "
                  f"statement timeout {timeout:g} s", highlight=False)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
