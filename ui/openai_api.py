"""HTTP requests -> answers: OpenAI-compatible `/v1/models` and `/v1/chat/completions`, and `/api/ask`.

`add_api(app, assistant)` adds the routes to the FastAPI app that also serves the page (one port). Every route
checks the bearer key (settings.api_key, compared in constant time), reads at most settings.max_request_bytes of
body before parsing it, and refuses bad input with an OpenAI-style error object and status.
A stream opens with the chosen evidence (an `evidence` field of the first chunk, as soon as it is picked), then
carries only the verified answer (the engine's draft may lose sentences at the citation gate); citations and
`abstained` ride on its last choice chunk.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from qa import Answer, Assistant, InvalidQuestion, LLMError, QAError, Quotes, Settings, answer_record
from qa.engines import AUTO
from ui.openai_format import (
    APIError,
    ChatRequest,
    answer_chunks,
    completion,
    evidence_chunk,
    model_card,
    model_ids,
    new_id,
    parse_chat_request,
    parse_message,
)

logger = logging.getLogger(__name__)

CONCURRENT_ANSWERS = 2  # answers computed at once (the page's queue runs as many); more requests wait their turn


def add_api(app: FastAPI, assistant: Assistant, settings: Settings | None = None) -> None:
    """Add the API routes to `app` (before the page is mounted at "/", so they take precedence)."""
    settings = settings or assistant.settings
    limiter = anyio.CapacityLimiter(CONCURRENT_ANSWERS)
    app.add_exception_handler(APIError, error_response)  # type: ignore[arg-type]

    async def answer(question: str, history: Sequence[Mapping[str, Any]], engine: str | None, k: int | None) -> Answer:
        ask = partial(assistant.ask, question, history=history, engine=engine, k=k)
        try:
            return await anyio.to_thread.run_sync(ask, limiter=limiter)
        except InvalidQuestion as exc:
            raise APIError(400, str(exc), param="messages") from exc
        except LLMError as exc:
            raise APIError(503, str(exc), type="server_error", code="llm_unavailable") from exc
        except QAError as exc:
            logger.warning("Could not answer %r: %s", question, exc)
            raise APIError(500, str(exc), type="server_error") from exc

    @app.get("/v1/models")
    async def list_models(request: Request) -> JSONResponse:
        authorize(request, settings.api_key)
        return JSONResponse({"object": "list", "data": [model_card(m) for m in model_ids(assistant)]})

    @app.get("/v1/models/{model}")
    async def get_model(request: Request, model: str) -> JSONResponse:
        authorize(request, settings.api_key)
        if model not in model_ids(assistant):
            raise APIError(404, f"The model {model!r} does not exist here.", param="model", code="model_not_found")
        return JSONResponse(model_card(model))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        authorize(request, settings.api_key)
        chat = parse_chat_request(await read_json(request, settings.max_request_bytes), assistant)
        if chat.stream:
            return await evidence_first_response(assistant, chat, limiter)
        reply = await answer(chat.question, chat.history, chat.engine, None)
        return JSONResponse(completion(chat, reply))

    @app.post("/api/ask")
    async def ask(request: Request) -> JSONResponse:
        """The `qa ask --json` record: {"question", "engine"?, "k"?, "history"?} -> answer, citations, passages."""
        authorize(request, settings.api_key)
        body = await read_json(request, settings.max_request_bytes)
        question, history, engine, k = parse_ask_request(body, assistant)
        return JSONResponse(answer_record(await answer(question, history, engine, k)))


def parse_ask_request(body: object, assistant: Assistant) -> tuple[str, list[dict[str, Any]], str | None, int | None]:
    """(question, history, engine, k) of an `/api/ask` body."""
    if not isinstance(body, Mapping) or not isinstance(body.get("question"), str):
        raise APIError(400, 'The body must be a JSON object with a "question" string.', param="question")
    engine, k, turns = body.get("engine"), body.get("k"), body.get("history") or []
    if engine not in (None, AUTO, *assistant.engine_names()):
        choices = ", ".join([AUTO, *assistant.engine_names()])
        raise APIError(400, f"engine={engine!r} is not available here; use one of {choices}.", param="engine")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int)):
        raise APIError(400, "k must be a whole number of passages (1 to 100).", param="k")
    if not isinstance(turns, list):
        raise APIError(400, 'history must be a list of {"role", "content"} messages.', param="history")
    history: list[dict[str, Any]] = []
    for number, turn in enumerate(turns):
        role, content = parse_message(number, turn)
        history.append({"role": role, "content": content})
        if role == "assistant" and "citations" in turn:  # what the answer quoted (as `qa ask --json` gives it)
            history[-1]["citations"] = turn["citations"]  # well-formed ones are kept by `clean_history`
    return body["question"], history, engine, k


def authorize(request: Request, key: str | None) -> None:
    """Refuse (401) a request without `Authorization: Bearer <key>` when the server has a key."""
    if not key:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise APIError(401, "No API key: send the header `Authorization: Bearer <QA_API_KEY>`.", code="missing_api_key")
    if not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise APIError(401, "Wrong API key: use the server's QA_API_KEY.", code="invalid_api_key")


async def read_json(request: Request, limit: int) -> Any:
    """The body parsed as JSON, refused (413) once it exceeds `limit` bytes, before anything is parsed."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise too_large(limit)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise APIError(400, f"The body is not valid JSON: {exc}.") from exc


def too_large(limit: int) -> APIError:
    return APIError(
        413, f"The request body is larger than {limit:,} bytes (QA_MAX_REQUEST_BYTES).", code="request_too_large"
    )


async def error_response(request: Request, error: APIError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def events(items: list[dict[str, Any]]) -> AsyncIterator[str]:
    """Server-sent events: one `data:` line per chunk, then `data: [DONE]`."""
    for item in items:
        yield f"data: {json.dumps(item, ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"


# Evidence first (issue 22): the stream is driven item by item from `Assistant.stream`, so the evidence goes out as
# soon as it is chosen; what the engine drafts is not sent, only the verified answer after it.

StreamItem = str | Quotes | Answer


async def evidence_first_response(assistant: Assistant, chat: ChatRequest, limiter: Any) -> StreamingResponse:
    """The streamed completion: the evidence chunk first, then the verified answer's chunks, then [DONE].

    The first item is computed before the response starts, so a refused question is still a 400 (or a 503/500);
    a failure after the evidence went out (the LLM backend failing under `qa-llm`) ends the stream with an OpenAI
    error event, which the `openai` client raises as an APIError.
    """
    items = assistant.stream(chat.question, history=chat.history, engine=chat.engine)
    try:
        first = await next_item(items, limiter)
    except QAError as exc:
        raise api_error(exc, chat.question) from exc
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    body = evidence_first_events(chat, first, items, limiter)
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


async def evidence_first_events(
    chat: ChatRequest, item: StreamItem | None, items: Iterator[StreamItem], limiter: Any
) -> AsyncIterator[str]:
    identifier, created, role = new_id(), int(time.time()), True
    answer: Answer | None = None
    try:
        while item is not None:
            if isinstance(item, Quotes):
                yield sse(evidence_chunk(chat, item, identifier, created))
                role = False
            elif isinstance(item, Answer):
                answer = item
            item = await next_item(items, limiter)
    except QAError as exc:
        logger.warning("Could not answer %r after its evidence was sent: %s", chat.question, exc)
        yield sse(api_error(exc, chat.question).body())
        yield "data: [DONE]\n\n"
        return
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()  # a client that left stops the engine (the LLM stops generating)
    if answer is None:  # pragma: no cover - Assistant.stream always ends with an Answer
        raise QAError("The answer stream ended without an Answer.")
    for chunk in answer_chunks(chat, answer, identifier, created, role=role):
        yield sse(chunk)
    yield "data: [DONE]\n\n"


async def next_item(items: Iterator[StreamItem], limiter: Any) -> StreamItem | None:
    """The stream's next item, computed in a worker thread (None at its end)."""
    return await anyio.to_thread.run_sync(next, items, None, limiter=limiter)


def sse(item: dict[str, Any]) -> str:
    return f"data: {json.dumps(item, ensure_ascii=False)}\n\n"


def api_error(exc: QAError, question: str) -> APIError:
    """The HTTP error for a QAError raised while answering (the same mapping as a plain completion)."""
    if isinstance(exc, InvalidQuestion):
        return APIError(400, str(exc), param="messages")
    if isinstance(exc, LLMError):
        return APIError(503, str(exc), type="server_error", code="llm_unavailable")
    logger.warning("Could not answer %r: %s", question, exc)
    return APIError(500, str(exc), type="server_error")
