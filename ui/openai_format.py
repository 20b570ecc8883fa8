"""OpenAI chat requests -> (question, history); Answers -> chat completions, stream chunks and error objects.

Plain Python over the public `qa` API, no web framework: `ui.openai_api` serves these over HTTP.
The message content is the verified answer with its [n] markers, then a Sources block so any client shows them;
the exact citations and `abstained` ride along as extra fields of the message (or of the final stream chunk).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from qa import Answer, Assistant, Quotes, quotes_record
from qa.engines import AUTO
from qa.text import count_tokens

MODEL_PREFIX = "qa-"
ROLES = ("system", "developer", "user", "assistant")  # system and developer turns are read but not obeyed
SOURCES = "\n\nSources:\n"  # starts the Sources block of a message's content (also cut from history turns)
CREATED = int(time.time())  # the models' creation time: when this server started


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
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class ChatRequest:
    model: str
    engine: str
    question: str
    history: list[dict[str, str]]
    stream: bool = False
    include_usage: bool = False
    prompt_texts: list[str] = field(default_factory=list)  # every message's text, for the usage count


def model_ids(assistant: Assistant) -> list[str]:
    """One model per engine ("qa-extractive", "qa-llm" when the LLM engine runs here), plus "qa-auto"."""
    return [f"{MODEL_PREFIX}{AUTO}", *(MODEL_PREFIX + name for name in assistant.engine_names())]


def model_card(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": CREATED, "owned_by": "qa"}


def engine_of(model: object, assistant: Assistant) -> str:
    """The engine behind `model`; 404 for a model this server does not have."""
    if not isinstance(model, str) or not model:
        raise APIError(400, "`model` must be a model name such as qa-extractive (see GET /v1/models).", param="model")
    if model not in model_ids(assistant):
        raise APIError(
            404,
            f"The model {model!r} does not exist here; available: {', '.join(model_ids(assistant))}.",
            param="model",
            code="model_not_found",
        )
    return model.removeprefix(MODEL_PREFIX)


def parse_chat_request(body: object, assistant: Assistant) -> ChatRequest:
    """A chat completions body -> the question (last user message), earlier turns as history, and options."""
    if not isinstance(body, Mapping):
        raise APIError(400, "The request body must be a JSON object with `model` and `messages`.")
    engine = engine_of(body.get("model"), assistant)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "`messages` must be a non-empty list of {role, content} objects.", param="messages")
    turns = [parse_message(number, message) for number, message in enumerate(messages)]
    if turns[-1][0] != "user":
        raise APIError(400, "The last message must have role `user`: it is the question.", param="messages")
    stream, options = body.get("stream", False), body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, Mapping):
        raise APIError(400, "`stream` must be true or false and `stream_options` an object.", param="stream")
    if body.get("n", 1) not in (1, None):
        raise APIError(400, "Only one choice per request is supported: leave `n` out or set it to 1.", param="n")
    history = [
        {"role": role, "content": text.split(SOURCES)[0] if role == "assistant" else text}
        for role, text in turns[:-1]
        if role in ("user", "assistant")
    ]
    return ChatRequest(
        model=str(body["model"]),
        engine=engine,
        question=turns[-1][1],
        history=history,
        stream=stream,
        include_usage=bool(options.get("include_usage", False)),
        prompt_texts=[text for _, text in turns],
    )


def parse_message(number: int, message: object) -> tuple[str, str]:
    """(role, text) of one message; its content may be a string or a list of text parts."""
    where = f"messages[{number}]"
    if not isinstance(message, Mapping):
        raise APIError(400, f"{where} must be an object with `role` and `content`.", param=where)
    role, content = message.get("role"), message.get("content")
    if role not in ROLES:
        raise APIError(400, f"{where} has role {role!r}; use one of {', '.join(ROLES)}.", param=f"{where}.role")
    if isinstance(content, str):
        return str(role), content
    if isinstance(content, list) and all(
        isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)
        for part in content
    ):
        return str(role), "\n".join(part["text"] for part in content)
    raise APIError(400, f"{where}.content must be text (a string or a list of text parts).", param=f"{where}.content")


def message_content(answer: Answer) -> str:
    """The answer with its [n] markers, then one line per citation: source, span and the quote on one line."""
    if not answer.citations:
        return answer.text
    lines = [f'- [{c.marker}] {c.source} [{c.start}:{c.end}]: "{" ".join(c.quote.split())}"' for c in answer.citations]
    return answer.text + SOURCES + "\n".join(lines)


def extras(answer: Answer) -> dict[str, Any]:
    """The fields added to the message (or the final chunk): exact citations and whether the answer abstained."""
    return {"citations": [asdict(c) for c in answer.citations], "abstained": answer.abstained}


def usage(prompt_texts: Sequence[str], content: str) -> dict[str, int]:
    """Token counts (cl100k, the project's tokenizer) of the messages received and of the content returned."""
    prompt = sum(count_tokens(text) for text in prompt_texts)
    completion = count_tokens(content)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(request: ChatRequest, answer: Answer) -> dict[str, Any]:
    """The `chat.completion` object for one answer."""
    content = message_content(answer)
    return {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None, **extras(answer)},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": usage(request.prompt_texts, content),
    }


def chunks(request: ChatRequest, answer: Answer) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects of one verified answer: role, content pieces, then the final chunk."""
    content, identifier, created = message_content(answer), new_id(), int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {
            "id": identifier,
            "object": "chat.completion.chunk",
            "created": created,
            "model": request.model,
            "choices": [choice],
        }

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": piece}) for piece in pieces(content)]
    out.append(chunk(extras(answer), "stop"))
    if request.include_usage:  # OpenAI's shape: one more chunk with no choices and the usage
        out.append({**chunk({}), "choices": [], "usage": usage(request.prompt_texts, content)})
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


# Evidence first (issue 22): a stream opens with the chosen evidence, before the answer is written and verified.
# It rides as a non-standard `evidence` field ({text, citations}) of the first chunk's delta, next to the role and an
# empty content, so a client that ignores unknown fields sees the usual stream; the content stays the verified answer.


def evidence_chunk(request: ChatRequest, quotes: Quotes, identifier: str, created: int) -> dict[str, Any]:
    """The stream's first chunk when the question is answered from the articles: the role and the evidence."""
    delta = {"role": "assistant", "content": "", "evidence": quotes_record(quotes)}
    return {
        "id": identifier,
        "object": "chat.completion.chunk",
        "created": created,
        "model": request.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}],
    }


def answer_chunks(
    request: ChatRequest, answer: Answer, identifier: str, created: int, *, role: bool
) -> list[dict[str, Any]]:
    """`chunks` of the verified answer under the stream's id; without the role chunk when the evidence sent it."""
    out = chunks(request, answer)
    return [{**chunk, "id": identifier, "created": created} for chunk in (out if role else out[1:])]
