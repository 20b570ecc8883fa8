"""The HTTP API's OpenAPI 3.1 description (served at /v1/openapi.json, behind the key like the API itself).

Written by hand because the routes read their bodies themselves (bounded, before parsing); the schema fuzzing test
(tests/test_api_fuzz.py) drives the API from this document, so it must stay true.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qa import __version__

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
TEXT_PARTS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["type", "text"],
        "properties": {"type": {"enum": ["text", "input_text", "output_text"]}, "text": {"type": "string"}},
    },
}
MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant", "tool", "function"]},
        "content": {"anyOf": [{"type": "string", "maxLength": 4000}, TEXT_PARTS, {"type": "null"}]},
        "tool_calls": {"type": "array"},
        "tool_call_id": {"type": "string"},
        "name": {"type": "string"},
    },
}
COMMON = {
    "stream": {"type": "boolean"},
    "tools": {"type": "array", "items": {"type": "object"}},
    "tool_choice": {"anyOf": [{"enum": ["auto", "none", "required"]}, {"type": "object"}]},
}
ASK = {
    "type": "object",
    "required": ["question"],
    "properties": {
        "question": {"type": "string", "maxLength": 4000},
        "engine": {"type": "string"},
        "k": {"type": "integer", "minimum": 1, "maximum": 100},
        "history": {"type": "array", "items": MESSAGE, "maxItems": 20},
    },
}


def chat_body(models: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": {"enum": list(models)},
            "messages": {"type": "array", "items": MESSAGE, "minItems": 1, "maxItems": 20},
            "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
            "max_tokens": {"type": ["integer", "null"], "minimum": 1},
            "max_completion_tokens": {"type": ["integer", "null"], "minimum": 1},
            "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
            "n": {"type": "integer", "minimum": 1, "maximum": 1},
            "response_format": {"type": "object", "properties": {"type": {"enum": ["text"]}}},
            **COMMON,
        },
    }


def responses_body(models: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["model", "input"],
        "properties": {
            "model": {"enum": list(models)},
            "input": {"anyOf": [{"type": "string", "maxLength": 4000}, {"type": "array", "items": MESSAGE}]},
            "instructions": {"type": ["string", "null"]},
            "max_output_tokens": {"type": ["integer", "null"], "minimum": 1},
            **COMMON,
        },
    }


def operation(
    summary: str, body: dict[str, Any] | None, statuses: Sequence[int], *, streams: bool = False
) -> dict[str, Any]:
    answers: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
    if streams:  # "stream": true -> server-sent events
        answers["text/event-stream"] = {"schema": {"type": "object", "properties": {"data": {"type": "string"}}}}
    responses: dict[str, Any] = {"200": {"description": "OK", "content": answers}}
    for status in statuses:
        responses[str(status)] = {
            "description": "An OpenAI error object",
            "content": {"application/json": {"schema": ERROR}},
        }
    found: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        found["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return found


def openapi_schema(models: Sequence[str]) -> dict[str, Any]:
    """The API for a server offering `models`."""
    refusals = (400, 401, 404, 408, 413, 415, 503)
    return {
        "openapi": "3.1.0",
        "info": {"title": "qa: grounded answers with exact citations", "version": __version__},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/v1/models": {"get": operation("The models (engines) that can answer", None, (401,))},
            "/v1/models/{model}": {
                "get": {
                    **operation("One model", None, (401, 404)),
                    "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
                }
            },
            "/v1/chat/completions": {"post": operation("A cited answer", chat_body(models), refusals, streams=True)},
            "/v1/responses": {
                "post": operation("A cited answer (Responses API)", responses_body(models), refusals, streams=True)
            },
            "/api/ask": {"post": operation("The `qa ask --json` record", ASK, refusals)},
        },
    }
