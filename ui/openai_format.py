"""Answers -> chat completions, stream chunks and models (OpenAI's shapes).

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

from qa import Answer, Citation, Document, Quotes, quotes_record
from qa.engines import ENGINES
from qa.text import MARKER, count_tokens, encoding
from ui.openai_request import MODEL_PREFIX, SOURCES, ChatRequest

CREATED = int(time.time())  # the models' creation time: when this server started
ARTICLE_URL = "qa://articles/"  # + source (percent-encoded) + "#char=start,end" (RFC 5147 text fragment)


@dataclass(frozen=True)
class Reply:
    """What is sent for one answer: content (maybe cut by max_tokens or stop) and the citations it still shows."""

    model: str  # the engine that answered, as a model name
    content: str
    citations: tuple[Citation, ...]
    abstained: bool
    finish_reason: str  # "stop", or "length" when max_tokens cut the content
    titles: Mapping[str, str] = field(default_factory=dict)  # source -> article title, for annotations


def model_card(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": CREATED, "owned_by": "qa"}


def answered_by(answer: Answer, asked: str) -> str:
    """The model name of the engine whose text is returned: "llm→extractive" was answered by the quotes."""
    engine = answer.engine.split("→")[-1]
    return MODEL_PREFIX + (engine if engine in ENGINES else asked)


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
    documents: Mapping[str, Document] | None = None,
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
    documents = documents or {}
    titles = {c.source: documents[c.source].title for c in citations if c.source in documents}
    return Reply(model, content, citations, answer.abstained, finish, titles)


def article_url(citation: Citation) -> str:
    return f"{ARTICLE_URL}{quote(citation.source, safe='')}#char={citation.start},{citation.end}"


def citation_annotations(reply: Reply) -> list[dict[str, Any]]:
    """One url_citation per [n] marker in the answer: start/end index the marker in the content; the url names the
    article and the exact span; source, start, end, quote, marker and, for a PDF, the pages and boxes are added
    fields."""
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
                # a text article's page_start/page_end (null) are left out: LangChain's stream merge drops nulls
                **{key: value for key, value in asdict(citation).items() if value is not None},
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


def chunks(
    request: ChatRequest, reply: Reply, *, identifier: str | None = None, created: int | None = None, role: bool = True
) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects of one verified answer: role, content pieces, then the final chunk
    (under the stream's id and time when the evidence opened it, and then without the role chunk it sent)."""
    identifier, created = identifier or new_id(), created or int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {
            "id": identifier,
            "object": "chat.completion.chunk",
            "created": created,
            "model": reply.model,
            "choices": [choice],
        }

    out = [chunk({"role": "assistant", "content": ""})] if role else []
    out += [chunk({"content": piece}) for piece in pieces(reply.content)]
    out.append(chunk({"annotations": chat_annotations(reply), **extras(reply)}, reply.finish_reason))
    if request.include_usage:  # OpenAI's shape: one more chunk with no choices and the usage
        out.append({**chunk({}), "choices": [], "usage": usage(request.prompt_texts, reply.content)})
    return out


def evidence_chunk(model: str, quotes: Quotes, identifier: str, created: int) -> dict[str, Any]:
    """Evidence first (issue 22): a stream's first chunk when the question is answered from the articles, as soon as
    the evidence is chosen. The quotes ride as a non-standard `evidence` field ({text, citations}) of the delta, next
    to the role and an empty content, so a client that ignores unknown fields sees the usual stream; the content that
    follows is only the verified answer."""
    delta = {"role": "assistant", "content": "", "evidence": quotes_record(quotes)}
    return {
        "id": identifier,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}],
    }


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
