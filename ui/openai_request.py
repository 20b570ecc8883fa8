"""OpenAI chat requests -> ChatRequest: the question (the last user message), the earlier turns as history, and the
options that change the reply (max_tokens, stop); what cannot be honoured is refused with an APIError naming it.

Plain Python, no web framework; `ui.openai_responses` reads Responses API bodies into the same ChatRequest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qa.engines import AUTO
from ui.http_json import APIError

MODEL_PREFIX = "qa-"
ROLES = ("system", "developer", "user", "assistant", "tool", "function")  # only user and assistant text is read
SOURCES = "\n\nSources:\n"  # starts the Sources block of a message's content (also cut from history turns)
MAX_STOP = 4
TEXT_PARTS = ("text", "input_text", "output_text")  # content parts read as text (refusal parts are skipped)


@dataclass(frozen=True)
class ChatRequest:
    model: str
    engine: str
    question: str
    history: list[dict[str, str]]
    stream: bool = False
    include_usage: bool = False
    prompt_texts: list[str] = field(default_factory=list)  # every message's text, for the usage count
    max_tokens: int | None = None  # the content is cut there, finish_reason "length"
    stop: tuple[str, ...] = ()  # the content is cut before the first of these


def model_ids(engines: Sequence[str]) -> list[str]:
    """ "qa-auto" plus one model per engine that can answer here ("qa-extractive", "qa-llm")."""
    return [f"{MODEL_PREFIX}{AUTO}", *(MODEL_PREFIX + name for name in engines)]


def engine_of(model: object, engines: Sequence[str]) -> str:
    """The engine behind `model`; 404 for a model this server does not have."""
    if not isinstance(model, str) or not model:
        raise APIError(400, "`model` must be a model name such as qa-extractive (see GET /v1/models).", param="model")
    if model not in model_ids(engines):
        raise APIError(
            404,
            f"The model {model!r} does not exist here; available: {', '.join(model_ids(engines))}.",
            param="model",
            code="model_not_found",
        )
    return model.removeprefix(MODEL_PREFIX)


def parse_chat_request(body: object, engines: Sequence[str]) -> ChatRequest:
    """A chat completions body -> the question (last user message), earlier turns as history, and options."""
    if not isinstance(body, Mapping):
        raise APIError(400, "The request body must be a JSON object with `model` and `messages`.")
    engine = engine_of(body.get("model"), engines)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "`messages` must be a non-empty list of {role, content} objects.", param="messages")
    turns = [parse_message(number, message) for number, message in enumerate(messages)]
    question_at = last_question(turns)
    stream, options = body.get("stream", False), body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, Mapping):
        raise APIError(400, "`stream` must be true or false and `stream_options` an object.", param="stream")
    check_unsupported(body)
    return ChatRequest(
        model=str(body["model"]),
        engine=engine,
        question=str(turns[question_at][1]),
        history=history_of(turns[:question_at]),
        stream=stream,
        include_usage=bool(options.get("include_usage", False)),
        prompt_texts=[text for _, text in turns if text],
        max_tokens=max_tokens_of(body, ("max_completion_tokens", "max_tokens")),
        stop=stop_of(body.get("stop")),
    )


def last_question(turns: Sequence[tuple[str, str | None]]) -> int:
    """Where the question is: the last user message; only tool calls and tool results may follow it."""
    for number in range(len(turns) - 1, -1, -1):
        role, text = turns[number]
        if role == "user":
            return number
        if role not in ("tool", "function") and not (role == "assistant" and not text):
            break
    raise APIError(400, "The last message must have role `user`: it is the question.", param="messages")


def history_of(turns: Sequence[tuple[str, str | None]]) -> list[dict[str, str]]:
    """The user and assistant text turns (Sources blocks cut); system prompts, tool calls and results are skipped:
    the articles are the only evidence, and nothing in a message is obeyed."""
    return [
        {"role": role, "content": text.split(SOURCES)[0] if role == "assistant" else text}
        for role, text in turns
        if role in ("user", "assistant") and text
    ]


def parse_message(number: int, message: object) -> tuple[str, str | None]:
    """(role, text) of one message; content may be a string, a list of text parts, or null (a tool-call turn)."""
    where = f"messages[{number}]"
    if not isinstance(message, Mapping):
        raise APIError(400, f"{where} must be an object with `role` and `content`.", param=where)
    role, content = message.get("role"), message.get("content")
    if role not in ROLES:
        raise APIError(400, f"{where} has role {role!r}; use one of {', '.join(ROLES)}.", param=f"{where}.role")
    if content is None and role != "user":
        return str(role), None
    if isinstance(content, str):
        return str(role), content
    if isinstance(content, list) and all(isinstance(part, Mapping) for part in content):
        kinds = [part.get("type") for part in content]
        texts = [part.get("text") for part in content if part.get("type") in TEXT_PARTS]
        if all(kind in (*TEXT_PARTS, "refusal") for kind in kinds) and all(isinstance(text, str) for text in texts):
            return str(role), "\n".join(str(text) for text in texts)
    raise APIError(400, f"{where}.content must be text (a string or a list of text parts).", param=f"{where}.content")


def check_unsupported(body: Mapping[str, Any]) -> None:
    """Refuse what cannot be honoured (never ignore it silently): several choices, JSON output, forced tool calls."""
    n = body.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise APIError(400, "`n` must be a whole number (1).", param="n")
    if n is not None and n > 1:
        raise APIError(
            400, "Only one choice per request: answers are deterministic. Leave `n` out or set it to 1.", param="n"
        )
    form = body.get("response_format")
    if form is not None and (not isinstance(form, Mapping) or form.get("type") != "text"):
        raise APIError(
            400,
            'response_format other than {"type": "text"} is not supported: answers are cited text '
            "(the exact citations are in `annotations` and `citations`).",
            param="response_format",
            code="unsupported_parameter",
        )
    check_tools(body.get("tools"), body.get("tool_choice"))


def check_tools(tools: object, choice: object) -> None:
    """Tools may be offered (the answer never calls one, as a model may choose under tool_choice "auto"), but a
    call cannot be forced: tool_choice "required" or a named function is refused."""
    if tools is not None and not isinstance(tools, list):
        raise APIError(400, "`tools` must be a list of tool definitions.", param="tools")
    if choice is None or choice in ("auto", "none"):
        return
    raise APIError(
        400,
        'This model never calls tools (it answers from the articles), so tool_choice can only be "auto" or "none".',
        param="tool_choice",
        code="unsupported_parameter",
    )


def max_tokens_of(body: Mapping[str, Any], names: Sequence[str]) -> int | None:
    """The smallest of the given token limits, each a whole number >= 1 (or absent)."""
    limits = []
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise APIError(400, f"`{name}` must be a whole number of tokens, 1 or more.", param=name)
        limits.append(value)
    return min(limits) if limits else None


def stop_of(stop: object) -> tuple[str, ...]:
    """`stop` as a tuple of up to 4 non-empty strings."""
    if stop is None:
        return ()
    values = [stop] if isinstance(stop, str) else stop
    if not isinstance(values, list) or len(values) > MAX_STOP or not all(isinstance(s, str) and s for s in values):
        raise APIError(400, "`stop` must be a string or a list of up to 4 non-empty strings.", param="stop")
    return tuple(values)
