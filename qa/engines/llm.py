"""Request -> Answer written by a chat model from numbered evidence sentences, verified sentence by sentence.

The chain is LangChain's: ChatPromptTemplate (prompts/answer.txt) | chat model, read as text. The fixed
instructions come first, so llama.cpp reuses their KV cache from one question to the next.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

from qa.cite import defuse_markers, make_citation
from qa.config import Settings
from qa.decision import abstention
from qa.engines.base import Request
from qa.engines.chat_models import ChatModelFactory, answer_format, chat_model_factory
from qa.engines.extractive import quote_instead
from qa.engines.registry import fallback_label
from qa.engines.verify import Cited, premise_gaps, verify
from qa.errors import LLMError, QAError
from qa.templates import load_prompt
from qa.text import MARKER, count_tokens, shorten
from qa.types import Answer, Document, Evidence, elapsed_ms, final_answer

logger = logging.getLogger(__name__)

SECTION = re.compile(r"^=== (system|user) ===\n", re.MULTILINE)
MIN_SIMILARITY = 0.35  # sentence vs cited evidence (MiniLM cosine); paraphrases score well above
REWRITE_TOKENS = 48
TITLE_CHARS = 48  # an article title in the prompt: enough to tell articles apart, few tokens


def chat_prompt(name: str) -> ChatPromptTemplate:
    """prompts/<name>.txt, split at its `=== system ===` / `=== user ===` lines, as a chat prompt template."""
    parts = SECTION.split(load_prompt(name))
    messages = [(role, text.strip()) for role, text in zip(parts[1::2], parts[2::2], strict=True)]
    if not messages or parts[0].strip():
        raise QAError(f"Prompt template {name!r} must be `=== system ===` and `=== user ===` sections.")
    return ChatPromptTemplate.from_messages(messages)


def render_evidence(evidence: Sequence[Evidence], documents: Mapping[str, Document]) -> str:
    """`[n] (article title) sentence` lines, best evidence first."""
    return "\n".join(
        f"[{n}] ({shorten(documents[e.source].title, TITLE_CHARS)}) {defuse_markers(' '.join(e.text.split()))}"
        for n, e in enumerate(evidence, start=1)
    )


def render_gaps(gaps: Sequence[str]) -> str:
    """The prompt's line naming what the question says and the evidence does not (empty when nothing)."""
    return f"The evidence never mentions: {', '.join(gaps)}.\n" if gaps else ""


def make_llm_engine(settings: Settings, embedder: Embeddings | None) -> LLMEngine:
    """The configured LLM engine (the registry's factory); raises MissingDependency or ModelError (naming the fix)
    if unusable."""
    factory, label = chat_model_factory(settings)
    return LLMEngine(factory, settings=settings, embedder=embedder, label=label)


class LLMEngine:
    """Fluent answers from a chat model; only sentences that cite and match their evidence survive."""

    name = "llm"

    def __init__(
        self,
        model: BaseChatModel | ChatModelFactory,
        *,
        settings: Settings,
        embedder: Embeddings | None,
        min_similarity: float = MIN_SIMILARITY,
        label: str = "chat model",
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.min_similarity = min_similarity
        self.label = label
        self._model: BaseChatModel | None = model if isinstance(model, BaseChatModel) else None
        self._factory: ChatModelFactory | None = None if isinstance(model, BaseChatModel) else model
        self._lock = threading.Lock()  # one llama.cpp context: one generation at a time
        self._answer_prompt = chat_prompt("answer")
        self._rewrite_prompt = chat_prompt("rewrite")

    def answer(self, request: Request) -> Answer:
        return final_answer(self.stream(request))

    def stream(self, request: Request) -> Iterator[str | Answer]:
        if not request.verdict.answerable:
            yield abstention(request.question, request.passages, engine=self.name)
            return
        # every chosen sentence, then the next best up to llm_evidence: the model writes from what answers; more
        # context lengthens the prompt (the cost on 2 cores) and tempts the 1.5B model to quote a side fact
        rest = [e for e in request.evidence if e not in request.chosen]
        evidence = [*request.chosen, *rest[: max(0, self.settings.llm_evidence - len(request.chosen))]]
        cited = [
            Cited(e.text, request.documents[e.source].title, request.documents[e.source].readable()) for e in evidence
        ]
        inputs = {
            "question": request.question,
            "context": render_evidence(evidence, request.documents),
            "premise": render_gaps(premise_gaps(request.question, cited)),
        }
        pieces: list[str] = []
        timings: dict[str, float] = {}
        started = time.perf_counter()
        for piece in self._generate(self._answer_prompt, inputs, self.settings.llm_max_tokens, answering=True):
            timings.setdefault("first_token_ms", elapsed_ms(started))
            pieces.append(piece)
            yield piece
        timings["generate_ms"] = elapsed_ms(started)
        output = "".join(pieces)
        answer = self._verified(request, evidence, cited, output, timings)
        yield dataclasses.replace(answer, usage=self._usage(inputs, output))

    def _usage(self, inputs: dict[str, str], output: str) -> dict[str, int]:
        """Prompt and completion size in cl100k tokens (the rule of `count_tokens`; the chat template's few
        special tokens are not counted)."""
        prompt = "\n".join(str(message.content) for message in self._answer_prompt.format_messages(**inputs))
        return {"prompt_tokens": count_tokens(prompt), "completion_tokens": count_tokens(output)}

    def rewrite(self, question: str, history: Sequence[Mapping[str, Any]]) -> str | None:
        """A follow-up rewritten as a standalone question, or None when the model's reply is unusable."""
        turns = [f"{t.get('role', 'user').title()}: {_plain(t.get('content', ''))[:300]}" for t in history[-4:]]
        inputs = {"history": "\n".join(turns), "question": question}
        reply = "".join(self._generate(self._rewrite_prompt, inputs, REWRITE_TOKENS)).strip()
        line = reply.splitlines()[0] if reply else ""
        line = re.sub(r"^\s*standalone question:", "", line, flags=re.IGNORECASE).strip().strip('"“”')
        if not 3 <= len(line) <= 300:
            logger.info("Ignored the rewrite %r of follow-up %r", reply, question)
            return None
        logger.info("Rewrote follow-up %r as %r", question, line)
        return line

    def warm_up(self) -> None:
        """Load the model and read the answer prompt's fixed instructions once (llama.cpp keeps them cached)."""
        inputs = {"question": "", "context": "", "premise": ""}
        for _ in self._generate(self._answer_prompt, inputs, 1, answering=True):
            pass

    def chat_model(self) -> BaseChatModel:
        """The chat model, built on first use (call while holding the lock)."""
        if self._model is None and self._factory is not None:
            self._model = self._factory()
        if self._model is None:  # pragma: no cover - the constructor sets one of the two
            raise LLMError("The LLM engine has no chat model.")
        return self._model

    def _generate(
        self, prompt: ChatPromptTemplate, inputs: dict[str, str], max_tokens: int, *, answering: bool = False
    ) -> Iterator[str]:
        """Stream the chain's text, stopping at `max_tokens` pieces or after settings.llm_timeout_s. An answer
        (`answering`) is held to the answer's shape where the backend can (settings.llm_grammar, `answer_format`).

        A worker thread generates into a queue while it holds the model lock, so a slow reader (a client reading
        the page's stream) never keeps the model from other questions; a reader that stops early stops it.
        """
        pieces: queue.SimpleQueue[str | BaseException | None] = queue.SimpleQueue()
        stop = threading.Event()
        deadline = time.monotonic() + self.settings.llm_timeout_s
        worker = threading.Thread(
            target=self._produce,
            args=(prompt, inputs, max_tokens, deadline, pieces, stop, answering and self.settings.llm_grammar),
            daemon=True,
        )
        worker.start()
        try:
            while (item := pieces.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()

    def _produce(
        self,
        prompt: ChatPromptTemplate,
        inputs: dict[str, str],
        max_tokens: int,
        deadline: float,
        pieces: queue.SimpleQueue[str | BaseException | None],
        stop: threading.Event,
        shaped: bool = False,
    ) -> None:
        """Generate under the lock into `pieces` (bounded by `max_tokens`), then None; an error goes in as is."""
        try:
            with self._lock:
                if stop.is_set():
                    return
                # subtle: no StrOutputParser step: closing a chain whose last step parses drains the model's stream
                # (LangChain tees a step's input for tracing), so a reader who left kept the model writing
                model = answer_format(self.chat_model()) if shaped else self.chat_model()
                chain: Runnable[dict[str, str], BaseMessage] = prompt | model
                stream = chain.stream(inputs)
                try:
                    for count, piece in enumerate(_guarded((chunk.text for chunk in stream), self.label), start=1):
                        pieces.put(piece)
                        if stop.is_set() or count >= max_tokens or time.monotonic() > deadline:
                            self._log_stop(count, max_tokens, stopped=stop.is_set())
                            break
                finally:
                    close = getattr(stream, "close", None)
                    if close is not None:
                        close()  # stops llama.cpp generating, or closes the HTTP stream
        except BaseException as exc:  # handed to the reader, which raises it in its own thread
            pieces.put(exc)
        finally:
            pieces.put(None)

    def _log_stop(self, count: int, max_tokens: int, *, stopped: bool) -> None:
        if stopped:
            logger.info("The reader of %s left after %d pieces; generation stopped", self.label, count)
            return
        logger.warning(
            "Stopped %s at its bound (%d of %d pieces, %.0f s limit)",
            self.label,
            count,
            max_tokens,
            self.settings.llm_timeout_s,
        )

    def _verified(
        self, request: Request, evidence: list[Evidence], cited: list[Cited], output: str, timings: dict[str, float]
    ) -> Answer:
        started = time.perf_counter()
        result = verify(
            output, cited, question=request.question, embedder=self.embedder, min_similarity=self.min_similarity
        )
        timings["verify_ms"] = elapsed_ms(started)
        if result.refused:
            logger.info("The model found no answer in the evidence for %r", request.question)
            return dataclasses.replace(
                abstention(request.question, request.passages, engine=self.name, checks=result.checks),
                timings_ms=timings,
            )
        if not result.markers:
            logger.info("No generated sentence survived verification; answering extractively")
            return quote_instead(request, label=fallback_label(self.name), checks=result.checks, timings=timings)
        citations = tuple(
            make_citation(request.documents[evidence[m - 1].source], evidence[m - 1].start, evidence[m - 1].end, m)
            for m in sorted(result.markers)
        )
        return Answer(
            request.question,
            result.text,
            False,
            citations,
            request.passages,
            timings,
            engine=self.name,
            checks=result.checks,
        )


def _guarded(stream: Iterator[str], label: str) -> Iterator[str]:
    """Re-raise whatever the backend throws (HTTP errors, timeouts, llama.cpp failures) as LLMError."""
    try:
        yield from stream
    except QAError:
        raise
    except Exception as exc:  # the backends raise many unrelated types; all mean "the model failed"
        raise LLMError(
            f"The language model ({label}) failed: {type(exc).__name__}: {exc}. Check that the "
            "server is running and reachable (QA_LLM_BASE_URL), or use --engine extractive."
        ) from exc


def _plain(text: str) -> str:
    return " ".join(MARKER.sub("", text).split())
