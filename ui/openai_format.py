"""OpenAI chat requests -> (question, history, options); Answers -> chat completions, stream chunks, error objects.

Plain Python over the public `qa` API, no web framework: `ui.openai_api` serves these over HTTP.
The message content is the verified answer with its [n] markers, then a Sources block so any client shows them;
the exact citations ride along twice: as OpenAI's own `annotations` (url_citation, the field the `openai` SDK
types) and as the extra fields `citations` and `abstained` of the message (or of the final stream chunk).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

from qa import Answer, Citation
from qa.engines import AUTO, ENGINES
from qa.text import MARKER, count_tokens, encoding
from ui.http_json import APIError

MODEL_PREFIX = "qa-"
ROLES = ("system", "developer", "user", "assistant", "tool", "function")  # only user and assistant text is read
SOURCES = "\n\nSources:\n"  # starts the Sources block of a message's content (also cut from history turns)
CREATED = int(time.time())  # the models' creation time: when this server started
ARTICLE_URL = "qa://articles/"  # + source (percent-encoded) + "#char=start,end" (RFC 5147 text fragment)
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


@dataclass(frozen=True)
class Reply:
    """What is sent for one answer: content (maybe cut by max_tokens or stop) and the citations it still shows."""

    model: str  # the engine that answered, as a model name
    content: str
    citations: tuple[Citation, ...]
    abstained: bool
    finish_reason: str  # "stop", or "length" when max_tokens cut the content
    titles: Mapping[str, str] = field(default_factory=dict)  # source -> article title, for annotations


def model_ids(engines: Sequence[str]) -> list[str]:
    """ "qa-auto" plus one model per engine that can answer here ("qa-extractive", "qa-llm")."""
    return [f"{MODEL_PREFIX}{AUTO}", *(MODEL_PREFIX + name for name in engines)]


def model_card(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": CREATED, "owned_by": "qa"}


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


def answered_by(answer: Answer, asked: str) -> str:
    """The model name of the engine whose text is returned: "llm→extractive" was answered by the quotes."""
    engine = answer.engine.split("→")[-1]
    return MODEL_PREFIX + (engine if engine in ENGINES else asked)


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


def message_content(answer: Answer) -> str:
    """The answer with its [n] markers, then one line per citation: source, span and the quote on one line."""
    if not answer.citations:
        return answer.text
    lines = [f'- [{c.marker}] {c.source} [{c.start}:{c.end}]: "{" ".join(c.quote.split())}"' for c in answer.citations]
    return answer.text + SOURCES + "\n".join(lines)


def make_reply(
    answer: Answer,
    *,
    model: str,
    max_tokens: int | None = None,
    stop: Sequence[str] = (),
    titles: Mapping[str, str] | None = None,
) -> Reply:
    """The content to send for `answer`, cut before a stop sequence and at `max_tokens` (cl100k tokens)."""
    content, finish = message_content(answer), "stop"
    cuts = [content.find(s) for s in stop if s in content]
    if cuts:
        content = content[: min(cuts)]
    if max_tokens is not None:
        tokens = encoding().encode(content, disallowed_special=())
        if len(tokens) > max_tokens:
            content, finish = encoding().decode_bytes(tokens[:max_tokens]).decode("utf-8", errors="ignore"), "length"
    shown = content.split(SOURCES)[0]
    kept = {int(m) for m in MARKER.findall(shown)}
    citations = tuple(c for c in answer.citations if c.marker in kept)
    titles = titles or {}
    return Reply(
        model, content, citations, answer.abstained, finish, {c.source: titles.get(c.source, "") for c in citations}
    )


def article_url(citation: Citation) -> str:
    return f"{ARTICLE_URL}{quote(citation.source, safe='')}#char={citation.start},{citation.end}"


def citation_annotations(reply: Reply) -> list[dict[str, Any]]:
    """One url_citation per [n] marker in the answer: start/end index the marker in the content; the url names the
    article and the exact span; source, start, end, quote and marker are added fields."""
    by_marker = {c.marker: c for c in reply.citations}
    out: list[dict[str, Any]] = []
    for match in MARKER.finditer(reply.content.split(SOURCES)[0]):
        citation = by_marker.get(int(match.group(1)))
        if citation is None:
            continue
        out.append(
            {
                "start_index": match.start(),
                "end_index": match.end(),
                "url": article_url(citation),
                "title": reply.titles.get(citation.source) or citation.source,
                **asdict(citation),
            }
        )
    return out


def extras(reply: Reply) -> dict[str, Any]:
    """The fields added to the message (or the final chunk): exact citations and whether the answer abstained."""
    return {"citations": [asdict(c) for c in reply.citations], "abstained": reply.abstained}


def chat_annotations(reply: Reply) -> list[dict[str, Any]]:
    """Chat Completions' annotation shape: {"type": "url_citation", "url_citation": {...}}."""
    return [{"type": "url_citation", "url_citation": a} for a in citation_annotations(reply)]


def usage(prompt_texts: Sequence[str], content: str) -> dict[str, int]:
    """Token counts (cl100k, the project's tokenizer) of the messages received and of the content returned."""
    prompt = sum(count_tokens(text) for text in prompt_texts)
    completion = count_tokens(content)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(request: ChatRequest, reply: Reply) -> dict[str, Any]:
    """The `chat.completion` object for one answer."""
    message = {
        "role": "assistant",
        "content": reply.content,
        "refusal": None,
        "annotations": chat_annotations(reply),
        **extras(reply),
    }
    return {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model,
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}],
        "usage": usage(request.prompt_texts, reply.content),
    }


def chunks(request: ChatRequest, reply: Reply) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects of one verified answer: role, content pieces, then the final chunk."""
    identifier, created = new_id(), int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {
            "id": identifier,
            "object": "chat.completion.chunk",
            "created": created,
            "model": reply.model,
            "choices": [choice],
        }

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": piece}) for piece in pieces(reply.content)]
    out.append(chunk({"annotations": chat_annotations(reply), **extras(reply)}, reply.finish_reason))
    if request.include_usage:  # OpenAI's shape: one more chunk with no choices and the usage
        out.append({**chunk({}), "choices": [], "usage": usage(request.prompt_texts, reply.content)})
    return out


def pieces(text: str, size: int = 40) -> list[str]:
    """`text` cut after whitespace into pieces of about `size` characters; they join back to `text` exactly."""
    out: list[str] = []
    for word in re.findall(r"\S*\s*", text):
        if out and len(out[-1]) + len(word) <= size:
            out[-1] += word
        elif word:
            out.append(word)
    return out


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"
