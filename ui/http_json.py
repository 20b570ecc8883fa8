"""The HTTP API's plumbing: bearer keys, bounded JSON bodies and OpenAI error objects (`APIError`).

A body is read only with a JSON content type (a browser's simple cross-site request cannot be one), at most
`limit` bytes, within BODY_TIMEOUT_S; anything that is not valid JSON within MAX_DEPTH levels (huge integers
too) is a 400 error object, never a server error.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse, Response

logger = logging.getLogger(__name__)

BODY_TIMEOUT_S = 30.0  # a body that has not arrived by then is refused (a client sending nothing holds no worker)
MAX_DEPTH = 64  # nesting of a request body: chat messages need 5
JSON_TYPES = ("application/json",)
KNOWN = {  # path -> methods of the API under /v1 (anything else there is an OpenAI error object)
    "/v1/models": "GET",
    "/v1/chat/completions": "POST",
    "/v1/responses": "POST",
    "/v1/openapi.json": "GET",
}


class APIError(Exception):
    """A request the API refuses: HTTP `status` and an OpenAI-style error object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def authorize(request: Request, key: str | None) -> None:
    """Refuse (401) a request without `Authorization: Bearer <key>` when the server has a key."""
    if not key:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise APIError(401, "No API key: send the header `Authorization: Bearer <QA_API_KEY>`.", code="missing_api_key")
    if not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise APIError(401, "Wrong API key: use the server's QA_API_KEY.", code="invalid_api_key")


def is_json(content_type: str) -> bool:
    """Whether a Content-Type header names JSON (`application/json`, maybe with a charset, or `...+json`)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json"))


async def read_json(request: Request, limit: int) -> Any:
    """The body parsed as JSON, refused (413) once it exceeds `limit` bytes, before anything is parsed."""
    if not is_json(request.headers.get("content-type", "")):
        raise APIError(
            415, "Send the body as JSON with `Content-Type: application/json`.", code="unsupported_media_type"
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    body = bytearray()
    with anyio.move_on_after(BODY_TIMEOUT_S) as waited:
        async for part in request.stream():
            body += part
            if len(body) > limit:
                raise too_large(limit)
    if waited.cancelled_caught:
        raise APIError(408, f"The request body did not arrive within {BODY_TIMEOUT_S:.0f} s.", code="timeout")
    return parse_json(bytes(body))


def parse_json(body: bytes) -> Any:
    """JSON of at most MAX_DEPTH levels; every failure (bad syntax, a 5,000-digit integer, deep nesting) is 400."""
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and nesting(body) > MAX_DEPTH:
        raise APIError(400, f"The body is nested deeper than {MAX_DEPTH} levels.")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise APIError(400, f"The body is not valid JSON: {exc}.") from exc
    except (ValueError, RecursionError) as exc:  # int() refuses over 4,300 digits; the decoder's own recursion
        raise APIError(400, f"The body holds a value JSON here cannot read: {str(exc)[:120]}.") from exc


def nesting(body: bytes) -> int:
    """The deepest nesting of [ and { outside strings (a scan: no recursion, linear time)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def too_large(limit: int) -> APIError:
    return APIError(
        413, f"The request body is larger than {limit:,} bytes (QA_MAX_REQUEST_BYTES).", code="request_too_large"
    )


async def error_response(request: Request, error: APIError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    return JSONResponse(error.body(), status_code=error.status, headers={**headers, **error.headers})


async def client_gone(request: Request, error: Exception) -> Response:
    """The client left (mid-body or while its answer was computed): nothing to send, nothing to log."""
    return Response(status_code=499)


async def unknown_route(request: Request, path: str) -> Response:
    """Any other path or method under /v1: an OpenAI error object (404, or 405 naming the allowed method)."""
    where = f"/v1/{path}"
    allowed = KNOWN.get(where.rstrip("/")) or ("GET" if where.startswith("/v1/models/") else None)
    if allowed:
        raise APIError(
            405,
            f"{request.method} is not allowed on {where}: use {allowed}.",
            code="method_not_allowed",
            headers={"Allow": allowed},
        )
    served = ", ".join(f"{method} {route}" for route, method in KNOWN.items())
    raise APIError(404, f"Invalid URL ({request.method} {where}): this server offers {served}.", code="unknown_url")
