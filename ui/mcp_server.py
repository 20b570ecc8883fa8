"""An `Assistant` -> a Model Context Protocol server (the official `mcp` SDK), over stdio or streamable HTTP.

Tools: `ask` (the `qa ask --json` record), `search` (passages with offsets and scores), `read_article` (exact text
of a span). Resources: every article, as `qa://articles/<source, percent-encoded>`. A refused call comes back as
an MCP tool error (isError with the reason), never as a crash of the server. `qa mcp` serves it; the library
never imports this module.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resources import TextResource

from qa import Assistant, Document, QAError, __version__, answer_record
from qa.engines import AUTO

logger = logging.getLogger(__name__)

ARTICLE_URI = "qa://articles/"
MAX_K = 50
INSTRUCTIONS = (
    "Answers questions about a fixed folder of news articles. Use `ask` for a verified answer whose every sentence "
    "cites (source, start, end, quote) with quote == article text[start:end]; it abstains when the articles don't "
    "say. Use `search` for raw passages and `read_article` (or the article resources) to read the exact text."
)


def article_uri(source: str) -> str:
    return ARTICLE_URI + quote(source, safe="")


def build_mcp(assistant: Assistant) -> MCPServer:
    """The MCP server for `assistant`: three tools and one resource per article."""
    server: MCPServer = MCPServer("qa", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")
    documents = assistant.documents
    engines = (AUTO, *assistant.engine_names())

    @server.tool()
    def ask(question: str, engine: str | None = None) -> dict[str, Any]:
        """Answer a question about the articles, or abstain when they don't hold the answer.

        Returns the `qa ask --json` record: "answer" (sentences ending in [n] markers), "abstained", "citations"
        ({marker, source, start, end, quote}; quote is exactly the article's text[start:end]), "passages",
        "timings_ms", "engine" and "usage" (an LLM answer's token counts). `engine` is "auto" (default),
        "extractive" (quotes) or "llm" if available.
        """
        if engine is not None and engine not in engines:
            raise ToolError(f"engine={engine!r} is not available here; use one of {', '.join(engines)}.")
        try:
            return answer_record(assistant.ask(question, engine=engine))
        except QAError as exc:
            raise ToolError(str(exc)) from exc

    @server.tool()
    def search(query: str, k: int = 5) -> list[dict[str, Any]]:
        """The `k` passages (1-50) of the articles that best match `query`, best first, with their exact offsets.

        Each passage is {source, start, end, score, text} with text == the article's text[start:end].
        """
        if not 1 <= k <= MAX_K:
            raise ToolError(f"k={k} is out of range: ask for 1 to {MAX_K} passages.")
        try:
            passages = assistant.retrieve(query, k=k)
        except QAError as exc:
            raise ToolError(str(exc)) from exc
        return [
            {"source": p.source, "start": p.start, "end": p.end, "score": round(p.score, 6), "text": p.text}
            for p in passages
        ]

    @server.tool()
    def read_article(source: str, start: int | None = None, end: int | None = None) -> dict[str, Any]:
        """The exact text of article `source` from character `start` to `end` (default: the whole article).

        Offsets are Python string offsets, as in citations: read_article(c.source, c.start, c.end) returns c.quote.
        """
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
        return {
            "source": source,
            "title": document.title,
            "start": first,
            "end": last,
            "text": document.text[first:last],
        }

    for document in documents.values():
        server.add_resource(article_resource(document))
    return server


def article_resource(document: Document) -> TextResource:
    return TextResource(
        uri=article_uri(document.source),
        name=document.source,
        title=document.title,
        description=f"The article {document.source}, exactly as read (citation offsets point into this text).",
        mime_type="text/plain",
        text=document.text,
    )


def serve_mcp(assistant: Assistant, *, http: bool = False, port: int = 7861) -> None:
    """Serve over stdio (default) or streamable HTTP on 127.0.0.1:`port` (path /mcp) until interrupted."""
    server = build_mcp(assistant)
    if http:
        logger.info("MCP over streamable HTTP on http://127.0.0.1:%d/mcp", port)
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run("stdio")
