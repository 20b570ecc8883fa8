"""`qa chat` (the page and its HTTP APIs) and `qa mcp` (the MCP server): the only module that imports `ui`."""

from __future__ import annotations

import click

from qa import Assistant, MissingDependency, QAError
from qa.cli import base
from qa.cli.base import cli, engine_option, settings_from, store_option
from qa.cli.terminal import errors_as_click


@cli.command("chat")
@click.option("--host", envvar="QA_HOST", default=None, help="Interface to listen on (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), envvar="QA_PORT", default=None, help="Port (default 7860).")
@engine_option("Default answer engine of the page")
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

    The API: GET /v1/models, POST /v1/chat/completions and /v1/responses (plain or streamed) and POST /api/ask,
    with the bearer key QA_API_KEY when it is set. Without a key it serves only on a loopback address (unless
    --insecure-no-key). Browser pages on other origins are refused unless listed in QA_CORS_ORIGINS.

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
        assistant = base.load_assistant(settings)
        for name, ms in assistant.warm_up().items():  # the first answer then costs what later ones do
            click.echo(f"Warmed up the {name} engine in {ms / 1000:.1f} s", err=True)

        def announce() -> None:  # once the port is bound: a port in use fails before this
            click.echo(
                f"Serving {len(assistant.documents)} articles with engines {', '.join(assistant.engine_names())} "
                f"on http://{settings.host}:{settings.port} (OpenAI-compatible API under /v1; Ctrl+C to stop)",
                err=True,
            )

        try:
            serve_page(assistant, settings, insecure_no_key=insecure_no_key, ready=announce)
        except OSError as exc:
            raise QAError(f"Cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}.") from exc


@cli.command("mcp")
@click.option("--http", "over_http", is_flag=True, help="Serve streamable HTTP on 127.0.0.1 instead of stdio.")
@click.option("--port", type=click.IntRange(1, 65535), default=7861, show_default=True, help="Port for --http.")
@engine_option("Engines to load; `ask` takes the engine per call")
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
            from ui.mcp_server import Loading, serve_mcp
        except ImportError as exc:
            raise MissingDependency(f"The MCP server needs the mcp SDK ({exc}): run pip install 'qa[mcp]'.") from exc
        where = f"http://127.0.0.1:{port}/mcp" if over_http else "stdio"
        click.echo(f"MCP server for {settings.corpus_dir} on {where} (the models load in the background)", err=True)
        # initialize is answered at once (hosts time out in seconds); the tools wait for the load
        serve_mcp(Loading(lambda: Assistant.load(settings)), settings, http=over_http, port=port)
