"""The `qa` command group and what its commands share: the options, Settings from them, the assistant loader."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from qa import Assistant, Settings, __version__
from qa.cli.terminal import OneLineErrors, errors_as_click, progress_bar, setup_logging
from qa.engines import AUTO, CHOICES, ENGINES
from qa.ingest import describe_formats

Command = TypeVar("Command", bound=Callable[..., Any])

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


class ToolChoice(click.Choice[str]):
    """A choice among names a tool defines ("qa.bench.stats:SECTIONS"), read from it when an argument is checked
    or the command's help is shown: one definition, and `qa --help` still loads none of the tools."""

    def __init__(self, where: str) -> None:
        super().__init__(())
        self.where = where

    def load(self) -> None:
        if not self.choices:
            module, _, name = self.where.partition(":")
            self.choices = tuple(getattr(importlib.import_module(module), name))

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        self.load()
        return super().convert(value, param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        self.load()
        return super().get_metavar(param, ctx)


def engine_option(purpose: str) -> Callable[[Command], Command]:
    """The one --engine option (QA_ENGINE): the registry's engines and auto. `purpose` says what it chooses."""
    return click.option(
        "--engine",
        type=click.Choice(list(CHOICES)),
        default=None,
        envvar="QA_ENGINE",
        help=f"{purpose} (default {AUTO}: the best engine that can run here; {', '.join(ENGINES)}).",
    )


def settings_from(ctx: click.Context, **overrides: Any) -> Settings:
    """Settings from QA_* variables, then the group's options, then the command's own (None means unset)."""
    with errors_as_click():
        return Settings.from_env(**{**ctx.obj, **{k: v for k, v in overrides.items() if v is not None}})


def load_assistant(settings: Settings) -> Assistant:
    """The assistant, with a progress bar on stderr if the index has to be built first."""
    labels = ("Indexing: reading documents", "Indexing: splitting sentences", "Indexing: embedding")
    with progress_bar(*labels) as progress:
        return Assistant.load(settings, progress=progress)


@click.group(cls=OneLineErrors)
@click.option(
    "--corpus",
    "corpus_dir",
    type=click.Path(path_type=Path),
    envvar="QA_CORPUS_DIR",
    help=f"Folder of articles ({describe_formats()}). Default: seeds/.",
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
