"""An `Assistant` (or one still loading) -> a Model Context Protocol server (the official `mcp` SDK), over stdio or
streamable HTTP.

Tools: `ask` (the `qa ask --json` record), `search` (passages with offsets and scores), `read_article` (exact text
of a span); all read-only, their inputs bounded in the schema (engine names from the engine registry). Resources:
every article, as `qa://articles/<source, percent-encoded>`. `initialize` is answered at once: the models load in
a background thread and the tools and resources wait for them. A refused call is an MCP tool error (isError with
the reason); a line on stdin that is not a JSON-RPC message gets a JSON-RPC error, never silence. `qa mcp` serves
it; the library never imports this module.
"""

# no `from __future__ import annotations`: the SDK reads the tools' annotations (built per server) at runtime
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

import anyio
import anyio.to_thread
import mcp_types
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resources import TextResource
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from pydantic import Field, ValidationError, WithJsonSchema

from qa import Assistant, Document, QAError, Settings, __version__, answer_record
from qa.engines import AUTO, ENGINES

logger = logging.getLogger(__name__)

ARTICLE_URI = "qa://articles/"
MAX_K = 50
INSTRUCTIONS = (
    "Answers questions about a fixed folder of news articles. Use `ask` for a verified answer whose every sentence "
    "cites (source, start, end, quote) with quote == article text[start:end]; it abstains when the articles don't "
    "say. Use `search` for raw passages and `read_article` (or the article resources) to read the exact text."
)
READ_ONLY = mcp_types.ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
LOOKUP = mcp_types.ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


class Loading:
    """An Assistant loading in a background thread; `get` waits for it (and raises what the load raised). Once
    loaded, its engines warm up (the LLM loads) in the same thread, as `qa chat` does before serving."""

    def __init__(self, load: Callable[[], Assistant]) -> None:
        self._done = threading.Event()
        self._assistant: Assistant | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, args=(load,), name="qa-load", daemon=True).start()

    @classmethod
    def of(cls, assistant: Assistant) -> "Loading":
        return cls(lambda: assistant)

    def _run(self, load: Callable[[], Assistant]) -> None:
        try:
            self._assistant = load()
        except BaseException as exc:  # handed to every caller of get()
            logger.error("Could not load the assistant: %s", exc)
            self._error = exc
        finally:
            self._done.set()
        if self._assistant is not None:  # after the tools are free: an LLM question meanwhile waits for the model
            for name, ms in self._assistant.warm_up().items():
                logger.info("Warmed up the %s engine in %.1f s", name, ms / 1000)

    def get(self) -> Assistant:
        self._done.wait()
        if self._assistant is None:
            raise ToolError(f"The corpus could not be loaded: {self._error}")
        return self._assistant


def article_uri(source: str) -> str:
    return ARTICLE_URI + quote(source, safe="")


def engine_choices(settings: Settings) -> list[str]:
    """What `ask` may be told to use: `auto` and the registry's engines that settings.engine lets load here."""
    allowed = [s.name for s in ENGINES.values() if not s.needs_model or settings.engine in (s.name, AUTO)]
    return [AUTO, *allowed]


class CorpusServer(MCPServer):
    """MCPServer whose resources (one per article) appear once the corpus has loaded; listing them waits."""

    def __init__(self, loading: Loading, **options: Any) -> None:
        super().__init__(**options)
        self.loading = loading
        self._listed = threading.Lock()
        self._resources_added = False

    def ready(self) -> Assistant:
        assistant = self.loading.get()
        with self._listed:
            if not self._resources_added:
                for document in assistant.documents.values():
                    self.add_resource(article_resource(document))
                self._resources_added = True
        return assistant

    async def list_resources(self) -> list[mcp_types.Resource]:
        await anyio.to_thread.run_sync(self.ready)
        return await super().list_resources()

    async def read_resource(self, uri: Any, context: Any = None) -> Any:
        await anyio.to_thread.run_sync(self.ready)
        return await super().read_resource(uri, context)


def build_mcp(source: Assistant | Loading, settings: Settings | None = None) -> CorpusServer:
    """The MCP server: three tools and one resource per article. `source` may still be loading."""
    loading = source if isinstance(source, Loading) else Loading.of(source)
    if settings is None:
        settings = source.settings if isinstance(source, Assistant) else Settings()
    engines = [AUTO, *source.engine_names()] if isinstance(source, Assistant) else engine_choices(settings)
    server = CorpusServer(loading, name="qa", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")
    Engine = Annotated[
        str | None,
        WithJsonSchema({"anyOf": [{"enum": engines}, {"type": "null"}], "default": None}),
        Field(description=f"Which engine answers: {', '.join(engines)} (default: the server's, usually auto)."),
    ]
    Count = Annotated[int, Field(ge=1, le=MAX_K, description=f"How many passages (1-{MAX_K}).")]
    Offset = Annotated[int | None, Field(ge=0, description="A character offset into the article (Python str index).")]

    def ask(
        question: Annotated[str, Field(description="A question about the articles.")], engine: Engine = None
    ) -> dict[str, Any]:
        """Answer a question about the articles, or abstain when they don't hold the answer.

        Returns the `qa ask --json` record: "answer" (sentences ending in [n] markers), "abstained", "citations"
        ({marker, source, start, end, quote}; quote is exactly the article's text[start:end]), "passages",
        "timings_ms", "engine" and "usage" (an LLM answer's token counts).
        """
        if engine is not None and engine not in engines:
            raise ToolError(f"engine={engine!r} is not available here; use one of {', '.join(engines)}.")
        assistant = server.ready()
        if engine is not None and engine != AUTO and engine not in assistant.engine_names():
            raise ToolError(
                f"engine={engine!r} could not load here; use one of {AUTO}, {', '.join(assistant.engine_names())}."
            )
        try:
            return answer_record(assistant.ask(question, engine=engine))
        except QAError as exc:
            raise ToolError(str(exc)) from exc

    def search(query: Annotated[str, Field(description="What to look for.")], k: Count = 5) -> list[dict[str, Any]]:
        """The `k` passages of the articles that best match `query`, best first, with their exact offsets.

        Each passage is {source, start, end, score, text} with text == the article's text[start:end].
        """
        try:
            passages = server.ready().retrieve(query, k=k)
        except QAError as exc:
            raise ToolError(str(exc)) from exc
        return [
            {"source": p.source, "start": p.start, "end": p.end, "score": round(p.score, 6), "text": p.text}
            for p in passages
        ]

    def read_article(
        source: Annotated[str, Field(description="The article's name, as in citations and resources.")],
        start: Offset = None,
        end: Offset = None,
    ) -> dict[str, Any]:
        """The exact text of article `source` from character `start` to `end` (default: the whole article).

        Offsets are Python string offsets, as in citations: read_article(c.source, c.start, c.end) returns c.quote.
        """
        return read_span(server.ready().documents, source, start, end)

    add_tool(server, ask, "Ask the articles", READ_ONLY)
    add_tool(server, search, "Search the articles", LOOKUP)
    add_tool(server, read_article, "Read an article", LOOKUP)
    return server


def add_tool(server: MCPServer, function: Callable[..., Any], title: str, hints: mcp_types.ToolAnnotations) -> None:
    """Register `function` with its docstring as a clean description (no source indentation)."""
    server.add_tool(function, title=title, description=inspect.cleandoc(function.__doc__ or ""), annotations=hints)


def read_span(documents: Any, source: str, start: int | None, end: int | None) -> dict[str, Any]:
    document = documents.get(source)
    if document is None:
        raise ToolError(f"No article named {source!r}: list the resources (or use `search`) for the names.")
    first = 0 if start is None else start
    last = len(document.text) if end is None else end
    if not 0 <= first < last <= len(document.text):
        raise ToolError(
            f"The span [{first}:{last}] is not inside {source} ({len(document.text):,} characters): "
            "give 0 <= start < end <= its length."
        )
    return {"source": source, "title": document.title, "start": first, "end": last, "text": document.text[first:last]}


def article_resource(document: Document) -> TextResource:
    return TextResource(
        uri=article_uri(document.source),
        name=document.source,
        title=document.title,
        description=f"The article {document.source}, exactly as read (citation offsets point into this text).",
        mime_type="text/plain",
        text=document.text,
    )


def rpc_error(problem: Exception) -> SessionMessage:
    """The JSON-RPC error for a line that is not a message: -32700 when it is not JSON, else -32600."""
    unreadable = isinstance(problem, ValidationError) and any(e["type"] == "json_invalid" for e in problem.errors())
    code, what = (
        (mcp_types.PARSE_ERROR, "Parse error: the line is not valid JSON")
        if unreadable or not isinstance(problem, ValidationError)
        else (mcp_types.INVALID_REQUEST, "Invalid request: the line is not a JSON-RPC 2.0 message")
    )
    error = mcp_types.ErrorData(code=code, message=what)
    return SessionMessage(mcp_types.JSONRPCError(jsonrpc="2.0", id=None, error=error))


async def run_stdio(server: MCPServer) -> None:
    """Serve over stdio; what the SDK's reader cannot parse is answered with a JSON-RPC error (it dropped them, so
    the client waited for ever)."""
    async with stdio_server() as (incoming, outgoing):
        send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)

        async def forward() -> None:
            async with send:
                async for message in incoming:
                    if isinstance(message, Exception):
                        logger.info("Answered an unreadable line with a JSON-RPC error: %s", str(message)[:200])
                        await outgoing.send(rpc_error(message))
                    else:
                        await send.send(message)

        lowlevel = server._lowlevel_server  # the SDK's run_stdio_async does the same, with its own reader
        async with anyio.create_task_group() as group:
            group.start_soon(forward)
            await lowlevel.run(receive, outgoing, lowlevel.create_initialization_options())
            group.cancel_scope.cancel()


def serve_mcp(
    source: Assistant | Loading, settings: Settings | None = None, *, http: bool = False, port: int = 7861
) -> None:
    """Serve over stdio (default) or streamable HTTP on 127.0.0.1:`port` (path /mcp) until interrupted."""
    server = build_mcp(source, settings)
    if http:
        logger.info("MCP over streamable HTTP on http://127.0.0.1:%d/mcp", port)
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        anyio.run(run_stdio, server)
