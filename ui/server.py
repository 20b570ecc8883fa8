"""The page's HTTP surface: a guard in front of the app that serves the page and its API (`ui.app.build_server`).

The guard (an ASGI middleware) adds security headers to every response,
refuses a Host header other than a loopback name when the page listens on loopback (DNS rebinding: a hostile site
whose name resolves to 127.0.0.1 would otherwise talk to the page from the user's browser), closes the routes the
page never uses (uploads, monitoring, Gradio's dev and profiling routes), and caps request bodies.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Routes of Gradio's app the page does not need: file uploads (the page takes none), monitoring, profiling, its
# "vibe" editor, run history, the Spaces proxy and dev reload. They answer 404.
CLOSED = re.compile(
    r"^/(?:gradio_api/)?(?:upload|upload_progress|process_recording|monitoring|profiling|vibe-|undo-vibe-|"
    r"run-history|runs(?:/|$)|proxy=|dev/)"
)
API_PATHS = ("/v1/", "/api/")  # the HTTP API (ui.openai_api): errors as JSON objects
API_CODES = {400: "invalid_host", 404: "not_found", 413: "request_too_large"}
MAX_BODY_BYTES = 256 * 1024  # a question (2,000 characters) and a bounded history fit many times over
# Gradio's page runs inline scripts and builds the gr.HTML handlers with Function(), hence 'unsafe-inline' and
# 'unsafe-eval'; what the policy still gives: no script, style, image or connection to any other origin (so nothing
# can be sent elsewhere), no plugins, and no framing by another site.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; media-src 'self' blob:; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address to listen on) only accepts connections from this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a Host header, without its port ("127.0.0.1:7860" -> "127.0.0.1", "[::1]:80" -> "::1")."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """ASGI middleware: security headers, Host check on loopback, closed routes, capped request bodies."""

    def __init__(self, app: ASGIApp, *, check_host: bool = True, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.check_host = check_host
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, text = refusal
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            elif str(scope.get("path", "")).startswith(API_PATHS):  # API clients read an error object
                error = {"message": text, "type": "invalid_request_error", "param": None, "code": API_CODES[status]}
                await JSONResponse({"error": error}, status_code=status, headers=dict(_decoded(HEADERS)))(
                    scope, receive, send
                )
            else:
                await PlainTextResponse(text, status_code=status, headers=dict(_decoded(HEADERS)))(scope, receive, send)
            return
        # the API reads its bodies itself, against its own limit, and answers an oversized one with an error object
        api = str(scope.get("path", "")).startswith(API_PATHS)
        await self.app(scope, receive if api else self._capped(receive), self._with_headers(send))

    def _refusal(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        name = host_name(headers.get("host", "")).lower()
        if self.check_host and name not in LOOPBACK_NAMES and not is_loopback(name):
            return 400, "Invalid Host header: this page answers only as localhost or 127.0.0.1."
        if CLOSED.match(scope.get("path", "")):
            return 404, "Not Found"
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            return 413, f"Request body too large: the limit is {self.max_body:,} bytes."
        return None

    def _capped(self, receive: Receive) -> Receive:
        """A body sent without Content-Length stops at the cap (the app sees the client disconnect)."""
        received = 0

        async def capped() -> Message:
            nonlocal received
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    logger.warning("Dropped a request whose body passed %d bytes", self.max_body)
                    return {"type": "http.disconnect"}
            return message

        return capped

    def _with_headers(self, send: Send) -> Send:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in HEADERS if name not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        return with_headers


def _decoded(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode(), value.decode()) for name, value in headers]
