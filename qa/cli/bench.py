"""`qa bench`: the benchmarks (`qa.bench`, loaded only when the command runs)."""

from __future__ import annotations

from pathlib import Path

import click

from qa.cli.base import ToolChoice, cli, questions_option, settings_from, store_option
from qa.cli.terminal import errors_as_click


@cli.command("bench")
@click.option("--quick", is_flag=True, help="Smaller sizes and fewer questions (a few minutes on 2 cores).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the JSON. Default: eval/reports/bench-RUN.json.",
)
@click.option(
    "--only",
    "only",
    type=ToolChoice("qa.bench.stats:SECTIONS"),
    multiple=True,
    help="Run only these sections (repeatable). Default: all.",
)
@questions_option
@store_option
@click.pass_context
def bench_command(
    ctx: click.Context, quick: bool, out: Path | None, only: tuple[str, ...], questions: Path, store: str | None
) -> None:
    """Measure indexing, retrieval at 10^3-10^5 chunks, answer latency per engine (vs the textbook LangChain
    pipeline), a profile of one answer, N concurrent chat sessions against `qa chat` (its /ask and its
    OpenAI-compatible endpoint), and FAISS vs PostgreSQL (`store`: the database of --store, else an embedded
    server in a temporary folder).

    \b
    Example:
        qa bench --quick --only indexing --only answers
    """
    from qa.bench import render_report, run_bench, write_report
    from qa.bench.stats import SECTIONS, BenchPlan

    settings = settings_from(ctx, store=store)
    plan = BenchPlan(quick=quick, questions=questions, only=only or SECTIONS)
    with errors_as_click():
        report = run_bench(settings, plan, log=lambda message: click.echo(message, err=True))
    path = write_report(report, out)
    click.echo(render_report(report))
    click.echo(f"\nReport: {path}")
