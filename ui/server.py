"""The page's HTTP surface: a guard in front of the app that serves the page and its API (`ui.app.build_server`).

The guard (an ASGI middleware) adds security headers to every response,
refuses a Host header other than a loopback name when the page listens on loopback (DNS rebinding: a hostile site
whose name resolves to 127.0.0.1 would otherwise talk to the page from the user's browser), closes the routes the
page never uses (uploads, monitoring, Gradio's dev and profiling routes), and caps request bodies.
Cross-origin requests (an `Origin` other than the page's own) are refused unless the origin is in
QA_CORS_ORIGINS; those origins get CORS headers on the preflight and on the response alike (and nothing else
does, whatever the mounted page would have sent). An unexpected error is a 500 that still carries the headers
(a JSON error object under the API paths), never a bare text/plain page.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse, Response

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Routes of Gradio's app the page does not need: file uploads (the page takes none), monitoring, profiling, its
# "vibe" editor, run history, the Spaces proxy and dev reload, and the OpenAPI documents of the mounted apps (the API
# describes itself at /v1/openapi.json, behind its key). They answer 404.
CLOSED = re.compile(
    r"^/(?:gradio_api/)?(?:upload|upload_progress|process_recording|monitoring|profiling|vibe-|undo-vibe-|"
    r"run-history|runs(?:/|$)|proxy=|dev/|openapi\.json$|docs$|redoc$)"
)
API_PATHS = ("/v1/", "/api/")  # the HTTP API (ui.openai_api): errors as JSON objects
API_CODES = {400: "invalid_host", 403: "origin_not_allowed", 404: "not_found", 413: "request_too_large"}
CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type"
CORS_MAX_AGE = "600"
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

    def __init__(
        self,
        app: ASGIApp,
        *,
        check_host: bool = True,
        max_body: int = MAX_BODY_BYTES,
        origins: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.check_host = check_host
        self.max_body = max_body
        self.origins = frozenset(origins)

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
            else:
                await self._error(scope, receive, send, status, text)
            return
        origin = cross_origin(headers)
        if scope["type"] == "http" and origin and scope["method"] == "OPTIONS":  # a preflight, from an allowed origin
            await Response(status_code=204, headers=dict(_decoded(HEADERS + cors_headers(origin))))(
                scope, receive, send
            )
            return
        # the API reads its bodies itself, against its own limit, and answers an oversized one with an error object
        api = str(scope.get("path", "")).startswith(API_PATHS)
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await self._with_headers(send, origin)(message)

        try:
            await self.app(scope, receive if api else self._capped(receive), sending)
        except Exception:
            if started or scope["type"] != "http":
                raise
            logger.exception("Unexpected error on %s %s", scope.get("method"), scope.get("path"))
            await self._error(scope, receive, send, 500, "Internal server error (the cause is in the server log).")

    async def _error(self, scope: Scope, receive: Receive, send: Send, status: int, text: str) -> None:
        """An error response with the security headers: a JSON error object under the API paths, else text."""
        if str(scope.get("path", "")).startswith(API_PATHS):  # API clients read an error object
            kind = "server_error" if status >= 500 else "invalid_request_error"
            error = {"message": text, "type": kind, "param": None, "code": API_CODES.get(status)}
            response: Response = JSONResponse({"error": error}, status_code=status, headers=dict(_decoded(HEADERS)))
        else:
            response = PlainTextResponse(text, status_code=status, headers=dict(_decoded(HEADERS)))
        await response(scope, receive, send)

    def _refusal(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        name = host_name(headers.get("host", "")).lower()
        if self.check_host and name not in LOOPBACK_NAMES and not is_loopback(name):
            return 400, "Invalid Host header: this page answers only as localhost or 127.0.0.1."
        if CLOSED.match(scope.get("path", "")):
            return 404, "Not Found"
        origin = cross_origin(headers)
        if origin and origin not in self.origins:
            return 403, f"Cross-origin requests from {origin} are not allowed (QA_CORS_ORIGINS lists the allowed ones)."
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

    def _with_headers(self, send: Send, origin: str | None) -> Send:
        """Add the security headers; CORS headers only for an allowed cross origin (the mounted page's own dropped)."""

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(n, v) for n, v in message.get("headers", []) if not n.lower().startswith(b"access-control-")]
                present = {name.lower() for name, _ in kept}
                extra = [(name, value) for name, value in HEADERS if name not in present]
                message["headers"] = [*kept, *extra, *(cors_headers(origin, preflight=False) if origin else [])]
            await send(message)

        return with_headers


def cross_origin(headers: Headers) -> str | None:
    """The request's Origin when it is not the page's own (same scheme-less host and port as the Host header)."""
    origin = headers.get("origin")
    if origin is None:
        return None
    origin = origin.strip().rstrip("/").lower()
    _, _, netloc = origin.partition("://")
    host = headers.get("host", "").lower()
    if netloc and netloc in {host, host.removesuffix(":80"), host.removesuffix(":443")}:
        return None
    return origin


def cors_headers(origin: str, *, preflight: bool = True) -> list[tuple[bytes, bytes]]:
    """What an allowed origin is told: itself (never `*`, never credentials), and on a preflight what it may send."""
    out = [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin")]
    if preflight:
        out += [
            (b"access-control-allow-methods", CORS_METHODS.encode()),
            (b"access-control-allow-headers", CORS_HEADERS.encode()),
            (b"access-control-max-age", CORS_MAX_AGE.encode()),
        ]
    return out


def _decoded(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode(), value.decode()) for name, value in headers]
