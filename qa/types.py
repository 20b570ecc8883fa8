"""Result and record types shared by every stage: documents, sentences, chunks, passages, evidence, verdicts,
citations, answers.

Offsets are Python string offsets into a document's original text (decoded as UTF-8, never normalised).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from qa.errors import QAError
from qa.layout import Box, CharMap, Page

# A long step reports (done, total) through one of these (the CLI draws a bar, the page a progress line).
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Document:
    source: str  # file name relative to the corpus root (plus "#id" for a JSONL line)
    text: str  # the original text, exactly as read
    title: str
    sha256: str  # of `text` encoded as UTF-8
    skipped: tuple[tuple[int, int, str], ...] = ()  # boilerplate ranges (start, end, reason)
    # Documents extracted from a file (PDF, HTML, DOCX, EPUB); empty for text read as is.
    extractor: str = ""  # the reader's name and version: another version re-extracts the file
    file_sha256: str = ""  # of the source file's bytes: an unchanged file is not extracted again
    pages: tuple[Page, ...] = ()  # PDFs: the page table
    warnings: tuple[str, ...] = ()  # what the extractor could not read (pages without a text layer, ...)
    chars: CharMap | None = field(default=None, compare=False, repr=False)  # PDFs: where each character was drawn

    def readable(self) -> str:
        """`text` with its skipped ranges blanked (offsets unchanged): what the article tells its readers, without
        furniture, comments or text planted for an assistant."""
        if not self.skipped:
            return self.text
        pieces, cursor = [], 0
        for start, end, _ in self.skipped:
            pieces += [self.text[cursor:start], " " * (end - start)]
            cursor = end
        return "".join([*pieces, self.text[cursor:]])


@dataclass(frozen=True, slots=True)
class Sentence:
    source: str
    start: int
    end: int
    kind: str  # "sentence" (citable) or "heading" (kept for context, never cited)


@dataclass(frozen=True, slots=True)
class Chunk:
    id: int
    source: str
    start: int
    end: int
    text: str  # == document.text[start:end]
    sentence_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Passage:
    source: str  # file name relative to the corpus root
    start: int  # offsets into the original text: text[start:end]
    end: int
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class Citation:
    marker: int  # the [n] printed in the answer
    source: str
    start: int
    end: int
    quote: str  # always == original_text[start:end]
    page_start: int | None = None  # paged documents (PDF): the first and last page the quote is on, 1-based
    page_end: int | None = None
    page_labels: tuple[str, ...] = ()  # the printed label of each of those pages ("iii", "7")
    boxes: tuple[Box, ...] = ()  # PDFs: one box per line of the quote, on every page it covers


@dataclass(frozen=True, slots=True)
class Evidence:
    """A candidate sentence for a question, with P(it answers) from the ranker and the features it read."""

    sentence_id: int
    source: str
    start: int
    end: int
    text: str
    score: float  # P(this sentence answers the question), from the ranker
    dense: float
    coverage: float
    features: dict[str, float] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the evidence answers the question (`qa.decision`), why, and P(answerable)."""

    answerable: bool
    reason: str
    probability: float = 1.0  # P(answerable) from the decision model
    features: dict[str, float] = field(default_factory=dict, compare=False, repr=False)
    hedge: bool = False  # answerable, but not confidently: the answer only points at the closest passage


@dataclass(frozen=True, slots=True)
class SentenceCheck:
    """Why one sentence of a generated answer was kept or dropped."""

    sentence: str
    kept: bool
    reason: str
    markers: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...]
    passages: tuple[Passage, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)
    engine: str = "extractive"
    checks: tuple[SentenceCheck, ...] = ()
    usage: dict[str, int] = field(default_factory=dict)  # an LLM answer's prompt_tokens and completion_tokens
    confidence: float | None = None  # P(answerable) the decision gave the question (None: no decision was made)
    hedged: bool = False  # a hedge: it points at the closest passage and asserts nothing (scored as an abstention)


@dataclass(frozen=True, slots=True)
class Quotes:
    """The chosen evidence, shown before any answer: `Assistant.stream` yields it first when the question is
    answered (the decision found evidence), within milliseconds, while an engine may still be writing.

    Its [n] markers number these quotes only; the final Answer that follows numbers its own citations.
    """

    question: str
    text: str  # the quotes, one paragraph per article, each sentence followed by its [n]
    citations: tuple[Citation, ...]


def quotes_record(quotes: Quotes) -> dict[str, Any]:
    """The evidence as JSON (the OpenAI-compatible stream's `evidence` field): text and citations."""
    return {"text": quotes.text, "citations": [citation_record(c) for c in quotes.citations]}


def answer_record(answer: Answer) -> dict[str, Any]:
    """The JSON contract of `qa ask --json` (also returned by the web page's API)."""
    return {
        "question": answer.question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "citations": [citation_record(c) for c in answer.citations],
        "passages": [{"source": p.source, "start": p.start, "end": p.end, "score": p.score} for p in answer.passages],
        "timings_ms": answer.timings_ms,
        "engine": answer.engine,
        "usage": answer.usage,
        "confidence": answer.confidence,
        "hedged": answer.hedged,
    }


def citation_record(citation: Citation) -> dict[str, Any]:
    """A citation as JSON values: marker, source, start, end, quote, page_start, page_end, page_labels (a list)
    and boxes (a list of {page, x0, y0, x1, y1})."""
    record = asdict(citation)
    record["page_labels"] = list(citation.page_labels)
    record["boxes"] = [asdict(box) for box in citation.boxes]
    return record


def final_answer(items: Iterable[str | Quotes | Answer]) -> Answer:
    """Drain a stream of text pieces ending with its Answer (`Assistant.stream`, an engine's) to that Answer."""
    answer: Answer | None = None
    for item in items:
        if isinstance(item, Answer):
            answer = item
    if answer is None:
        raise QAError("The answer stream ended without an Answer.")
    return answer


def elapsed_ms(start: float, end: float | None = None) -> float:
    """Milliseconds from `start` to `end` (default: now), both `time.perf_counter()` readings."""
    return round(((end if end is not None else time.perf_counter()) - start) * 1000, 2)
