"""`qa eval` (score configurations on the question set and the conversations) and `qa fit` (refit the evidence
ranker and the decision on the dev split). The evaluation tools load only when these commands run."""

from __future__ import annotations

import json
from pathlib import Path

import click

from qa.cli import base
from qa.cli.base import ToolChoice, cli, questions_option, settings_from, store_option
from qa.cli.terminal import errors_as_click, progress_bar
from qa.engines import ENGINES


@cli.command("eval")
@click.argument("names", nargs=-1)
@click.option("--compare", is_flag=True, help="Compare NAMES side by side (default: the `standard` group).")
@click.option(
    "--split",
    type=ToolChoice("qa.evaluation.plan:SPLITS"),
    default="all",
    show_default=True,
    help="dev and test of --questions; second: the held-out second corpus (eval/second); formats: PDF, HTML, DOCX, "
    "EPUB and txt (eval/formats); all: the four.",
)
@click.option(
    "--engine",
    type=click.Choice(list(ENGINES)),
    default="extractive",
    show_default=True,
    help="The engine to evaluate when no NAMES are given.",
)
@questions_option
@click.option(
    "--thresholds",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("eval/thresholds.json"),
    show_default=True,
)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), help="Default: eval/reports/RUN/.")
@click.option("--curve/--no-curve", default=True, help="Re-run extractive over abstention thresholds.")
@click.option("--gate", is_flag=True, help="Exit 1 when the gated row is below eval/thresholds.json.")
@click.option("--list", "list_only", is_flag=True, help="List the configurations and groups, then exit.")
@click.option("--conversations", is_flag=True, help="Also score the multi-turn conversations (per-turn tables).")
@click.option("--conversations-only", is_flag=True, help="Score only the multi-turn conversations.")
@click.option(
    "--conversation-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("eval/conversations.jsonl"),
    show_default=True,
    help="The multi-turn set (JSONL, gold quotes per turn).",
)
@store_option
@click.pass_context
def eval_command(
    ctx: click.Context,
    names: tuple[str, ...],
    compare: bool,
    split: str,
    engine: str,
    questions: Path,
    thresholds: Path,
    out: Path | None,
    curve: bool,
    gate: bool,
    list_only: bool,
    conversations: bool,
    conversations_only: bool,
    conversation_file: Path,
    store: str | None,
) -> None:
    """Score configurations on the question set (and the conversations); write report.json, .md and .html.

    \b
    Configurations and groups: see eval/README.md (or `qa eval --list`).
    Examples:
        qa eval --split all --compare extractive hybrid-vs-dense llm baseline
        qa eval --split test --conversations-only extractive extractive-join
    """
    from qa.evaluation import EvalPlan, run_eval

    if list_only:
        from qa.evaluation import CONFIGURATIONS, GROUPS

        click.echo("\n".join(f"{c.name}: {c.description}" for c in CONFIGURATIONS.values()))
        click.echo("\n".join(f"{name} (group): {' + '.join(members)}" for name, members in GROUPS.items()))
        return
    if gate and conversations_only:
        raise click.UsageError("--gate checks the question set: drop --conversations-only.")
    settings = settings_from(ctx, engine="extractive", store=store)
    plan = EvalPlan(
        names, compare, split, engine, questions, thresholds, out, curve, gate, conversations, conversations_only,
        conversation_file,
    )  # fmt: skip
    with errors_as_click(), progress_bar("Evaluating") as progress:
        result = run_eval(settings, plan, load=base.load_assistant, progress=progress)
    for title, (headers, rows) in result.tables:
        click.echo(f"\n{title}\n| " + " | ".join(headers) + " |")
        click.echo("\n".join("| " + " | ".join(row) + " |" for row in rows))
    click.echo(f"\nReport: {result.paths['html']}")
    for failure in result.failures:
        click.echo(f"GATE FAILED ({result.limits['configuration']}, {result.limits['split']}): {failure}", err=True)
    if result.failures:
        ctx.exit(1)


@cli.command("fit")
@questions_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write the fitted models. Default: the package's qa/ranker.json (what answers use).",
)
@click.option(
    "--reader/--no-reader",
    default=True,
    show_default=True,
    help="Re-rank the shortlist with the trained reader and let the decision read its scores (QA_READER_PATH).",
)
@click.option("--without", multiple=True, help="A feature to give no weight (repeatable), to measure what it earns.")
@click.option(
    "--hedge-budget",
    type=float,
    default=None,
    help="Hedge answers below the threshold whose dev false refusal is this (e.g. 0.10); default: no hedges.",
)
@click.option(
    "--calibrate-only",
    is_flag=True,
    help="Keep the fitted models and thresholds; only re-scale P(answerable) to the dev questions (Platt scaling).",
)
@click.pass_context
def fit_command(
    ctx: click.Context,
    questions: Path,
    out: Path | None,
    reader: bool,
    without: tuple[str, ...],
    hedge_budget: float | None,
    calibrate_only: bool,
) -> None:
    """Fit the evidence ranker, its re-ranking by the reader and the abstention decision on the dev split (gold
    quotes) and save them as JSON.

    \b
    Example:
        qa fit                    # make fit; then `qa eval` to see what changed
        qa fit --no-reader --out /tmp/ranker-no-reader.json
        qa fit --calibrate-only   # the same verdicts, a confidence that means what it says
    """
    from qa.decision import DEFAULT_READER, Reader
    from qa.evaluation import load_questions
    from qa.evaluation.fit import fit, recalibrate, save

    settings = settings_from(ctx, engine="extractive")
    with errors_as_click():
        dev = [q for q in load_questions(questions, settings.corpus_dir) if q.split == "dev"]
        assistant = base.load_assistant(settings)
        if calibrate_only:
            with progress_bar("Scoring the dev questions") as progress:
                ranker = recalibrate(assistant, dev, progress=progress)
        else:
            scorer = Reader.shared(settings.reader_path or DEFAULT_READER) if reader else None
            with progress_bar("Collecting candidates") as progress:
                ranker = fit(
                    assistant, dev, reader=scorer, without=without, hedge_budget=hedge_budget, progress=progress
                )
        path = save(ranker, out)
    click.echo(json.dumps(ranker.meta, indent=1))
    hedge = "" if ranker.confident is None else f", hedges below {ranker.confident:.2f}"
    click.echo(f"Threshold on P(answerable): {ranker.threshold:.2f}{hedge}. Saved to {path}.")
