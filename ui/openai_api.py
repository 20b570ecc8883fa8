"""HTTP requests -> answers: OpenAI-compatible `/v1/models`, `/v1/chat/completions` and `/v1/responses`, and
`/api/ask`.

`add_api(app, assistant)` adds the routes to the FastAPI app that also serves the page (one port). Every route
checks the bearer key (settings.api_key, compared in constant time), reads at most settings.max_request_bytes of
body before parsing it, and refuses bad input with an OpenAI-style error object and status; so does every other
path and method under /v1. A chat completion stream opens with the chosen evidence (an `evidence` field of its first
chunk, as soon as the evidence is picked: evidence first), then carries only the verified answer (the engine's draft
may lose sentences at the citation gate); citations and `abstained` ride on its last chunk.
An answer whose client leaves is stopped: its place in the queue is given up, and an engine that is writing stops
at its next piece.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import ClientDisconnect

from qa import Answer, Assistant, InvalidQuestion, LLMError, QAError, Quotes, Settings, answer_record
from qa.engines import AUTO, choose
from ui.http_json import APIError, authorize, client_gone, error_response, read_json, unknown_route
from ui.openai_format import answered_by, chunks, completion, evidence_chunk, make_reply, model_card, new_id
from ui.openai_request import MODEL_PREFIX, ChatRequest, model_ids, parse_chat_request, parse_message
from ui.openai_responses import parse_responses_request, response_events, response_id, response_object
from ui.openapi import openapi_schema

logger = logging.getLogger(__name__)

CONCURRENT_ANSWERS = 2  # answers computed at once (the page's queue runs as many); more requests wait their turn
DOWN_SECONDS = 30.0  # an engine whose model failed is left out of /v1/models this long (then offered again)
SERVICE_UNAVAILABLE = ("IndexUnavailable",)  # the store is down (a database outage): 503, as for the LLM


class Abandoned(Exception):
    """The client left before its answer was ready."""


class Engines:
    """Which engines can answer now: those loaded, less any whose model failed in the last DOWN_SECONDS."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.down_until: dict[str, float] = {}

    def all(self) -> list[str]:
        return self.assistant.engine_names()

    def answering(self) -> list[str]:
        now = time.monotonic()
        return [name for name in self.all() if self.down_until.get(name, 0.0) <= now]

    def failed(self, name: str) -> None:
        self.down_until[name] = time.monotonic() + DOWN_SECONDS

    def worked(self, name: str) -> None:
        self.down_until.pop(name, None)


def add_api(app: FastAPI, assistant: Assistant, settings: Settings | None = None) -> None:
    """Add the API routes to `app` (before the page is mounted at "/", so they take precedence)."""
    settings = settings or assistant.settings
    limiter = anyio.CapacityLimiter(CONCURRENT_ANSWERS)
    engines = Engines(assistant)
    app.add_exception_handler(APIError, error_response)  # type: ignore[arg-type]
    app.add_exception_handler(ClientDisconnect, client_gone)

    async def answer(
        request: Request, question: str, history: Sequence[Mapping[str, Any]], engine: str | None, k: int | None
    ) -> Answer:
        asked = choose(engine, settings, engines.all())
        try:
            reply = await answer_while_connected(request, assistant, limiter, question, history, engine, k)
        except QAError as exc:
            raise failure(exc, question, asked, engines) from exc
        engines.worked(asked)
        return reply

    async def evidence_first(request: Request, chat: ChatRequest) -> Response:
        """The streamed chat completion: the evidence chunk first, then the verified answer's chunks, then [DONE].

        The stream is driven item by item from `Assistant.stream` in worker threads, the first item before the
        response starts, so a refused question is still a 4xx (or 503/500); a failure after the evidence went out
        (the LLM backend down under `qa-llm`) ends the stream with an OpenAI error event, which the `openai` client
        raises. A client that leaves stops the stream: the engine stops at its next piece.
        """
        asked = choose(chat.engine, settings, engines.all())
        items = assistant.stream(chat.question, history=chat.history, engine=chat.engine)
        try:
            first = await next_item(items, limiter)
        except QAError as exc:
            close(items)
            raise failure(exc, chat.question, asked, engines) from exc
        identifier, created = new_id(), int(time.time())

        async def events(item: StreamItem | None) -> AsyncIterator[str]:
            role = True
            try:
                while item is not None:
                    if isinstance(item, Quotes):
                        yield sse(evidence_chunk(f"{MODEL_PREFIX}{asked}", item, identifier, created))
                        role = False
                    elif isinstance(item, Answer):
                        engines.worked(asked)
                        reply = make_reply(
                            item,
                            model=answered_by(item, asked),
                            max_tokens=chat.max_tokens,
                            stop=chat.stop,
                            documents=assistant.documents,
                        )
                        for chunk in chunks(chat, reply, identifier=identifier, created=created, role=role):
                            yield sse(chunk)
                    elif await request.is_disconnected():  # a draft piece: nothing is sent, so look for a leaver
                        logger.info(
                            "The client left while its answer to %r was written; stopped it", chat.question[:80]
                        )
                        return
                    item = await next_item(items, limiter)
            except QAError as exc:
                logger.warning("Could not answer %r after its evidence was sent: %s", chat.question[:200], exc)
                yield sse(failure(exc, chat.question, asked, engines).body())
            finally:
                close(items)  # a client that left stops the engine (the LLM stops generating)
            yield "data: [DONE]\n\n"

        return event_stream(events(first))

    async def chat_reply(request: Request, chat: ChatRequest) -> Any:
        reply = await answer(request, chat.question, chat.history, chat.engine, None)
        asked = choose(chat.engine, settings, engines.all())
        model = answered_by(reply, asked)
        return make_reply(reply, model=model, max_tokens=chat.max_tokens, stop=chat.stop, documents=assistant.documents)

    @app.get("/v1/models")
    async def list_models(request: Request) -> JSONResponse:
        authorize(request, settings.api_key)
        return JSONResponse({"object": "list", "data": [model_card(m) for m in model_ids(engines.answering())]})

    @app.get("/v1/models/{model}")
    async def get_model(request: Request, model: str) -> JSONResponse:
        authorize(request, settings.api_key)
        if model not in model_ids(engines.answering()):
            raise APIError(404, f"The model {model!r} does not exist here.", param="model", code="model_not_found")
        return JSONResponse(model_card(model))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        authorize(request, settings.api_key)
        chat = parse_chat_request(await read_json(request, settings.max_request_bytes), engines.all())
        if chat.stream:
            return await evidence_first(request, chat)
        return JSONResponse(completion(chat, await chat_reply(request, chat)))

    @app.post("/v1/responses")
    async def responses(request: Request) -> Response:
        authorize(request, settings.api_key)
        chat = parse_responses_request(await read_json(request, settings.max_request_bytes), engines.all())
        reply = await chat_reply(request, chat)
        if not chat.stream:
            return JSONResponse(response_object(chat, reply, identifier=response_id()))
        return event_stream(named_events(response_events(chat, reply)))

    @app.post("/api/ask")
    async def ask(request: Request) -> JSONResponse:
        """The `qa ask --json` record: {"question", "engine"?, "k"?, "history"?} -> answer, citations, passages."""
        authorize(request, settings.api_key)
        body = await read_json(request, settings.max_request_bytes)
        question, history, engine, k = parse_ask_request(body, assistant)
        return JSONResponse(answer_record(await answer(request, question, history, engine, k)))

    @app.get("/v1/openapi.json")
    async def openapi(request: Request) -> JSONResponse:
        authorize(request, settings.api_key)
        return JSONResponse(openapi_schema(model_ids(engines.all())))

    app.add_api_route("/v1/{path:path}", unknown_route, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])


async def answer_while_connected(
    request: Request,
    assistant: Assistant,
    limiter: anyio.CapacityLimiter,
    question: str,
    history: Sequence[Mapping[str, Any]],
    engine: str | None,
    k: int | None,
) -> Answer:
    """The answer, computed in a worker thread (at most `limiter` at once) while the client is connected.

    subtle: a client that leaves cancels the wait for a worker; a running answer is told to stop, and closing the
    assistant's stream stops an engine that is writing at its next piece (the LLM stops generating).
    """
    leave = threading.Event()

    def run() -> Answer:
        stream = assistant.stream(question, history=history, engine=engine, k=k)
        try:
            for item in stream:
                if leave.is_set():
                    raise Abandoned
                if isinstance(item, Answer):
                    return item
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # an engine writing stops at its next piece
        raise QAError("The answer stream ended without an Answer.")

    async def watch(scope: anyio.CancelScope) -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        leave.set()
        scope.cancel()

    result: Answer | None = None
    error: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(watch, group.cancel_scope)
        try:
            result = await anyio.to_thread.run_sync(run, limiter=limiter)
        except Abandoned:
            pass
        except Exception as exc:  # raised below, outside the task group (which would wrap it in a group)
            error = exc
        group.cancel_scope.cancel()
    if error is not None:
        raise error
    if result is None:
        logger.info("The client left before its answer to %r was ready; stopped it", question[:80])
        raise ClientDisconnect
    return result


StreamItem = str | Quotes | Answer


async def next_item(items: Iterator[StreamItem], limiter: anyio.CapacityLimiter) -> StreamItem | None:
    """The stream's next item, computed in a worker thread (None at its end)."""
    return await anyio.to_thread.run_sync(next, items, None, limiter=limiter)


def close(items: Iterator[StreamItem]) -> None:
    """Close an answer stream: an engine that is writing stops at its next piece."""
    closer = getattr(items, "close", None)
    if closer is not None:
        closer()


def failure(exc: QAError, question: str, asked: str, engines: Engines) -> APIError:
    """The OpenAI error for a QAError raised while answering: 400 for a refused question, 503 when the LLM or the
    store is down (the engine is left out of /v1/models a while), 500 otherwise."""
    if isinstance(exc, InvalidQuestion):
        return APIError(400, str(exc), param="k" if str(exc).startswith("k=") else "messages")
    if isinstance(exc, LLMError):
        engines.failed(asked)
        return APIError(503, str(exc), type="server_error", code="llm_unavailable")
    logger.warning("Could not answer %r: %s", question[:200], exc)
    if type(exc).__name__ in SERVICE_UNAVAILABLE:
        return APIError(503, str(exc), type="server_error", code="index_unavailable")
    return APIError(500, str(exc), type="server_error")


def sse(item: dict[str, Any]) -> str:
    return f"data: {json.dumps(item, ensure_ascii=False)}\n\n"


def parse_ask_request(body: object, assistant: Assistant) -> tuple[str, list[dict[str, Any]], str | None, int | None]:
    """(question, history, engine, k) of an `/api/ask` body."""
    if not isinstance(body, Mapping) or not isinstance(body.get("question"), str):
        raise APIError(400, 'The body must be a JSON object with a "question" string.', param="question")
    engine, k, turns = body.get("engine"), body.get("k"), body.get("history")
    if engine not in (None, AUTO, *assistant.engine_names()):
        choices = ", ".join([AUTO, *assistant.engine_names()])
        raise APIError(400, f"engine={engine!r} is not available here; use one of {choices}.", param="engine")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100):
        raise APIError(400, "k must be a whole number of passages (1 to 100).", param="k")
    if turns is None:
        turns = []
    if not isinstance(turns, list):
        raise APIError(400, 'history must be a list of {"role", "content"} messages.', param="history")
    history: list[dict[str, Any]] = []
    for number, turn in enumerate(turns):
        role, content = parse_message(number, turn)
        if role not in ("user", "assistant") or content is None:
            raise APIError(400, f"history[{number}] must be a user or assistant turn with text.", param="history")
        history.append({"role": role, "content": content})
        if role == "assistant" and "citations" in turn:  # what the answer quoted (as `qa ask --json` gives it)
            history[-1]["citations"] = turn["citations"]  # well-formed ones are kept by `clean_history`
    return body["question"], history, engine, k


def event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


async def named_events(items: list[dict[str, Any]]) -> AsyncIterator[str]:
    """The Responses API's server-sent events: `event: <type>` and its `data:` (no [DONE])."""
    for item in items:
        yield f"event: {item['type']}\ndata: {json.dumps(item, ensure_ascii=False)}\n\n"
