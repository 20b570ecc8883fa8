"""OpenAI Responses API requests -> the same ChatRequest as chat completions; Replies -> `response` objects and
their stream events.

A minimal, stateless `/v1/responses`: `input` (a string or message items) and `instructions` in, one output
message out, whose `output_text` part carries the citations as `url_citation` annotations — the place
`langchain-openai` (use_responses_api=True) and the `openai` SDK surface them, in invoke and in stream.
Nothing is stored, so `previous_response_id` is refused.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ui.http_json import APIError
from ui.openai_format import Reply, citation_annotations, extras, pieces, usage
from ui.openai_request import (
    ChatRequest,
    check_tools,
    engine_of,
    history_of,
    last_question,
    max_tokens_of,
    parse_message,
)

SKIPPED_ITEMS = ("function_call", "function_call_output", "reasoning", "custom_tool_call", "custom_tool_call_output")


def parse_responses_request(body: object, engines: Sequence[str]) -> ChatRequest:
    """A Responses body -> the question (the last user input), earlier messages as history, and options."""
    if not isinstance(body, Mapping):
        raise APIError(400, "The request body must be a JSON object with `model` and `input`.")
    engine = engine_of(body.get("model"), engines)
    turns = input_turns(body.get("input"))
    question_at = last_question(turns)
    if body.get("previous_response_id") is not None:
        raise APIError(
            400,
            "Responses are not stored here: send the whole conversation in `input` instead of previous_response_id.",
            param="previous_response_id",
            code="unsupported_parameter",
        )
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise APIError(400, "`stream` must be true or false.", param="stream")
    text = body.get("text")
    form = text.get("format") if isinstance(text, Mapping) else text
    if form is not None and (not isinstance(form, Mapping) or form.get("type") != "text"):
        raise APIError(
            400,
            'text.format other than {"type": "text"} is not supported: answers are cited text.',
            param="text.format",
            code="unsupported_parameter",
        )
    check_tools(body.get("tools"), body.get("tool_choice"))
    return ChatRequest(
        model=str(body["model"]),
        engine=engine,
        question=str(turns[question_at][1]),
        history=history_of(turns[:question_at]),
        stream=stream,
        prompt_texts=[t for _, t in turns if t],
        max_tokens=max_tokens_of(body, ("max_output_tokens",)),
    )


def input_turns(items: object) -> list[tuple[str, str | None]]:
    """`input` as (role, text) turns: a string is one user message; tool calls and their outputs are skipped."""
    if isinstance(items, str):
        return [("user", items)]
    if not isinstance(items, list) or not items:
        raise APIError(400, "`input` must be a string or a non-empty list of message items.", param="input")
    turns: list[tuple[str, str | None]] = []
    for number, item in enumerate(items):
        if isinstance(item, Mapping) and item.get("type") in SKIPPED_ITEMS:
            turns.append(("tool", None))
            continue
        if isinstance(item, Mapping) and item.get("type") not in (None, "message"):
            raise APIError(
                400, f"input[{number}] has type {item.get('type')!r}: only messages are read.", param="input"
            )
        try:
            turns.append(parse_message(number, item))
        except APIError as exc:
            raise APIError(400, exc.message.replace("messages[", "input["), param="input") from exc
    return turns


def response_object(
    request: ChatRequest, reply: Reply, *, identifier: str, status: str = "completed"
) -> dict[str, Any]:
    """The `response` object: one assistant message whose output_text carries the annotations."""
    done = status == "completed"
    cut = done and reply.finish_reason == "length"
    counts = usage(request.prompt_texts, reply.content)
    return {
        "id": identifier,
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if cut else status,
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "error": None,
        "model": reply.model,
        "output": [output_message(identifier, reply)] if done else [],
        "instructions": None,
        "max_output_tokens": request.max_tokens,
        "parallel_tool_calls": False,
        "previous_response_id": None,
        "reasoning": None,
        "store": False,
        "temperature": 0.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "none",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "metadata": {},
        "usage": {
            "input_tokens": counts["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": counts["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": counts["total_tokens"],
        }
        if done
        else None,
    }


def output_message(identifier: str, reply: Reply) -> dict[str, Any]:
    part = {"type": "output_text", "text": reply.content, "annotations": url_citations(reply), "logprobs": []}
    return {
        "type": "message",
        "id": message_id(identifier),
        "status": "incomplete" if reply.finish_reason == "length" else "completed",
        "role": "assistant",
        "content": [part],
        **extras(reply),
    }


def url_citations(reply: Reply) -> list[dict[str, Any]]:
    return [{"type": "url_citation", **a} for a in citation_annotations(reply)]


def response_id() -> str:
    return "resp_" + uuid.uuid4().hex


def message_id(identifier: str) -> str:
    return "msg_" + identifier.removeprefix("resp_")


def response_events(request: ChatRequest, reply: Reply) -> list[dict[str, Any]]:
    """The stream events of one verified answer, in OpenAI's order, numbered by `sequence_number`."""
    identifier = response_id()
    item_id = message_id(identifier)
    pending = response_object(request, reply, identifier=identifier, status="in_progress")
    final = response_object(request, reply, identifier=identifier)
    message = final["output"][0]
    part = message["content"][0]
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**message, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **where, "part": {**part, "text": "", "annotations": []}},
    ]
    events += [
        {"type": "response.output_text.delta", **where, "delta": p, "logprobs": []} for p in pieces(reply.content)
    ]
    events += [
        {"type": "response.output_text.annotation.added", **where, "annotation_index": n, "annotation": a}
        for n, a in enumerate(part["annotations"])
    ]
    events += [
        {"type": "response.output_text.done", **where, "text": reply.content, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {"type": "response.incomplete" if final["status"] == "incomplete" else "response.completed", "response": final},
    ]
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]
